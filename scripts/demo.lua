-- scripts/demo.lua: the main job, end to end on loopback. Starts pacer's mock API at
-- 20 requests/s, sends N text messages through a client declared at that rate, and
-- prints what happened: sent, failed, 429s, retries, makespan against the ideal N/R.
--   pacer scripts/demo.lua [N] [RATE] [URL]
-- URL: a `pacer mock --rate RATE/s --key demo-key` already running (e.g. in another
-- terminal) instead of the mock this script starts in-process.
local pacer = require "pacer"

local N = tonumber(arg[1]) or 200
local R = tonumber(arg[2]) or 20
local URL = arg[3]

local mock
if URL then -- what the outside mock received, read over HTTP
  local function requests()
    return assert(pacer.request{url = URL .. "/_mock/requests", retry = false}):json()
  end
  local before = #requests()
  mock = {url = URL, close = function() end}
  function mock.count(_, filter)
    local n = 0
    for i, r in ipairs(requests()) do
      if i > before and r.path == filter.path and r.status == filter.status then n = n + 1 end
    end
    return n
  end
  function mock.total() return #requests() - before end
else
  mock = pacer.mock{rate = R .. "/s", key = "demo-key"}
  function mock:total() return #self.requests end
end
local api = pacer.client{
  base_url = mock.url .. "/v2",
  headers = {["X-Auth-Token"] = "demo-key"},
  rate = R .. "/s",
  concurrency = 8,
  idempotency = true,          -- a resend after a lost answer is not a second SMS
}

local numbers = {}
for i = 1, N do numbers[i] = string.format("+1555%07d", i) end

local started = pacer.now()
local results = pacer.each(numbers, function(to)
  local res, err = api:post("/sms/send", {json = {to = to, message = "Your code is 4242"}})
  if not res then error(err.message, 0) end
  if res.status ~= 200 then error("HTTP " .. res.status, 0) end
  return res:json().id
end, {concurrency = 8, label = "sms"})
local makespan = pacer.now() - started

local sent, failed = 0, 0
for _, r in ipairs(results) do
  if r.ok then sent = sent + 1 else failed = failed + 1 end
end
local s = api:stats()
local ideal = N / R
print(string.format("sent %d, failed %d, 429s %d, retries %d", sent, failed, s.throttled, s.retries))
print(string.format("makespan %.2fs, ideal N/R %.2fs (%d at %g/s): ratio %.3f", makespan, ideal, N, R,
  makespan / ideal))
print(string.format("the mock accepted %d messages; %d requests in all",
  mock:count{path = "/v2/sms/send", status = 200}, mock:total()))
mock:close()
if failed > 0 then error(failed .. " messages failed", 0) end
