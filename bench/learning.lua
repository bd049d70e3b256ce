-- bench/learning.lua [N]: the limit is NOT declared. `pacer mock` allows 50 per 5 s in
-- fixed windows; an adaptive client sends N requests (a) learning from the quota
-- headers and (b) with the headers turned off, from 429s alone. Prints 429s (per
-- window) and makespan / ideal.
local B = dofile("bench/lib.lua")
local N = tonumber(arg[1]) or 500
local LIMIT, WINDOW = 50, 5
local ideal = N / (LIMIT / WINDOW)

local function run(extra)
  local mock = B.mock(string.format("--rate %d/%ds --mode fixed%s", LIMIT, WINDOW, extra))
  local api = pacer.client{base_url = mock.url .. "/v2", adaptive = true, target = 1.0, concurrency = 4,
    retry = {max_tries = 20, max_time = 600}}
  local items = {}
  for i = 1, N do items[i] = i end
  local t0 = pacer.now()
  local results = pacer.each(items, function() return assert(api:get("/billing/usage")).status end,
    {concurrency = 4, progress = false})
  local makespan = pacer.now() - t0
  mock.stop()
  local failed = 0
  for _, r in ipairs(results) do if not r.ok or r.value ~= 200 then failed = failed + 1 end end
  local s = api:stats()
  return makespan, s.throttled, failed
end

print(string.format("bench/learning: N=%d, limit %d per %ds (fixed windows), not declared; ideal %.0fs",
  N, LIMIT, WINDOW, ideal))
print(string.format("%-28s %9s %7s %10s %7s %7s", "variant", "makespan", "ratio", "429s", "/window", "failed"))
for _, v in ipairs{{"quota headers", ""}, {"429 + Retry-After only", " --no-headers"}} do
  local makespan, throttled, failed = run(v[2])
  local windows = math.ceil(makespan / WINDOW)
  print(string.format("%-28s %8.1fs %7.3f %10d %7.2f %7d", v[1], makespan, makespan / ideal, throttled,
    throttled / windows, failed))
end
