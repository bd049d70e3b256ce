-- bench/pacing.lua: N requests at a declared R/s against (a) `pacer mock` (GCRA, burst 1)
-- and (b) nginx limit_req (burst 0, status 429); curl --rate beside pacer on (b).
-- The 429s are counted by the server (mock record / nginx log), not by the client.
-- Prints makespan/(N/R) and the 429s the server counted.
local B = dofile("bench/lib.lua")
local N, R = tonumber(arg[1]) or 1000, tonumber(arg[2]) or 100
local ideal = N / R
local rows = {}

-- (a) pacer mock in its own process, as `pacer mock --rate R/s` starts it (burst = the
-- window's limit), and again with --burst 1, where it judges every gap at ns precision
for _, burst in ipairs{"", " --burst 1"} do
  local mock = B.mock(string.format("--rate %d/s%s", R, burst))
  local makespan, s = B.pacer_run(mock.url .. "/v2/billing/usage", N, R .. "/s", 16)
  mock.stop()
  rows[#rows + 1] = {"pacer -> pacer mock" .. (burst == "" and "" or " (burst 1)"), makespan, s.throttled}
end

-- (b) nginx limit_req rate=R burst=0
local ng = B.nginx(R)
local makespan = B.pacer_run(ng.url .. "/limited", N, R .. "/s", 16)
local counts = B.count_statuses(ng.dir .. "/status.log")
rows[#rows + 1] = {"pacer -> nginx limit_req", makespan, counts["429"] or 0}
os.remove(ng.dir .. "/status.log")
os.execute("nginx -p " .. ng.dir .. " -c " .. ng.dir .. "/nginx.conf -s reopen 2>/dev/null")
pacer.sleep(0.5)

-- curl --rate on the same nginx, for reference
local cfg = os.tmpname()
local f = assert(io.open(cfg, "w"))
for _ = 1, N do f:write("url = \"", ng.url, "/limited\"\noutput = \"/dev/null\"\n") end
f:close()
local t0 = pacer.now()
os.execute(string.format("curl -s --rate %d/s --retry 10 --config %s", R, cfg))
local curl_makespan = pacer.now() - t0
os.remove(cfg)
pacer.sleep(0.2)
counts = B.count_statuses(ng.dir .. "/status.log")
rows[#rows + 1] = {"curl --rate --retry 10 -> nginx limit_req", curl_makespan, counts["429"] or 0}
ng.stop()

print(string.format("bench/pacing: N=%d at R=%d/s, ideal N/R = %.2fs", N, R, ideal))
print(string.format("%-42s %10s %8s %6s", "client -> server", "makespan", "ratio", "429s"))
for _, r in ipairs(rows) do
  print(string.format("%-42s %9.3fs %8.3f %6d", r[1], r[2], r[2] / ideal, r[3]))
end
