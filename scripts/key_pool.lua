-- scripts/key_pool.lua: three API keys, each allowed 5/s; requests go out on whichever
-- key can send soonest, so the job runs at about 15/s. A key the API refuses (401) is
-- retired with an alert, and its requests go out again on the others.
local pacer = require "pacer"

local refused = {["key-c"] = true}
local srv = pacer.serve{routes = {["GET /v2/numbers"] = function(req)
  local key = (req.headers["authorization"] or ""):match("^Bearer (.+)$")
  if refused[key] then return 401, {error = "revoked"} end
  return 200, {ok = true}
end}}

local api = pacer.client{
  base_url = srv.url .. "/v2",
  keys = {"key-a", "key-b", "key-c"}, rate = "5/s",     -- per key
  alerts = {pacer.alert.on("key_retired", function(a) print("alert: " .. a.message) end)},
}
local items = {}
for i = 1, 30 do items[i] = i end
local t0 = pacer.now()
pacer.each(items, function() return assert(api:get("/numbers")).status end, {label = "keys"})
local s = api:stats()
print(string.format("30 requests in %.1fs; sent per key: key#1 %d, key#2 %d, key#3 %d (retired: %s)",
  pacer.now() - t0, s.keys["key#1"].sent, s.keys["key#2"].sent, s.keys["key#3"].sent,
  tostring(s.keys["key#3"].retired)))
srv.close()
