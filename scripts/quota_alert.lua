-- scripts/quota_alert.lua: watch the quota and post to a chat webhook when less than 20%
-- is left (once; again only after it recovered above 50%). The "chat" here is a local
-- listener that prints what it receives.
local pacer = require "pacer"

local chat = pacer.serve{routes = {["POST /hooks/chat"] = function(req)
  print("chat got: " .. req:json().text)
  return 200, {ok = true}
end}}
local mock = pacer.mock{rate = "20/5s", mode = "fixed"}
local api = pacer.client{base_url = mock.url .. "/v2", adaptive = true,
  alerts = {pacer.alert.quota{below = 0.20, rearm_above = 0.50, action = {webhook = chat.url .. "/hooks/chat"}}}}

for _ = 1, 20 do assert(api:get("/billing/usage")) end
pacer.sleep(0.2) -- let the alert's POST land
local q = api:quota()
print(string.format("quota now: %d of %d left", q.remaining, q.limit))
mock:close()
chat.close()
