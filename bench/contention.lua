-- bench/contention.lua [N] [P]: P independent pacer processes share one mock limit of
-- 100/s (burst 10) with backoff only: no declared rate, Retry-After ignored, as in the
-- AWS backoff study. N requests in all. For each jitter strategy: total attempts sent,
-- 429s, and the makespan of the slowest process.
local B = dofile("bench/lib.lua")
local H = B.H
local N, P = tonumber(arg[1]) or 1000, tonumber(arg[2]) or 10

local worker = H.script([[
local url, n, strategy = arg[1], tonumber(arg[2]), arg[3]
local backoff = strategy == "decorrelated" and pacer.backoff.decorrelated{base = 0.05, cap = 5}
  or pacer.backoff.expo{base = 0.05, factor = 2, cap = 5, jitter = strategy}
local api = pacer.client{base_url = url, concurrency = 4,
  retry = {max_tries = 30, max_time = 600, retry_after = false, backoff = backoff}}
local items = {}
for i = 1, n do items[i] = i end
pacer.each(items, function() return assert(api:get("/v2/billing/usage")).status end, {concurrency = 4, progress = false})
]])

print(string.format("bench/contention: %d processes x %d requests against one 100/s limit (burst 10), backoff only",
  P, N // P))
print(string.format("%-14s %10s %8s %9s %7s", "jitter", "attempts", "429s", "makespan", "ratio"))
for _, strategy in ipairs{"none", "full", "equal", "decorrelated"} do
  local mock = B.mock("--rate 100/s --burst 10")
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  local t0 = pacer.now()
  local cmds = {}
  for p = 1, P do
    cmds[#cmds + 1] = string.format("%s -q --stats %s/%d.json %s %s %d %s &", H.PACER, dir, p, worker,
      mock.url, N // P, strategy)
  end
  os.execute("(" .. table.concat(cmds, " ") .. " wait)")
  local makespan = pacer.now() - t0
  mock.stop()
  local attempts, throttled = 0, 0
  for p = 1, P do
    local s = pacer.json.decode(H.read_file(string.format("%s/%d.json", dir, p)) or "{}")
    attempts = attempts + (s.requests or 0)
    throttled = throttled + (s.throttled or 0)
  end
  os.execute("rm -rf " .. dir)
  print(string.format("%-14s %10d %8d %8.1fs %7.3f", strategy, attempts, throttled, makespan, makespan / (N / 100)))
end
os.remove(worker)
