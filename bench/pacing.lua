-- bench/pacing.lua: pacing accuracy against nginx limit_req (burst 0, status 429) at a
-- declared R/s, N requests, REPS runs per client, clients one after another: pacer
-- (bench/peers/pacer_client.lua, as bench/run runs it; also as two --workers sharing
-- the limiter), curl --rate --retry 10, and
-- hey -q R -c 1 (no retries: its 429s are lost, hence "delivered"). Then pacer against
-- `pacer mock --rate R/s` (GCRA, burst = the window) and again with --burst 1.
-- Everything is counted where it happened, in nginx's log ($msec, $status) or the mock's
-- record: ratio = (first request to last 200 + 1/R) / (N/R); 429s as the server saw them.
--   ./build/pacer bench/pacing.lua [N] [R] [REPS]     (bench/pacing is the wrapper)
local B = dofile("bench/lib.lua")
local H = B.H
local N, R, REPS = tonumber(arg[1]) or 1000, tonumber(arg[2]) or 100, tonumber(arg[3]) or 5

local CLIENTS = {
  {id = "pacer", name = "pacer", cmd = function(url)
    return string.format("%s -q bench/peers/pacer_client.lua get %s %d %d 0", H.PACER, url, N, R)
  end},
  {id = "pacer2", name = "pacer --workers 2", cmd = function(url)
    return string.format("%s -q --workers 2 bench/peers/pacer_client.lua get %s %d %d 0", H.PACER, url, N, R)
  end},
  {id = "curl", name = "curl --rate --retry 10", cmd = function(url)
    return string.format("sh bench/peers/curl_client.sh get %s %d %d 0", url, N, R)
  end},
  {id = "hey", name = "hey -q -c 1 (no retry)", cmd = function(url)
    return string.format("hey -n %d -c 1 -q %d %s", N, R, url)
  end},
}

local ng = H.nginx([[
  location ^~ /p/ { access_log __DIR__/logs/p.log t; limit_req zone=one; limit_req_status 429;
    try_files /small.txt =404; }
]], string.format("limit_req_zone $binary_remote_addr zone=one:1m rate=%dr/s;\n" ..
  "log_format t '$msec $status $request_uri';", R))

local function nginx_run(prefix)
  local first, last, n429, ok = math.huge, nil, 0, 0
  local f = io.open(ng.dir .. "/logs/p.log")
  for line in f and f:lines() or function() end do
    local t, st, uri = line:match("^([%d.]+) (%d+) (%S+)")
    if uri and uri:sub(1, #prefix) == prefix then
      t = tonumber(t)
      first = math.min(first, t)
      if st == "200" then last, ok = math.max(last or t, t), ok + 1 end
      if st == "429" then n429 = n429 + 1 end
    end
  end
  if f then f:close() end
  return {ratio = last and (last - first + 1 / R) / (N / R), n429 = n429, ok = ok}
end

local function mmm(list, f, fmt)
  local v = {}
  for i, r in ipairs(list) do v[i] = r[f] or 0 / 0 end
  table.sort(v)
  return string.format(fmt .. " / " .. fmt .. " / " .. fmt, v[1], v[(#v + 1) // 2], v[#v])
end

print(string.format("bench/pacing: N=%d at R=%d/s against nginx limit_req %d r/s burst 0, %d runs each", N, R, R, REPS))
print("uptime before: " .. B.sh("uptime"):gsub("%s+$", ""))
local results = {}
for _, c in ipairs(CLIENTS) do
  results[c.id] = {}
  for rep = 1, REPS do
    local prefix = string.format("/p/%s/%d/", c.id, rep)
    H.sh(c.cmd(ng.url .. prefix .. "x") .. " >/dev/null 2>&1", 20 * N / R + 60)
    pacer.sleep(0.3) -- nginx writes its log line after the answer
    results[c.id][rep] = nginx_run(prefix)
  end
end
print(string.format("%-26s %-26s %-40s %s", "client", "ratio min / med / max", "429s in each run",
  "delivered min / med / max"))
for _, c in ipairs(CLIENTS) do
  local l = results[c.id]
  local per = {}
  for i, r in ipairs(l) do per[i] = r.n429 end
  local ratios = {}
  for i, r in ipairs(l) do ratios[i] = string.format("%.4f", r.ratio or 0 / 0) end
  print(string.format("%-26s %-26s %-40s %s", c.name, mmm(l, "ratio", "%.3f"), table.concat(per, " "),
    mmm(l, "ok", "%d")))
  print(string.format("%-26s each run: %s", "", table.concat(ratios, " ")))
end
ng.stop()

-- pacer against the mock, once each: its window's burst, and a burst of 1 judged at ns
for _, burst in ipairs{"", " --burst 1"} do
  local mock = B.mock(string.format("--rate %d/s%s", R, burst))
  B.pacer_run(mock.url .. "/v2/numbers", N, R .. "/s", 16)
  local res = pacer.request{url = mock.url .. "/_mock/requests", retry = false, timeout = 30}
  mock.stop()
  local first, last, n429 = math.huge, nil, 0
  for _, r in ipairs(res and res:json() or {}) do
    if r.path == "/v2/numbers" then
      first = math.min(first, r.t)
      if r.status == 200 then last = math.max(last or r.t, r.t) end
      if r.status == 429 then n429 = n429 + 1 end
    end
  end
  print(string.format("%-26s ratio %.3f, %d×429", "pacer -> pacer mock" .. burst, last and
    (last - first + 1 / R) / (N / R) or 0 / 0, n429))
end
print("uptime after: " .. B.sh("uptime"):gsub("%s+$", ""))
