-- bench/run.lua: pacer against its peers (curl --rate/--retry, Python asyncio + httpx +
-- backoff both all at once and paced, Node's Bottleneck, wrk as the ceiling) in one run,
-- on loopback servers started here: nginx (limit_req, static file) and `pacer mock`.
-- Every scenario runs REPS times (default 3); RESULTS.md gets medians with min–max and
-- bench/results/*.svg the requests per second over time of the first repetition.
-- What the server saw (its log, the mock's record) is what is counted, not what the
-- clients say; CPU and peak RSS come from GNU time (the client and its children).
local B = dofile("bench/lib.lua")
local chart = dofile("bench/svgchart.lua")
local H = B.H
local json = pacer.json

local REPS = tonumber(os.getenv("REPS") or "3")
local ONLY = os.getenv("ONLY") -- e.g. ONLY=S1,S4 while working on the harness
local OUT = os.getenv("RESULTS") or "bench/RESULTS.md"
local CUT = 300 -- seconds a client may take in S2 and S3 before it is stopped

local CLIENTS = {
  {id = "pacer", name = "pacer", cmd = H.PACER .. " -q bench/peers/pacer_client.lua"},
  -- S4 only: two worker processes, each sending its half (bench/peers/pacer_client.lua)
  {id = "pacer2", name = "pacer --workers 2", cmd = H.PACER .. " -q --workers 2 bench/peers/pacer_client.lua",
    throughput_only = true},
  {id = "curl", name = "curl", cmd = "sh bench/peers/curl_client.sh"},
  {id = "pyburst", name = "python (all at once)", cmd = "/usr/bin/python3 bench/peers/py_client.py burst"},
  {id = "pypaced", name = "python (paced)", cmd = "/usr/bin/python3 bench/peers/py_client.py paced", paced = true},
  {id = "bottleneck", name = "Node Bottleneck", cmd = "node bench/peers/node/bottleneck_client.js"},
}

local function log(fmt, ...) io.stderr:write(string.format("bench/run: " .. fmt .. "\n", ...)) end

local function sh(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  local out = p:read("a")
  p:close()
  return (out:gsub("%s+$", ""))
end

-- Runs one client; returns {wall=, cpu=, rss_mb=, result= (its JSON line), code=}.
local function run_client(c, scenario, url, n, rate, conc, limit)
  local tf = os.tmpname()
  local cmd = string.format("/usr/bin/time -f '%%e %%U %%S %%M' -o %s timeout -s KILL %d %s %s %s %d %s %d",
    tf, limit, c.cmd, scenario, url, n, rate, conc)
  local out, code = H.sh(cmd .. " 2>/dev/null", limit + 10)
  local f = io.open(tf)
  local times = f and f:read("a") or ""
  if f then f:close() end
  os.remove(tf)
  local e, u, s, m = times:match("([%d.]+) ([%d.]+) ([%d.]+) (%d+)%s*$")
  -- one JSON line per process (pacer --workers: one per worker): the counts add up
  local result
  for l in out:gmatch("[^\n]+") do
    local ok, r = pcall(json.decode, l)
    if ok and type(r) == "table" then
      result = result or {}
      for k, v in pairs(r) do result[k] = type(v) == "number" and (result[k] or 0) + v or v end
    end
  end
  return {wall = tonumber(e), cpu = e and (tonumber(u) + tonumber(s)), rss_mb = m and tonumber(m) / 1024,
    result = result or {}, code = code, timed_out = code == 137}
end

-- nginx: /s1/* (limit 100 r/s, burst 0, 429), /s3/<client>/* (10 r/s each, its own
-- zone, so clients can run side by side), /s4/small.txt (no limit, not logged). The
-- limited locations serve a file: a `return` answers before limit_req runs.
local function start_nginx()
  local zones, locs = {"limit_req_zone $binary_remote_addr zone=s1:1m rate=100r/s;",
    "log_format t '$msec $status $request_uri';"}, {}
  for _, c in ipairs(CLIENTS) do
    zones[#zones + 1] = string.format("limit_req_zone $binary_remote_addr zone=s3%s:1m rate=10r/s;", c.id)
    locs[#locs + 1] = string.format([[location ^~ /s3/%s/ { access_log __DIR__/logs/s3.log t;
      limit_req zone=s3%s; limit_req_status 429; try_files /small.txt =404; }]], c.id, c.id)
  end
  return H.nginx([[
    location ^~ /s1/ { access_log __DIR__/logs/s1.log t; limit_req zone=s1; limit_req_status 429;
      try_files /small.txt =404; }
    location = /s4/small.txt { alias __DIR__/html/small.txt; }
  ]] .. table.concat(locs, "\n"), table.concat(zones, "\n"))
end

-- The nginx log lines of one run (its URL prefix): {{t=, status=}, ...}
local function nginx_records(path, prefix)
  local out = {}
  local f = io.open(path)
  if not f then return out end
  for line in f:lines() do
    local t, st, uri = line:match("^([%d.]+) (%d+) (%S+)")
    if uri and uri:sub(1, #prefix) == prefix then out[#out + 1] = {t = tonumber(t), status = tonumber(st)} end
  end
  f:close()
  return out
end

local function mock_records(url)
  local res = pacer.request{url = url .. "/_mock/requests", retry = false, timeout = 30}
  return res and res:json() or {}
end

-- Attempts, 429s, first request to last 2xx (seconds), per-second counts for the chart.
local function summarize(recs)
  local first, last_ok, n429, ok, times = math.huge, nil, 0, 0, {}
  for _, r in ipairs(recs) do
    first = math.min(first, r.t)
    if r.status >= 200 and r.status < 300 then
      last_ok = math.max(last_ok or r.t, r.t)
      ok = ok + 1
    end
    if r.status == 429 then n429 = n429 + 1 end
    times[#times + 1] = r.t
  end
  return {attempts = #recs, n429 = n429, ok = ok, span = last_ok and (last_ok - first) or nil, times = times}
end

-- Runs fn(client, rep) for every client REPS times: one after another (side = false) or
-- every client at once (side = true, each against its own server).
local function each_rep(clients, side, fn)
  local runs = {}
  for _, c in ipairs(clients) do runs[c.id] = {} end
  for rep = 1, REPS do
    if side then
      local ts = {}
      for i, c in ipairs(clients) do ts[i] = pacer.spawn(function() runs[c.id][rep] = fn(c, rep) end) end
      for _, t in ipairs(ts) do t:wait() end
    else
      for _, c in ipairs(clients) do runs[c.id][rep] = fn(c, rep) end
    end
  end
  return runs
end

-- median, min, max of field f over a client's runs (nil values skipped)
local function stat(list, f)
  local v = {}
  for _, r in ipairs(list) do
    local x = type(f) == "function" and f(r) or r[f]
    if x then v[#v + 1] = x end
  end
  if #v == 0 then return nil end
  table.sort(v)
  local med = #v % 2 == 1 and v[(#v + 1) // 2] or (v[#v // 2] + v[#v // 2 + 1]) / 2
  return med, v[1], v[#v]
end

local function cell(list, f, fmt)
  local med, lo, hi = stat(list, f)
  if not med then return "–" end
  if lo == hi then return string.format(fmt, med) end
  return string.format(fmt .. " (" .. fmt .. "–" .. fmt .. ")", med, lo, hi)
end

local md = {}
local function out(s) md[#md + 1] = s or "" end

local function table_md(header, rows)
  out("| " .. table.concat(header, " | ") .. " |")
  out("|" .. string.rep("---|", #header))
  for _, r in ipairs(rows) do out("| " .. table.concat(r, " | ") .. " |") end
  out()
end

local function write_chart(file, title, series, limit)
  os.execute("mkdir -p bench/results")
  local f = assert(io.open("bench/results/" .. file, "w"))
  f:write(chart.render(series, {title = title, limit = limit}))
  f:close()
  out(string.format("![%s](results/%s)", title, file))
  out()
end

local function chart_series(clients, runs)
  local series = {}
  for _, c in ipairs(clients) do
    local r = runs[c.id][1]
    if r and r.times then series[#series + 1] = {name = c.name, bins = chart.per_second(r.times)} end
  end
  return series
end

-- "name" plus how many of its runs were cut at the time limit
local function label(c, list)
  local cut = 0
  for _, r in ipairs(list) do if r.timed_out then cut = cut + 1 end end
  if cut == 0 then return c.name end
  return string.format("%s (%d of %d runs cut at %d s)", c.name, cut, #list, CUT)
end

local function unpaced(c) return not c.paced end

local function pick(filter)
  local list = {}
  for _, c in ipairs(CLIENTS) do if filter(c) and (not c.throughput_only or filter == unpaced) then
    list[#list + 1] = c
  end end
  return list
end

local verdicts = {} -- scenario -> one line for the summary at the top

local scenarios = {}

-- S1 pacing: N=1000 at a declared 100/s against nginx limit_req 100 r/s, burst 0.
scenarios.S1 = function(ng)
  local N, R = 1000, 100
  local clients = pick(function() return true end)
  local runs = each_rep(clients, false, function(c, rep)
    local prefix = string.format("/s1/%s/%d/", c.id, rep)
    local r = run_client(c, "get", ng.url .. prefix .. "x", N, R, 0, 600)
    pacer.sleep(0.3) -- nginx writes its log line after the answer
    local s = summarize(nginx_records(ng.dir .. "/logs/s1.log", prefix))
    -- first request to last success, plus the one interval the last request owns
    s.ratio = s.span and (s.span + 1 / R) / (N / R)
    s.cpu, s.rss_mb, s.ok = r.cpu, r.rss_mb, r.result.ok
    log("S1 %s rep %d: ratio %s, 429s %d", c.id, rep, tostring(s.ratio), s.n429)
    return s
  end)
  out("## S1 pacing")
  out()
  out(string.format("nginx `limit_req` %d r/s, burst 0, status 429; N=%d GETs at a declared %d/s. Ratio = (first " ..
    "request to last 200 + 1/R) / (N/R), as nginx logged them; 429s counted by nginx.", R, N, R))
  out()
  local rows = {}
  for _, c in ipairs(clients) do
    local l = runs[c.id]
    rows[#rows + 1] = {c.name, cell(l, "ratio", "%.3f"), cell(l, "n429", "%d"), cell(l, "attempts", "%d"),
      cell(l, "cpu", "%.2f"), cell(l, "rss_mb", "%.1f")}
  end
  table_md({"client", "makespan/(N/R)", "429s", "attempts", "client CPU s", "peak RSS MB"}, rows)
  write_chart("s1-pacing.svg", "S1: 1000 GETs at a declared 100/s, nginx limit_req 100 r/s", chart_series(clients, runs), R)
  local pr, p429 = stat(runs.pacer, "ratio"), stat(runs.pacer, "n429")
  local best, bname = math.huge, "?"
  for _, c in ipairs(clients) do
    local r, n429 = stat(runs[c.id], "ratio"), stat(runs[c.id], "n429")
    if c.id ~= "pacer" and r and n429 == 0 and r < best then best, bname = r, c.name end
  end
  verdicts.S1 = string.format("pacer %.3f with %d×429; best peer without 429s: %s %.3f (pacer/peer %.3f). " ..
    "Target ≤ 1.01, 0×429, no peer better: %s", pr or 0 / 0, p429 or -1, bname, best, (pr or 0) / best,
    (pr and pr <= 1.01 and p429 == 0 and pr <= best) and "met" or "missed")
end

-- S2 learning: a limit of 50 per 5 s (fixed windows, quota headers, Retry-After) that
-- no client is told; N=300; each client against its own `pacer mock`, side by side.
scenarios.S2 = function()
  local N, LIMIT, WINDOW = 300, 50, 5
  local clients = pick(function(c) return not c.paced end)
  local runs = each_rep(clients, true, function(c, rep)
    local mock = B.mock(string.format("--rate %d/%ds --mode fixed", LIMIT, WINDOW))
    local r = run_client(c, "get", mock.url .. "/v2/billing/usage", N, 0, 4, CUT)
    local recs = mock_records(mock.url)
    mock.stop()
    local list = {}
    for _, x in ipairs(recs) do if x.path == "/v2/billing/usage" then list[#list + 1] = x end end
    local s = summarize(list)
    s.ratio = s.span and s.span / (N * WINDOW / LIMIT)
    s.windows = s.span and math.max(1, math.ceil(s.span / WINDOW))
    s.per_window = s.windows and s.n429 / s.windows
    s.cpu, s.timed_out = r.cpu, r.timed_out
    log("S2 %s rep %d: ratio %s, 429s %d", c.id, rep, tostring(s.ratio), s.n429)
    return s
  end)
  out("## S2 learning")
  out()
  out(string.format("`pacer mock --rate %d/%ds --mode fixed` (RateLimit-* headers, 429 with Retry-After); the limit " ..
    "is declared to no client; N=%d GETs, at most 4 in flight. Ideal = N/R = %ds. Clients ran side by side, " ..
    "each against its own mock. pacer runs with `adaptive = true`.", LIMIT, WINDOW, N, N * WINDOW // LIMIT))
  out()
  local rows = {}
  for _, c in ipairs(clients) do
    local l = runs[c.id]
    rows[#rows + 1] = {label(c, l), cell(l, "n429", "%d"), cell(l, "per_window", "%.2f"), cell(l, "ratio", "%.3f"),
      cell(l, "attempts", "%d"), cell(l, "ok", "%d")}
  end
  table_md({"client", "429s", "429s per window", "makespan/ideal", "attempts", "delivered"}, rows)
  write_chart("s2-learning.svg", "S2: limit 50 per 5 s, not declared", chart_series(clients, runs), LIMIT / WINDOW)
  local pw, pr = stat(runs.pacer, "per_window"), stat(runs.pacer, "ratio")
  local best, bname = math.huge, "?"
  for _, c in ipairs(clients) do
    local w = stat(runs[c.id], "per_window")
    if c.id ~= "pacer" and w and w < best then best, bname = w, c.name end
  end
  verdicts.S2 = string.format("pacer %.2f 429s per window at makespan/ideal %.3f; fewest among peers: %s %.2f. " ..
    "Target ≤ 1 per window: %s", pw or 0 / 0, pr or 0 / 0, bname, best, (pw and pw <= 1) and "met" or "missed")
end

-- S3 storm: 500 GETs at once at an API allowing 10/s (nginx, no Retry-After, no quota
-- headers), clients with backoff only; side by side, each on its own limit zone.
scenarios.S3 = function(ng)
  local N, R = 500, 10
  local clients = pick(function(c) return not c.paced end)
  local runs = each_rep(clients, true, function(c, rep)
    local prefix = string.format("/s3/%s/%d/", c.id, rep)
    local r = run_client(c, "get", ng.url .. prefix .. "x", N, 0, 0, CUT)
    pacer.sleep(0.3)
    local s = summarize(nginx_records(ng.dir .. "/logs/s3.log", prefix))
    s.cpu, s.timed_out = r.cpu, r.timed_out
    log("S3 %s rep %d: attempts %d, span %s", c.id, rep, s.attempts, tostring(s.span))
    return s
  end)
  out("## S3 storm")
  out()
  out(string.format("%d GETs at once at nginx `limit_req` %d r/s (burst 0, 429 without Retry-After); nothing " ..
    "declared, each client's own backoff (pacer: `adaptive = true`, which also slows down on 429s). Ideal " ..
    "makespan %ds. Clients ran side by side, each on its own limit.", N, R, N // R))
  out()
  local rows = {}
  for _, c in ipairs(clients) do
    local l = runs[c.id]
    rows[#rows + 1] = {label(c, l), cell(l, "attempts", "%d"), cell(l, "n429", "%d"), cell(l, "span", "%.1f"),
      cell(l, "ok", "%d")}
  end
  table_md({"client", "total attempts", "429s", "makespan s", "delivered"}, rows)
  write_chart("s3-storm.svg", "S3: 500 at once, API allows 10/s", chart_series(clients, runs), R)
  local pa, ps = stat(runs.pacer, "attempts"), stat(runs.pacer, "span")
  local ba, bs, an, sn = math.huge, math.huge, "?", "?"
  for _, c in ipairs(clients) do
    local a, s = stat(runs[c.id], "attempts"), stat(runs[c.id], "span")
    if c.id ~= "pacer" and a and a < ba then ba, an = a, c.name end
    if c.id ~= "pacer" and s and s < bs then bs, sn = s, c.name end
  end
  verdicts.S3 = string.format("pacer %d attempts in %.1fs; fewest attempts among peers %s %d, shortest %s %.1fs " ..
    "(pacer/peer: attempts %.2f, makespan %.2f). Target fewer attempts and shorter than every peer: %s",
    pa or -1, ps or 0 / 0, an, ba, sn, bs, (pa or 0) / ba, (ps or 0) / bs,
    (pa and ps and pa < ba and ps < bs) and "met" or "missed")
end

-- S4 throughput: no limit, nginx static file; N=20000 GETs, 16 in flight; wrk -c16.
scenarios.S4 = function(ng)
  local N, C = 20000, 16
  local clients = pick(unpaced)
  local url = ng.url .. "/s4/small.txt"
  local runs = each_rep(clients, false, function(c, rep)
    local r = run_client(c, "get", url, N, 0, C, 600)
    local s = {rps = r.wall and r.result.ok and r.result.ok / r.wall, cpu = r.cpu, ok = r.result.ok}
    s.us_per_req = r.cpu and r.result.ok and r.result.ok > 0 and r.cpu / r.result.ok * 1e6
    log("S4 %s rep %d: %s req/s", c.id, rep, tostring(s.rps))
    return s
  end)
  runs.wrk = {}
  for rep = 1, REPS do
    local tf = os.tmpname()
    local o = sh(string.format("/usr/bin/time -f '%%e %%U %%S %%M' -o %s wrk -t2 -c%d -d5s %s", tf, C, url))
    local times = io.open(tf):read("a")
    os.remove(tf)
    local e, u, s = times:match("([%d.]+) ([%d.]+) ([%d.]+) (%d+)%s*$")
    local rps = tonumber(o:match("Requests/sec:%s*([%d.]+)"))
    local total = tonumber(o:match("(%d+) requests in"))
    runs.wrk[rep] = {rps = rps, us_per_req = total and (tonumber(u) + tonumber(s)) / total * 1e6, wall = tonumber(e)}
    log("S4 wrk rep %d: %s req/s", rep, tostring(rps))
  end
  out("## S4 throughput")
  out()
  out(string.format("nginx static file (1 worker), no limit; N=%d GETs, %d in flight (curl `--parallel " ..
    "--parallel-max %d`; `pacer --workers 2`: half in each worker); wrk `-t2 -c%d -d5s` as the ceiling. " ..
    "req/s = delivered / client wall time (start-up included); CPU per request = client user+sys / delivered.",
    N, C, C, C))
  out()
  local rows = {}
  for _, c in ipairs(clients) do
    local l = runs[c.id]
    rows[#rows + 1] = {c.name, cell(l, "rps", "%.0f"), cell(l, "us_per_req", "%.0f"), cell(l, "ok", "%d")}
  end
  rows[#rows + 1] = {"wrk", cell(runs.wrk, "rps", "%.0f"), cell(runs.wrk, "us_per_req", "%.1f"), "(5 s)"}
  table_md({"client", "req/s", "CPU µs per request", "delivered"}, rows)
  local p1, w, cu = stat(runs.pacer, "rps"), stat(runs.wrk, "rps"), stat(runs.curl, "rps")
  local p2, us = stat(runs.pacer2, "rps"), stat(runs.pacer, "us_per_req")
  local p = math.max(p1 or 0, p2 or 0)
  verdicts.S4 = string.format("pacer %.0f req/s (--workers 2: %.0f) = %.2f× wrk, %.2f× curl --parallel; %.0f µs CPU "
    .. "a request. Target ≥ 0.5× wrk, ≥ 1× curl, ≤ 35 µs: %s", p1 or 0, p2 or 0, p / (w or 1), p / (cu or 1), us or 0,
    (w and cu and us and p >= 0.5 * w and p >= cu and us <= 35) and "met" or "missed")
end

-- S5 memory: 100,000 POSTs queued (declared 1/s, so they wait) -> peak RSS.
scenarios.S5 = function()
  local N = 100000
  local mock = B.mock("--rate 1000/s")
  local clients = pick(function() return true end)
  local runs = each_rep(clients, true, function(c, rep)
    local r = run_client(c, "hold", mock.url .. "/v2/sms/send", N, 1, 0, 900)
    log("S5 %s rep %d: %s MB, %s s", c.id, rep, tostring(r.rss_mb), tostring(r.wall))
    return {rss_mb = r.rss_mb, wall = r.wall, queued = r.result.queued}
  end)
  mock.stop()
  out("## S5 memory")
  out()
  out(string.format("%d POSTs (JSON bodies, one idempotency key each) queued at a declared 1/s, held, then the " ..
    "client exits: peak RSS by GNU time. pacer: items in `pacer.queue`, 64 workers; Python: one task per " ..
    "request; Bottleneck: `schedule()` per request; curl: one `--next` block per request in a config file. " ..
    "Clients ran side by side.", N))
  out()
  local rows = {}
  for _, c in ipairs(clients) do
    local l = runs[c.id]
    rows[#rows + 1] = {c.name, cell(l, "rss_mb", "%.1f"), cell(l, "wall", "%.1f"), cell(l, "queued", "%d")}
  end
  table_md({"client", "peak RSS MB", "time to queue and exit s", "queued"}, rows)
  local p = stat(runs.pacer, "rss_mb")
  local best, bname = math.huge, "?"
  for _, c in ipairs(clients) do
    local m = stat(runs[c.id], "rss_mb")
    if c.id ~= "pacer" and m and m < best then best, bname = m, c.name end
  end
  verdicts.S5 = string.format("pacer %.1f MB; best peer %s %.1f MB (pacer/peer %.2f). Target ≤ 0.5×: %s",
    p or 0, bname, best, (p or 0) / best, (p and p <= 0.5 * best) and "met" or "missed")
end

-- S6 faults: 20% injected 503 and 5% connections dropped after the work was done;
-- N=500 POSTs at a declared 100/s, idempotency keys where the client sends them.
scenarios.S6 = function()
  local N, R = 500, 100
  local clients = pick(function() return true end)
  local runs = each_rep(clients, true, function(c, rep)
    local mock = B.mock("--rate 1000/s --fail 0.2 --fail-status 503 --drop 0.05")
    local r = run_client(c, "post", mock.url .. "/v2/sms/send", N, R, 8, 600)
    local recs = mock_records(mock.url)
    mock.stop()
    local accepted, list = {}, {}
    for _, x in ipairs(recs) do
      if x.path == "/v2/sms/send" then
        list[#list + 1] = x
        if x.status == 200 and not x.replayed then
          local okb, body = pcall(json.decode, x.body)
          local to = okb and body.to or "?"
          accepted[to] = (accepted[to] or 0) + 1
        end
      end
    end
    local s = summarize(list)
    s.delivered, s.duplicated = 0, 0
    for i = 1, N do
      local k = accepted[string.format("+1555%07d", i)] or 0
      if k > 0 then s.delivered = s.delivered + 1 end
      if k > 1 then s.duplicated = s.duplicated + k - 1 end
    end
    s.lost = N - s.delivered
    s.cpu = r.cpu
    log("S6 %s rep %d: delivered %d lost %d duplicated %d", c.id, rep, s.delivered, s.lost, s.duplicated)
    return s
  end)
  out("## S6 faults")
  out()
  out(string.format("`pacer mock --fail 0.2 --fail-status 503 --drop 0.05` (a dropped connection is cut after the " ..
    "message was accepted); N=%d POSTs at a declared %d/s, 8 in flight. Delivered and duplicated are counted " ..
    "from the mock's record: a duplicate is a second accepted send of one message (a replay of a stored answer " ..
    "for a repeated Idempotency-Key is not).", N, R))
  out()
  local rows = {}
  for _, c in ipairs(clients) do
    local l = runs[c.id]
    rows[#rows + 1] = {c.name, cell(l, "delivered", "%d"), cell(l, "lost", "%d"), cell(l, "duplicated", "%d"),
      cell(l, "attempts", "%d"), cell(l, "span", "%.1f")}
  end
  table_md({"client", "delivered", "lost", "duplicated", "attempts", "makespan s"}, rows)
  write_chart("s6-faults.svg", "S6: 500 POSTs at 100/s, 20% 503 + 5% drops", chart_series(clients, runs), R)
  local _, _, lost = stat(runs.pacer, "lost")
  local _, _, dup = stat(runs.pacer, "duplicated")
  verdicts.S6 = string.format("pacer lost %d and duplicated %d at worst over %d runs. Target 0 and 0: %s",
    lost or -1, dup or -1, REPS, (lost == 0 and dup == 0) and "met" or "missed")
end

-- header: machine, commit, date, versions
local function header()
  local cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"):gsub("^%s+", "")
  local mem = tonumber(sh("awk '/MemTotal/ {print $2}' /proc/meminfo")) or 0
  out("# pacer benchmark results")
  out()
  out(string.format("Written by `bench/run` on %s. Commit `%s`%s. Machine: %s, %s cores, %.0f GiB, %s. " ..
    "Each figure is the median of %d repetitions, with min–max in brackets when they differ. Charts show the " ..
    "first repetition, every attempt the server saw, per second.", os.date("!%Y-%m-%d %H:%M UTC"),
    sh("git rev-parse --short HEAD"), sh("git status --porcelain --untracked-files=no") ~= "" and " (with local changes)" or "",
    cpu, sh("nproc"), mem / 1048576, sh("uname -sr"), REPS))
  out()
  out("Versions: " .. table.concat({
    sh(H.PACER .. " --version"), sh("curl --version | head -1 | cut -d' ' -f1-2"),
    "Python " .. sh("/usr/bin/python3 -c 'import sys, httpx, backoff, importlib.metadata as m; " ..
      "print(sys.version.split()[0], \"httpx\", httpx.__version__, \"backoff\", m.version(\"backoff\"))'"),
    "Node " .. sh("node --version") .. " bottleneck " .. sh("node -p \"require('./bench/peers/node/node_modules/bottleneck/package.json').version\""),
    sh("wrk --version 2>&1 | head -1 | cut -d' ' -f1-2"), sh("nginx -v 2>&1 | cut -d' ' -f3")}, ", ") .. ".")
  out()
  out("How each client is configured: `bench/peers/` (one file per client, one command line: " ..
    "SCENARIO URL N RATE CONCURRENCY). Targets are from issue #7; where pacer misses one, the figure says by how much.")
  out()
end

local order = {"S1", "S2", "S3", "S4", "S5", "S6"}
local selected = {}
for _, s in ipairs(order) do
  if not ONLY or ONLY:find(s, 1, true) then selected[#selected + 1] = s end
end

header()
local summary_at = #md + 1
local ng = start_nginx()
local t0 = pacer.now()
for _, s in ipairs(selected) do
  log("%s (%.0fs so far)", s, pacer.now() - t0)
  local ok, err = pcall(scenarios[s], ng)
  if not ok then
    log("%s failed: %s", s, tostring(err))
    out("## " .. s)
    out()
    out("Failed to run: " .. tostring(err))
    out()
  end
end
ng.stop()

local summary = {"## Summary: pacer against the best peer", ""}
for _, s in ipairs(selected) do
  summary[#summary + 1] = string.format("- **%s**: %s.", s, verdicts[s] or "not measured")
end
summary[#summary + 1] = ""
summary[#summary + 1] = string.format("Total time %.0f s.", pacer.now() - t0)
summary[#summary + 1] = ""
for i, line in ipairs(summary) do table.insert(md, summary_at + i - 1, line) end

local f = assert(io.open(OUT, "w"))
f:write(table.concat(md, "\n"), "\n")
f:close()
print(table.concat(summary, "\n"))
print("bench/run: wrote " .. OUT)
