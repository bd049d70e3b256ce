-- bench/quota.lua: the cost of reading the IETF RateLimit / RateLimit-Policy fields on
-- every answer, by number of policies (each with a pk and a qu), and of a hostile field
-- of thousands of items (parsed and counted, 64 used). Prints microseconds per
-- pacer.parse_quota call and the Lua memory one call leaves for the collector.
--   ./build/pacer bench/quota.lua [CALLS]
local CALLS = tonumber(arg and arg[1]) or 20000

local function headers(n)
  local pol, rl = {}, {}
  for i = 1, n do
    local pk = ":" .. require("pacer.c.crypto").base64("user" .. i) .. ":"
    pol[i] = string.format('"p%d";q=%d;w=60;qu="requests";pk=%s', i, 100 * i, pk)
    rl[i] = string.format('"p%d";r=%d;t=30;pk=%s', i, 100 * i - 1, pk)
  end
  return {["ratelimit-policy"] = table.concat(pol, ", "), ratelimit = table.concat(rl, ", ")}
end

print(string.format("%-10s %10s %12s %14s", "policies", "bytes", "us/call", "KiB/call"))
for _, n in ipairs{1, 2, 8, 12, 64, 2000} do
  local h = headers(n)
  local calls = n >= 2000 and math.max(1, CALLS // 100) or CALLS
  collectgarbage()
  collectgarbage("stop")
  local kb0 = collectgarbage("count")
  local t0 = os.clock()
  for _ = 1, calls do pacer.parse_quota(h) end
  local us = (os.clock() - t0) / calls * 1e6
  local kb = (collectgarbage("count") - kb0) / calls
  collectgarbage("restart")
  print(string.format("%-10d %10d %12.1f %14.2f", n, #h.ratelimit + #h["ratelimit-policy"], us, kb))
end
