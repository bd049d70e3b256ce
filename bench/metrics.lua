-- bench/metrics.lua N REPS: see bench/metrics. As a child (arg[1] = "child"): one S4
-- run, MODE off (the attempt loop's timing hooks stubbed out) or on (/metrics served and
-- scraped every 0.5 s), printing {"rps":, "cpu_us": (per request), "ok":, "scrapes":}.
local B = dofile("bench/lib.lua")
local H = B.H

if arg[1] == "child" then
  local mode, url, n = arg[2], arg[3], tonumber(arg[4])
  local timing = require "pacer.observe.timing"
  local scrapes, done = 0, false
  if mode == "off" then
    timing.attempt = function() end
    timing.paused = function() end
  else
    local srv = pacer.metrics{port = 0}
    pacer.spawn(function()
      while not done do
        local res = pacer.request{url = srv.url .. "/metrics", retry = false}
        if res and res.status == 200 then scrapes = scrapes + 1 end
        pacer.sleep(0.5)
      end
      srv:close()
    end)
  end
  local t0, c0 = pacer.now(), os.clock()
  arg = {"get", url, tostring(n), "0", "16"} -- luacheck: ignore (bench/run's S4 client, as it runs there)
  local out = {}
  local real_print = print
  print = function(s) out[#out + 1] = s end -- luacheck: ignore
  dofile("bench/peers/pacer_client.lua")
  print = real_print -- luacheck: ignore
  done = true
  local secs, cpu = pacer.now() - t0, os.clock() - c0
  local r = pacer.json.decode(out[1])
  io.write(pacer.json.encode{rps = r.ok / secs, cpu_us = cpu / r.ok * 1e6, ok = r.ok, scrapes = scrapes}, "\n")
  return
end

local N, REPS = tonumber(arg[1]) or 50000, tonumber(arg[2]) or 5
local ng = B.nginx(100)
local url = ng.url .. "/small.txt"

local function median(t)
  table.sort(t)
  local m = #t // 2
  return #t % 2 == 1 and t[m + 1] or (t[m] + t[m + 1]) / 2
end

local rps, cpu = {off = {}, on = {}}, {off = {}, on = {}}
local scrapes = 0
for rep = 1, REPS do
  local order = rep % 2 == 1 and {"off", "on"} or {"on", "off"} -- neither always goes first
  for _, mode in ipairs(order) do
    local out = B.sh(string.format("%s -q bench/metrics.lua child %s %s %d", H.q(H.PACER), mode, url, N))
    local r = pacer.json.decode(out:match("{.-}\n") or error("child printed: " .. out))
    assert(r.ok == N, string.format("%s run: %d of %d ok", mode, r.ok, N))
    table.insert(rps[mode], r.rps)
    table.insert(cpu[mode], r.cpu_us)
    if mode == "on" then scrapes = scrapes + r.scrapes end
    io.stderr:write(string.format("bench/metrics: rep %d %s: %.0f req/s, %.1f µs CPU per request\n", rep, mode,
      r.rps, r.cpu_us))
  end
end
ng.stop()
local lo_off, hi_off = math.min(table.unpack(rps.off)), math.max(table.unpack(rps.off))
local lo_on, hi_on = math.min(table.unpack(rps.on)), math.max(table.unpack(rps.on))
local off, on = median(rps.off), median(rps.on)

-- 2) memory: what one client's observability holds (three histograms, counters), and a
-- whole client for scale; each the growth of the Lua heap over 1,000 of them
local timing = require "pacer.observe.timing"
local function heap_per(make)
  local keep = {}
  collectgarbage("collect")
  local before = collectgarbage("count")
  for i = 1, 1000 do keep[i] = make() end
  collectgarbage("collect")
  local per = (collectgarbage("count") - before) * 1024 / #keep
  return per
end
local t_bytes = heap_per(timing.new)
local c_bytes = heap_per(function() return pacer.client{base_url = "http://127.0.0.1:1", rate = "10/s"} end)

print(string.format("bench/metrics: S4 (nginx static file, %d GETs, 16 in flight), %d runs of each, median [min-max]",
  N, REPS))
print(string.format("  timing off:               %7.0f req/s [%.0f-%.0f]", off, lo_off, hi_off))
print(string.format("  timing on + /metrics:     %7.0f req/s [%.0f-%.0f] (%d scrapes)", on, lo_on, hi_on, scrapes))
print(string.format("  overhead: %.1f%% fewer req/s (target <= 5%%): %s", (1 - on / off) * 100,
  on >= 0.95 * off and "met" or "missed"))
local cpu_off, cpu_on = median(cpu.off), median(cpu.on)
print(string.format("  CPU per request (less noisy on a shared machine): off %.1f µs, on %.1f µs (%+.1f%%)", cpu_off,
  cpu_on, (cpu_on / cpu_off - 1) * 100))
print(string.format("  memory per client: histograms + counters %.1f KB (a histogram is %d bytes); "
  .. "a whole pacer.client %.1f KB", t_bytes / 1024, require("pacer.c.hist").bytes, c_bytes / 1024))
