-- bench/precision.lua: pacing precision above 1,000/s. For each declared rate R (1k, 5k,
-- 10k/s by default), N requests (default 50,000; fewer at 1k/s so a run stays under a
-- minute) against `pacer mock --rate R/s --burst R` (GCRA, a burst of one second) in its
-- own process. Prints the achieved long-run rate (requests / makespan, after the first
-- second's burst), its error against R, and the 429s the mock counted.
--   ./build/pacer bench/precision.lua [N] [R1,R2,...]
local B = dofile("bench/lib.lua")
local N = tonumber(arg[1]) or 50000
local rates = {}
for r in (arg[2] or "1000,5000,10000"):gmatch("%d+") do rates[#rates + 1] = tonumber(r) end

print(string.format("%-10s %8s %10s %12s %8s %6s", "declared", "N", "makespan", "achieved", "error", "429s"))
for _, R in ipairs(rates) do
  local n = math.min(N, R * 50)
  local mock = B.mock(string.format("--rate %d/s --burst %d", R, R))
  local api = pacer.client{rate = R .. "/s", burst = R, concurrency = 64, retry = false}
  local items = {}
  for i = 1, n do items[i] = i end
  local t0 = pacer.now()
  pacer.each(items, function() return api:get(mock.url .. "/v2/billing/usage").status end,
    {concurrency = 64, progress = false})
  local makespan = pacer.now() - t0
  local s = api:stats()
  mock.stop()
  -- the first R go at once (the burst); the rest are paced: (n - R) / (makespan) is the pace
  local achieved = (n - R) / makespan
  print(string.format("%-10s %8d %9.2fs %10.1f/s %7.2f%% %6d", R .. "/s", n, makespan, achieved,
    100 * (achieved - R) / R, s.throttled))
end
