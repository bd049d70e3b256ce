-- scripts/learn_limit.lua: the API's limit is not declared anywhere in the script; the
-- client learns it from the quota headers (or from 429s and Retry-After) and paces
-- itself. Prints the rate it settled on.
--   pacer scripts/learn_limit.lua [N] [--no-headers]
local pacer = require "pacer"
local N = tonumber(arg[1]) or 60
local mock = pacer.mock{rate = "10/s", mode = "fixed", headers = arg[2] ~= "--no-headers"}
local api = pacer.client{base_url = mock.url .. "/v2", adaptive = true, target = 1.0, concurrency = 2}

local items = {}
for i = 1, N do items[i] = i end
local t0 = pacer.now()
pacer.each(items, function() return assert(api:get("/billing/usage")).status end, {label = "learning"})
local s = api:stats()
print(string.format("%d requests in %.1fs, %d 429s; pace at the end %.1f/s (the API allows 10/s)",
  N, pacer.now() - t0, s.throttled, s.rate))
mock:close()
