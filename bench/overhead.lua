-- bench/overhead.lua: no rate limit, nginx serving a small static file: requests/s of
-- pacer (one task per request, 50 in flight) and of wrk -t2 -c50, in the same run.
local B = dofile("bench/lib.lua")
local N = tonumber(arg[1]) or 20000
local ng = B.nginx(100)
local url = ng.url .. "/small.txt"

-- pacer: one task per request, at most 50 transfers in flight (as wrk's 50 connections)
local sem = pacer.semaphore(50)
local t0 = pacer.now()
local ok = 0
local tasks = {}
for i = 1, N do
  tasks[i] = pacer.spawn(function()
    sem:acquire()
    local res = pacer.request{url = url, retry = false}
    sem:release()
    if res and res.status == 200 then ok = ok + 1 end
  end)
end
for i = 1, N do tasks[i]:wait() end
local pacer_secs = pacer.now() - t0
local pacer_rps = N / pacer_secs

local out = B.sh("wrk -t2 -c50 -d5s " .. url .. " 2>&1")
local wrk_rps = tonumber(out:match("Requests/sec:%s*([%d%.]+)")) or 0
ng.stop()

print(string.format("bench/overhead: %d GETs of a 17-byte file from nginx on loopback", N))
print(string.format("pacer (1 task/request, 50 in flight): %8.0f req/s (%d ok in %.2fs)", pacer_rps, ok, pacer_secs))
print(string.format("wrk -t2 -c50 -d5s:                     %8.0f req/s", wrk_rps))
print(string.format("ratio pacer/wrk: %.2f", wrk_rps > 0 and pacer_rps / wrk_rps or 0))
