-- bench/shared-limit.lua [N]: 1, 2 and 4 processes share one 100/s quota through Redis
-- against `pacer mock --rate 100/s`: aggregate makespan / ideal and the 429s the mock
-- counted; then the SQLite durable queue's push and pop+ack rates.
local B = dofile("bench/lib.lua")
local H = B.H
local N = tonumber(arg[1]) or 2000
local R = 100

local redis = H.redis()
print(string.format("bench/shared-limit: N=%d in all at a shared %d/s (ideal %.1fs)", N, R, N / R))
print(string.format("%-10s %9s %7s %6s", "processes", "makespan", "ratio", "429s"))
for _, P in ipairs{1, 2, 4} do
  local mock = B.mock(string.format("--rate %d/s", R))
  local worker = H.script(string.format([[
local lim = pacer.limiter{rate = "%d/s", redis = %q, key = %q}
local api = pacer.client{base_url = %q, limiter = lim, concurrency = 8}
local items = {}
for i = 1, tonumber(arg[1]) do items[i] = i end
pacer.each(items, function() return assert(api:get("/v2/billing/usage")).status end, {concurrency = 8, progress = false})
]], R, redis.url, "bench-" .. P .. "-" .. math.random(1e9), mock.url))
  local t0 = pacer.now()
  local cmds = {}
  for p = 1, P do cmds[p] = string.format("%s -q %s %d &", H.PACER, worker, N // P) end
  os.execute("(" .. table.concat(cmds, " ") .. " wait)")
  local makespan = pacer.now() - t0
  local rec = assert(pacer.request{url = mock.url .. "/_mock/requests", retry = false}):json()
  mock.stop()
  os.remove(worker)
  local throttled = 0
  for _, r in ipairs(rec) do if r.status == 429 then throttled = throttled + 1 end end
  print(string.format("%-10d %8.2fs %7.3f %6d", P, makespan, makespan / (N / R), throttled))
end
redis.cleanup()

-- the durable queue: pushes, then pops with acks, one process
local db = os.tmpname() .. ".db"
local q = pacer.queue{durable = db}
local M = tonumber(arg[2]) or 20000
local t0 = pacer.now()
for i = 1, M do q:push({n = i}) end
local push_s = pacer.now() - t0
t0 = pacer.now()
for _ = 1, M do
  local _, _, job = q:try_pop()
  q:ack(job)
end
local ack_s = pacer.now() - t0
q:close_db()
os.execute("rm -f " .. db .. "*")
print(string.format("durable queue (SQLite, WAL): %.0f pushes/s, %.0f pop+acks/s (%d items)", M / push_s, M / ack_s, M))
