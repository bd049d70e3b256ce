-- pacer.observe.threshold: pass/fail conditions on a run, k6-style: 'p99<300ms',
-- 'errors<1%', 'throttled==0', 'ratio<1.05'. Given with --threshold (repeatable) or
-- pacer.threshold{...} in a script; at exit each is printed with its measured value and
-- a crossed one makes the exit status 99. With abort = true a crossed threshold stops
-- the run early (checked as attempts finish, at most 5 times a second, once
-- `min_requests` attempts were made).
local opts = require "pacer.base.options"
local parse_duration = require("pacer.c.corelib").parse_duration
local task = require "pacer.c.task"
local timing = require "pacer.observe.timing"

local M = {}

-- metric -> how it is measured from a summary (run/summary.lua) and what its value is
local LATENCY = {p50 = "p50", p90 = "p90", p95 = false, p99 = "p99", ["p99.9"] = "p999", max = "max", mean = "mean"}
local METRICS = {
  errors = "count", throttled = "count", retries = "count", requests = "count", ratio = "number",
  lateness = "duration",
}
for k, v in pairs(LATENCY) do if v then METRICS[k] = "duration" end end
local OPS = {
  ["<"] = function(a, b) return a < b end, ["<="] = function(a, b) return a <= b end,
  [">"] = function(a, b) return a > b end, [">="] = function(a, b) return a >= b end,
  ["=="] = function(a, b) return a == b end, ["!="] = function(a, b) return a ~= b end,
}
local ACCEPTED = "metrics p50, p90, p99, p99.9, max, mean, lateness (durations: 300ms, 1s), errors, throttled, "
  .. "retries (a count or a share: 1%), requests, ratio; operators <, <=, >, >=, ==, !="

local list = {}   -- every threshold of the run, in the order given
local watched = {} -- those with abort = true

-- Parses one expression: {expr=, metric=, op=, value=, share=} or nil, why.
function M.parse(expr)
  if type(expr) ~= "string" then return nil, "expected a string like 'p99<300ms', got " .. type(expr) end
  local metric, op, value = expr:gsub("%s", ""):match("^([%a][%w%.]*)([<>=!]=?)(.+)$")
  if not metric or not OPS[op] or value:find("^[<>=!]") then
    return nil, string.format("'%s' is not METRIC OP VALUE (%s)", expr, ACCEPTED)
  end
  local kind = METRICS[metric]
  if not kind then return nil, string.format("unknown metric '%s' in '%s' (%s)", metric, expr, ACCEPTED) end
  local t = {expr = expr, metric = metric, op = op}
  if kind == "duration" then
    local ok, secs = pcall(parse_duration, value)
    if not ok then return nil, string.format("'%s': %s", expr, secs) end
    t.value = secs
  elseif kind == "count" and value:sub(-1) == "%" then
    t.value, t.share = tonumber(value:sub(1, -2)), true
    if not t.value then return nil, string.format("'%s': '%s' is not a percentage like 1%%", expr, value) end
  else
    t.value = tonumber(value)
    if not t.value then return nil, string.format("'%s': '%s' is not a number", expr, value) end
  end
  return t
end

-- A metric's value in a summary s; nil when there is nothing to measure it on.
local function measure(t, s)
  local m = t.metric
  if LATENCY[m] then return s.latency.count > 0 and s.latency[LATENCY[m]] or nil end
  if m == "lateness" then return s.lateness.count > 0 and s.lateness.p99 or nil end
  if m == "ratio" then return s.ratio end
  local n, of
  if m == "errors" then
    n, of = s.failed, s.ok + s.failed
  elseif m == "requests" then
    n, of = s.requests, s.requests
  else
    n, of = s[m], s.requests
  end
  if t.share then return of > 0 and n / of * 100 or nil end
  return n
end

local function fmt(t, v)
  if v == nil then return "n/a" end
  if METRICS[t.metric] == "duration" then return require("pacer.run.summary").ms(v) end
  if t.share then return string.format("%.3g%%", v) end
  return string.format("%.6g", v)
end

-- Adds expressions to the run's list (raises naming `where` on a malformed one).
function M.add(where, exprs, abort)
  for _, e in ipairs(exprs) do
    local t, err = M.parse(e)
    if not t then opts.raise("%s: %s", where, err) end
    list[#list + 1] = t
    if abort then watched[#watched + 1] = t end
  end
end

-- Checks every threshold against summary s: a list of {threshold=, value=, ok=} (a
-- threshold with nothing to measure passes: 'p99<1s' of a run that sent nothing).
function M.check_all(s)
  local out = {}
  for _, t in ipairs(list) do
    local v = measure(t, s)
    out[#out + 1] = {threshold = t.expr, value = v, ok = v == nil or OPS[t.op](v, t.value), shown = fmt(t, v)}
  end
  return out
end

-- Prints each checked threshold; returns true when one was crossed.
function M.report(checked)
  local crossed = false
  for _, c in ipairs(checked) do
    io.stderr:write(string.format("pacer: threshold %s %s (measured %s)\n", c.threshold, c.ok and "passed" or "CROSSED",
      c.shown))
    crossed = crossed or not c.ok
  end
  return crossed
end

-- abort = true: looked at as attempts finish (observe/timing's watch hook).
local last, min_requests = 0, 20
local function poll()
  local now = task.now()
  if now - last < 0.2 then return end
  last = now
  local summary = require "pacer.run.summary"
  local s = summary.summary("running")
  if s.requests < min_requests then return end
  for _, t in ipairs(watched) do
    local v = measure(t, s)
    if v ~= nil and not OPS[t.op](v, t.value) then
      io.stderr:write(string.format("pacer: threshold %s crossed (measured %s): stopping the run\n", t.expr, fmt(t, v)))
      os.exit(99) -- boot's os.exit: the summary, --stats and the thresholds first
    end
  end
end

-- pacer.threshold{"p99<300ms", "errors<1%", abort = true, min_requests = 20}
function M.threshold(o)
  if type(o) == "string" then o = {o} end
  if type(o) ~= "table" then opts.raise("pacer.threshold: expected a list of expressions like 'p99<300ms'") end
  for k in pairs(o) do
    if math.type(k) ~= "integer" and k ~= "abort" and k ~= "min_requests" then
      opts.raise("pacer.threshold: unknown option '%s' (known: abort, min_requests)", tostring(k))
    end
  end
  if #o == 0 then opts.raise("pacer.threshold: expected at least one expression like 'p99<300ms'") end
  M.add("pacer.threshold", o, o.abort == true)
  if o.min_requests then min_requests = o.min_requests end
  if o.abort then timing.watch = poll end
end

return M
