-- pacer.cli.report: `pacer report EVENTS.jsonl -o run.svg|run.html`. Draws requests per
-- second over time, stacked by outcome (ok, ok on a retry, 429, errors), with the
-- declared rate as a line: the traffic figure of a run, from its --events log. Under it,
-- the latency panel: the server's p50 and p99 per time step (each attempt's `elapsed`).
local cjson = require "cjson"

local USAGE = "usage: pacer report EVENTS.jsonl -o OUT.svg|OUT.html [--title TEXT]\n"

local SERIES = {
  {key = "ok", label = "2xx/3xx", color = "#2e7d32"},
  {key = "retry", label = "ok on a retry", color = "#1565c0"},
  {key = "throttled", label = "429", color = "#ef6c00"},
  {key = "error", label = "errors (4xx/5xx, transport)", color = "#c62828"},
}

local function classify(e)
  if e.error then return "error" end
  local st = tonumber(e.status) or 0
  if st == 429 then return "throttled" end
  if st >= 400 then return "error" end
  return (tonumber(e.attempt) or 1) > 1 and "retry" or "ok"
end

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;"}))
end

-- Reads the events of the last run in the file (--events appends, each run starting
-- with a {"run": ...} line); returns the list or nil, err naming the file and line. A
-- torn last line (the run was killed mid-write) is skipped with a warning.
local function read_events(path)
  local f, err = io.open(path, "r")
  if not f then return nil, "cannot open " .. err end
  local events, n, bad = {}, 0, nil
  for line in f:lines() do
    n = n + 1
    if bad then -- a bad line followed by more: not a torn end
      f:close()
      return nil, string.format("%s:%d: not an event line (JSON with a numeric 't')", path, bad)
    end
    if line:find("%S") then
      local ok, e = pcall(cjson.decode, line)
      if ok and type(e) == "table" and type(e.run) == "table" then
        events = {} -- a new run starts: chart the last one
      elseif not ok or type(e) ~= "table" or type(e.t) ~= "number" then
        bad = n
      else
        events[#events + 1] = e
      end
    end
  end
  f:close()
  if bad then io.stderr:write(string.format("pacer report: warning: %s:%d: skipped a torn last line\n", path, bad)) end
  if #events == 0 then return nil, path .. ": no events (was the run made with --events?)" end
  table.sort(events, function(a, b) return a.t < b.t end)
  return events
end

-- Buckets events by time: {width=, buckets={[i]={ok=,retry=,...}}, rate=, duration=, totals=}
local function bucketize(events)
  local t0 = events[1].t
  local duration = math.max(events[#events].t - t0, 1e-3)
  local width = duration <= 30 and 0.5 or math.ceil(duration / 120)
  local nb = math.floor(duration / width) + 1
  local buckets, totals, rate = {}, {ok = 0, retry = 0, throttled = 0, error = 0}, nil
  for i = 1, nb do buckets[i] = {ok = 0, retry = 0, throttled = 0, error = 0, elapsed = {}} end
  for _, e in ipairs(events) do
    local i = math.floor((e.t - t0) / width) + 1
    local k = classify(e)
    buckets[i][k] = buckets[i][k] + 1
    if type(e.elapsed) == "number" then table.insert(buckets[i].elapsed, e.elapsed) end
    totals[k] = totals[k] + 1
    if type(e.rate) == "number" then rate = math.max(rate or 0, e.rate) end
  end
  return {width = width, buckets = buckets, rate = rate, duration = duration, totals = totals, n = #events}
end

local function nice_max(v)
  if v <= 0 then return 1 end
  local p = 10 ^ math.floor(math.log(v, 10))
  for _, m in ipairs{1, 2, 2.5, 5, 10} do
    if m * p >= v then return m * p end
  end
  return 10 * p
end

-- p50 and p99 (seconds) of each bucket's attempts, nil where none was timed.
local function percentiles(data)
  local p50, p99, top = {}, {}, 0
  for i, b in ipairs(data.buckets) do
    local v = b.elapsed
    if #v > 0 then
      table.sort(v)
      p50[i], p99[i] = v[math.max(1, math.ceil(#v * 0.5))], v[math.max(1, math.ceil(#v * 0.99))]
      top = math.max(top, p99[i])
    end
  end
  return p50, p99, top
end

-- The latency panel, drawn at y offset `y0` with the traffic chart's x axis.
local function latency_panel(add, data, y0, L, pw, ph)
  local p50, p99, top = percentiles(data)
  add('<g id="latency" transform="translate(0 %d)">', y0)
  add('<text x="%d" y="14" font-weight="bold">latency (server time per attempt)</text>', L)
  if top == 0 then
    add('<text x="%d" y="40">no attempt in the log was timed</text></g>', L)
    return
  end
  local maxv = nice_max(top * 1000 * 1.1) -- ms
  local T = 24
  for i = 0, 4 do
    local y = T + ph - ph * i / 4
    add('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>', L, y, L + pw, y)
    add('<text x="%d" y="%.1f" text-anchor="end">%g</text>', L - 6, y + 4, maxv * i / 4)
  end
  add('<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">ms</text>', T + ph // 2, T + ph // 2)
  local nb = #data.buckets
  local bw = pw / nb
  for _, s in ipairs{{"p50", p50, "#1565c0"}, {"p99", p99, "#c62828"}} do
    local pts = {}
    for i = 1, nb do
      local v = s[2][i]
      if v then pts[#pts + 1] = string.format("%.1f,%.1f", L + (i - 0.5) * bw, T + ph - ph * (v * 1000) / maxv) end
    end
    add('<polyline id="latency-%s" class="latency" fill="none" stroke="%s" stroke-width="1.5" points="%s"/>', s[1],
      s[3], table.concat(pts, " "))
  end
  add('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>', L, T + ph, L + pw, T + ph)
  add('<rect x="%d" y="%d" width="12" height="3" fill="#1565c0"/><text x="%d" y="%d">p50</text>', L, T + ph + 18,
    L + 16, T + ph + 22)
  add('<rect x="%d" y="%d" width="12" height="3" fill="#c62828"/><text x="%d" y="%d">p99</text></g>', L + 60,
    T + ph + 18, L + 76, T + ph + 22)
end

local function svg(data, title)
  local W, Hh, L, R, T, B = 900, 380, 60, 20, 40, 70
  local PANEL = 190 -- the latency panel under the traffic chart
  local pw, ph = W - L - R, Hh - T - B
  local maxv = data.rate or 0
  for _, b in ipairs(data.buckets) do
    maxv = math.max(maxv, (b.ok + b.retry + b.throttled + b.error) / data.width)
  end
  local tick = nice_max(maxv * 1.1 / 5) -- 1, 2, 2.5 or 5 times a power of ten
  local nticks = math.max(1, math.ceil(maxv * 1.1 / tick))
  maxv = tick * nticks
  local nb = #data.buckets
  local bw = pw / nb
  local H = Hh + PANEL
  local out = {string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">', W, H, W, H)}
  local function add(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  add('<rect width="%d" height="%d" fill="white"/>', W, Hh + PANEL)
  add('<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>', L, esc(title))
  -- grid and y axis
  for i = 0, nticks do
    local v = tick * i
    local y = T + ph - ph * i / nticks
    add('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>', L, y, L + pw, y)
    add('<text x="%d" y="%.1f" text-anchor="end">%g</text>', L - 6, y + 4, math.floor(v * 100 + 0.5) / 100)
  end
  add('<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">requests / s</text>', T + ph // 2, T + ph // 2)
  -- x axis ticks
  local step = nice_max(data.duration / 8)
  local t = 0
  while t <= data.duration + 1e-9 do
    local x = L + pw * (t / (nb * data.width))
    add('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/>', x, T + ph, x, T + ph + 4)
    add('<text x="%.1f" y="%d" text-anchor="middle">%gs</text>', x, T + ph + 17, t)
    t = t + step
  end
  -- stacked bars, one group per series
  for _, s in ipairs(SERIES) do
    add('<g id="series-%s" class="series" data-label="%s" fill="%s">', s.key, esc(s.label), s.color)
    for i, b in ipairs(data.buckets) do
      local below = 0
      for _, s2 in ipairs(SERIES) do
        if s2.key == s.key then break end
        below = below + b[s2.key]
      end
      local v = b[s.key] / data.width
      if v > 0 then
        local y0 = T + ph - ph * (below / data.width) / maxv
        local h = ph * v / maxv
        add('<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f"/>', L + (i - 1) * bw, y0 - h, math.max(bw - 0.5, 0.5), h)
      end
    end
    add('</g>')
  end
  if data.rate then
    local y = T + ph - ph * data.rate / maxv
    add('<g id="limit"><line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black" stroke-width="1.5" stroke-dasharray="6 4"/>', L, y, L + pw, y)
    add('<text x="%d" y="%.1f" text-anchor="end">declared %g/s</text></g>', L + pw, y - 5, data.rate)
  end
  add('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>', L, T + ph, L + pw, T + ph)
  -- legend
  local x = L
  for _, s in ipairs(SERIES) do
    add('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>', x, Hh - 26, s.color)
    local label = string.format("%s (%d)", s.label, data.totals[s.key])
    add('<text x="%d" y="%d">%s</text>', x + 16, Hh - 16, esc(label))
    x = x + 28 + #label * 7
  end
  latency_panel(add, data, Hh, L, pw, PANEL - 60)
  add('</svg>')
  return table.concat(out, "\n")
end

local function html(data, title, chart)
  local t = data.totals
  return string.format([[<!doctype html>
<html><head><meta charset="utf-8"><title>%s</title>
<style>body{font-family:sans-serif;margin:24px;color:#222} td{padding:2px 12px 2px 0}</style></head>
<body><h1>%s</h1>
<table id="summary"><tr><td>attempts</td><td>%d</td></tr><tr><td>duration</td><td>%.2f s</td></tr>
<tr><td>ok</td><td>%d</td></tr><tr><td>ok on a retry</td><td>%d</td></tr><tr><td>429</td><td>%d</td></tr>
<tr><td>errors</td><td>%d</td></tr>%s</table>
%s
</body></html>
]], esc(title), esc(title), data.n, data.duration, t.ok, t.retry, t.throttled, t.error,
    data.rate and string.format("<tr><td>declared rate</td><td>%g/s</td></tr>", data.rate) or "", chart)
end

return function(...)
  local args = {...}
  local input, output, title
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-o" then i = i + 1; output = args[i]
    elseif a == "--title" then i = i + 1; title = args[i]
    elseif a == "-h" or a == "--help" then io.stdout:write(USAGE); return 0
    elseif a:sub(1, 1) == "-" then io.stderr:write("pacer report: unknown option '", a, "'\n", USAGE); return 2
    elseif not input then input = a
    else io.stderr:write("pacer report: one events file only\n", USAGE); return 2 end
    i = i + 1
  end
  if not input or not output then io.stderr:write(USAGE); return 2 end
  local kind = output:match("%.(%w+)$")
  if kind ~= "svg" and kind ~= "html" then
    io.stderr:write("pacer report: -o must end in .svg or .html, got '", output, "'\n")
    return 2
  end
  local events, err = read_events(input)
  if not events then io.stderr:write("pacer report: ", err, "\n"); return 1 end
  local data = bucketize(events)
  title = title or ("pacer run: " .. input:match("[^/]*$"))
  local chart = svg(data, title)
  local f, ferr = io.open(output, "w")
  if not f then io.stderr:write("pacer report: cannot write ", ferr, "\n"); return 1 end
  f:write(kind == "svg" and chart or html(data, title, chart))
  f:close()
  io.stdout:write(string.format("pacer report: %d attempts over %.1fs -> %s\n", data.n, data.duration, output))
  return 0
end
