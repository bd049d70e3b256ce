-- bench/precision.lua: pacing precision above 1,000/s. For each declared rate R (1k, 5k,
-- 10k/s by default), N requests (default 50,000; at most 20 s worth, so 1k/s sends
-- 20,000) against `pacer mock --rate R/s --burst R` (GCRA, a burst of one second) in its
-- own process, REPS times (default 3). Counted from the mock's record of arrivals: the
-- long-run rate over the second half of the run (well past the first second's burst),
-- its error against R, and the 429s. Prints min / median / max over the repetitions.
--   ./build/pacer bench/precision.lua [N] [R1,R2,...] [REPS]
local B = dofile("bench/lib.lua")
local N = tonumber(arg[1]) or 50000
local rates = {}
for r in (arg[2] or "1000,5000,10000"):gmatch("%d+") do rates[#rates + 1] = tonumber(r) end
local REPS = tonumber(arg[3]) or 3

local function one(R)
  local n = math.min(N, R * 20)
  local mock = B.mock(string.format("--rate %d/s --burst %d", R, R))
  local api = pacer.client{rate = R .. "/s", burst = R, concurrency = 64, retry = false}
  local items = {}
  for i = 1, n do items[i] = i end
  pacer.each(items, function() return api:get(mock.url .. "/v2/billing/usage").status end,
    {concurrency = 64, progress = false})
  local res = pacer.request{url = mock.url .. "/_mock/requests", retry = false, timeout = 60}
  local recs = res and res:json() or {}
  mock.stop()
  local times, n429 = {}, 0
  for _, r in ipairs(recs) do
    if r.path == "/v2/billing/usage" and r.status == 200 then times[#times + 1] = r.t end
    if r.status == 429 then n429 = n429 + 1 end
  end
  table.sort(times)
  local half = #times // 2
  local rate = (#times - half) / (times[#times] - times[half])
  return {n = n, rate = rate, err = 100 * (rate - R) / R, n429 = n429}
end

local function mmm(list, f)
  local v = {}
  for i, r in ipairs(list) do v[i] = r[f] end
  table.sort(v)
  return v[1], v[(#v + 1) // 2], v[#v]
end

print(string.format("bench/precision: %d repetitions each; uptime: %s", REPS, B.sh("uptime"):gsub("%s+$", "")))
print(string.format("%-10s %7s %30s %26s %12s", "declared", "N", "long-run rate min/med/max", "error min/med/max",
  "429s max"))
for _, R in ipairs(rates) do
  local runs = {}
  for i = 1, REPS do runs[i] = one(R) end
  local r1, r2, r3 = mmm(runs, "rate")
  local e1, e2, e3 = mmm(runs, "err")
  local _, _, q = mmm(runs, "n429")
  print(string.format("%-10s %7d %9.1f %9.1f %9.1f/s %7.2f %7.2f %7.2f %% %12d", R .. "/s", runs[1].n, r1, r2, r3,
    e1, e2, e3, q))
end
