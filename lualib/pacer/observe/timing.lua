-- pacer.observe.timing: where the time of each attempt went, per client and for the run.
-- Each stats sink (run/stats.lua) holds one of these, fed by the attempt loop
-- (http/attempt.lua) once per attempt and once per retry pause:
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

function M.new()
  return {latency = hist.new(), lateness = hist.new(), limiter = hist.new(),
    time = {limiter = 0, slot = 0, retry = 0, server = 0}, calls = {}}
end

-- One attempt. paced: seconds before_attempt waited for pacing (limiter, key pool,
-- window, breaker, adaptive pauses); slot: for the concurrency slot; slot_at: the
-- limiter's promised slot (nil: no limiter said); sent: when the transfer started;
-- server: its seconds (nil when it never ran).
function M.attempt(sinks, method, status, paced, slot, slot_at, sent, server)
  local pacing = paced or 0
  local late = slot_at and math.max(0, sent - slot_at)
  for i = 1, #sinks do
    local s = sinks[i]
    local t = s.timing
    t.time.limiter = t.time.limiter + pacing
    t.time.slot = t.time.slot + (slot or 0)
    t.limiter:record(pacing)
    if late then t.lateness:record(late) end
    if server then
      t.latency:record(server)
      t.time.server = t.time.server + server
    end
    local by = t.calls[method]
    if not by then
      by = {}
      t.calls[method] = by
    end
    by[status] = (by[status] or 0) + 1
  end
  if M.watch then M.watch() end
end

-- A pause before a retry (backoff or Retry-After).
function M.paused(sinks, seconds)
  for i = 1, #sinks do
    local s = sinks[i]
    s.timing.time.retry = s.timing.time.retry + seconds
  end
end

-- The plain-table view for stats(), pacer.stats() and --stats: latency and lateness
-- summaries ({count=, mean=, min=, p50=, p90=, p99=, p999=, max=}, seconds) and time.
function M.report(t)
  local time = {}
  for k, v in pairs(t.time) do time[k] = v end
  return {latency = t.latency:summary(), lateness = t.lateness:summary(), time = time}
end

return M
