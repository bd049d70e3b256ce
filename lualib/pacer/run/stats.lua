-- pacer.run.stats: counters for a client and for the whole run, and the --events log.
local cjson = require "cjson"
local task = require "pacer.c.task"
local options = require "pacer.c.cmdline"
local log = require "pacer.base.log"
local proc = require "pacer.c.proc"
local linefile = require "pacer.c.linefile"
local url = require "pacer.base.url"
local timing = require "pacer.observe.timing"

local M = {}

-- A sink of counters: a client's (or pacer.request's), whose every count also goes to
-- `up`, the run's. The functions below walk that chain; histograms chain in C.
local function new(up)
  return {requests = 0, ok = 0, failed = 0, retries = 0, throttled = 0, cache_hits = 0,
    cache_misses = 0, revalidations = 0, waited = 0, by_status = {}, errors = {},
    timing = timing.new(up and up.timing), up = up}
end
M.new = new

-- the whole run (for the progress line, the summary and --stats)
M.run = new()
M.run.started = task.now()
M.run.rates = {} -- declared rates, per second
M.run.per_worker = {} -- [i] = true: rates[i] is of a limiter each worker has for itself
M.run.clients = setmetatable({}, {__mode = "k"}) -- for the quota left at exit

local events -- the --events file (pacer.c.linefile), opened on first use (main.c checked it can be)
local events_broken = false

-- Appends one line to --events ("-": stdout), whole, even when the workers of
-- --workers N all append to the one file (pacer.c.linefile says how). The log is a
-- record of the run, not part of it: a failure to write warns once and the run goes
-- on (a request's result never changes).
local function log_event(e)
  if events_broken then return end
  local workers = options.workers or 1
  if not events then
    local f, err = linefile.open(options.events)
    if not f then
      events_broken = true
      return log.warn("--events: cannot open %s; no more events are written", err)
    end
    events = f
    -- a run marker: the file is appended to, so several runs can share one log; under
    -- --workers the parent wrote the run's one marker before it forked (host/spawn.c)
    if workers == 1 then events:write(cjson.encode{run = {started = task.wall(), pid = proc.pid()}}) end
  end
  if workers > 1 then e.worker = options.worker end
  local ok, err = events:write(cjson.encode(e))
  if not ok then
    events_broken = true
    log.warn("--events: cannot write to %s: %s; no more events are written", options.events, tostring(err))
  end
end

-- One attempt finished: a status or a transport error kind. The sender's pace
-- (sender:rate(), if it has one) is asked only for an --events line: a limiter's state
-- is not cheap to read on every attempt.
function M.attempt(s, req, attempt, status, err, wait, elapsed, quota, sender)
  repeat
    s.requests = s.requests + 1
    if attempt > 1 then s.retries = s.retries + 1 end
    if status then
      s.by_status[status] = (s.by_status[status] or 0) + 1
      if status == 429 then s.throttled = s.throttled + 1 end
    else
      s.errors[err.kind] = (s.errors[err.kind] or 0) + 1
    end
    s = s.up
  until s == nil
  if options.events then
    log_event{t = task.wall(), method = req.method, url = url.redact(req.url), status = status,
      error = err and err.kind or nil, attempt = attempt, wait = wait, elapsed = elapsed,
      quota = quota, rate = sender and sender.rate and sender:rate() or nil}
  end
end

function M.waited(s, seconds)
  repeat
    s.waited = s.waited + seconds
    s = s.up
  until s == nil
end

-- A logical request ended (after its retries).
function M.finished(s, ok)
  repeat
    if ok then s.ok = s.ok + 1 else s.failed = s.failed + 1 end
    s = s.up
  until s == nil
end

function M.cache_hit(s)
  repeat
    s.cache_hits = s.cache_hits + 1
    s.ok = s.ok + 1
    s = s.up
  until s == nil
end

-- a miss; `revalidating` when a stale entry's validators go with the request
function M.cache_miss(s, revalidating)
  repeat
    s.cache_misses = s.cache_misses + 1
    if revalidating then s.revalidations = s.revalidations + 1 end
    s = s.up
  until s == nil
end

-- A plain copy for stats(): timing becomes latency, lateness and time (observe/timing).
function M.copy(s)
  local c = {}
  for k, v in pairs(timing.report(s.timing)) do c[k] = v end
  for k, v in pairs(s) do
    if k == "clients" or k == "timing" or k == "up" then goto continue end
    if type(v) == "table" then
      local t = {}
      for k2, v2 in pairs(v) do t[k2] = v2 end
      v = t
    end
    c[k] = v
    ::continue::
  end
  return c
end

return M
