-- scripts/off_peak.lua: heavy work only inside a time window, and a report on a
-- schedule. The window here is made to include "now" so the example finishes; a real
-- job would say window = "22:00-06:00".
local pacer = require "pacer"

local now = os.date("*t")
local window = string.format("%02d:%02d-%02d:%02d", now.hour, now.min, (now.hour + 1) % 24, now.min)
local mock = pacer.mock{rate = "20/s"}
local api = pacer.client{base_url = mock.url .. "/v2", rate = "20/s", window = window,
  breaker = {failures = 5, cooldown = "30s"}}

local sent = 0
local ticker = pacer.every(0.25, function() print(string.format("progress report: %d sent", sent)) end)
for _ = 1, 20 do
  assert(api:post("/sms/send", {json = {to = "+15550100", message = "nightly digest"}}))
  sent = sent + 1
end
ticker:stop()
print(string.format("window %s: %d messages sent", window, sent))
mock:close()
