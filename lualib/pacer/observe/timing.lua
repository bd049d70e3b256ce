-- pacer.observe.timing: where the time of each attempt went, per client and for the run.
-- Each stats sink (run/stats.lua) holds one of these, fed by the attempt loop
-- (http/attempt.lua) once per attempt and once per retry pause, for the sink and the
-- sinks up its chain (a client's, then the run's):
--   latency   histogram of the server's time per attempt (the transfer, as libcurl timed it)
--   lateness  histogram of send start minus the slot the limiter promised (wrk2's
--             coordinated-omission view: a limiter that keeps its promise shows ~0)
--   limiter   histogram of the time each attempt waited for pacing
--   time      seconds spent waiting for the limiter (all pacing), for a concurrency
--             slot, in retry / Retry-After pauses, and at the server
--   calls     attempts by method and status (or transport error kind), for /metrics
local hist = require "pacer.c.hist"

local M = {}

-- M.watch: called after each attempt when set (observe/threshold's abort = true)

-- up: the timing of the sink up the chain, whose histograms get every value too
function M.new(up)
  return {latency = hist.new(up and up.latency), lateness = hist.new(up and up.lateness),
    limiter = hist.new(up and up.limiter), time = {limiter = 0, slot = 0, retry = 0, server = 0}, calls = {}}
end

-- One attempt. paced: seconds before_attempt waited for pacing (limiter, key pool,
-- window, breaker, adaptive pauses); slot: for the concurrency slot; slot_at: the
-- limiter's promised slot (nil: no limiter said); sent: when the transfer started;
-- server: its seconds (nil when it never ran).
function M.attempt(s, method, status, paced, slot, slot_at, sent, server)
  local pacing = paced or 0
  local t = s.timing
  t.limiter:record(pacing) -- (and up the chain, in C)
  if slot_at then t.lateness:record(math.max(0, sent - slot_at)) end
  if server then t.latency:record(server) end
  repeat
    t = s.timing
    local time = t.time
    time.limiter = time.limiter + pacing
    time.slot = time.slot + (slot or 0)
    if server then time.server = time.server + server end
    local by = t.calls[method]
    if not by then
      by = {}
      t.calls[method] = by
    end
    by[status] = (by[status] or 0) + 1
    s = s.up
  until s == nil
  if M.watch then M.watch() end
end

-- A pause before a retry (backoff or Retry-After).
function M.paused(s, seconds)
  repeat
    s.timing.time.retry = s.timing.time.retry + seconds
    s = s.up
  until s == nil
end

-- The plain-table view for stats(), pacer.stats() and --stats: latency and lateness
-- summaries ({count=, mean=, min=, p50=, p90=, p99=, p999=, max=}, seconds) and time.
function M.report(t)
  local time = {}
  for k, v in pairs(t.time) do time[k] = v end
  return {latency = t.latency:summary(), lateness = t.lateness:summary(), time = time}
end

return M
