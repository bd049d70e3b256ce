-- pacer.run.summary: the run summary at exit (and on SIGINT) and the --stats file.
local cjson = require "cjson"
local http = require "pacer.c.http"
local options = require "pacer.c.cmdline"
local failures = require "pacer.run.failures"
local stats = require "pacer.run.stats"
local task = require "pacer.c.task"
local url = require "pacer.base.url"
local timing = require "pacer.observe.timing"
local threshold = require "pacer.observe.threshold"

local M = {}

function M.summary(how)
  local run = stats.run
  local makespan = task.now() - run.started
  local s = {
    outcome = how, requests = run.requests, ok = run.ok, failed = run.failed,
    retries = run.retries, throttled = run.throttled, waited = run.waited,
    makespan = makespan, by_status = {}, errors = run.errors,
  }
  for code, n in pairs(run.by_status) do s.by_status[tostring(code)] = n end
  if how == "interrupted" then s.cancelled = http.inflight() end
  s.cache_hits = run.cache_hits
  s.items_failed = failures.count()
  s.quota = {}
  for client in pairs(run.clients) do
    local q = client:quota()
    if q and q.remaining then s.quota[client.name] = q end
  end
  local t = timing.report(run.timing)
  s.latency, s.lateness, s.time = t.latency, t.lateness, t.time
  -- under --workers the rate is shared and no worker knows how much of it the others
  -- took: a worker's own N/R ratio would say nothing (the parent's summary has one)
  if #run.rates == 1 and (options.workers or 1) == 1 then M.pace(s, run.rates[1]) end
  return s
end

-- Sets s.rate, s.ideal (N/R) and s.ratio (makespan against N/R) for a run whose one
-- declared rate is `rate` per second, when any request ended.
function M.pace(s, rate)
  if s.ok + s.failed == 0 then return end
  s.rate = rate
  s.ideal = (s.ok + s.failed) / rate
  s.ratio = s.makespan / s.ideal
end

-- Why a ratio is well above 1, when the rate is not what held the run back: requests
-- that seldom waited for the limiter were paced by something else.
local function ratio_reason(s)
  if s.ratio < 1.1 or s.requests == 0 then return nil end
  local per_request = s.waited / s.requests
  if s.retries > 0 and s.retries >= 0.1 * s.requests then
    return string.format("%d retries and their backoff made it longer", s.retries)
  end
  if per_request < 0.25 / s.rate then
    return "requests seldom waited for the limiter: server latency or the concurrency cap set the pace, not the rate"
  end
  return nil
end

-- "20.1ms", "1.23s", "850µs": a latency, readably
local function ms(v)
  if v >= 1 then return string.format("%.3gs", v) end
  if v >= 0.001 then return string.format("%.3gms", v * 1e3) end
  return string.format("%.3gµs", v * 1e6)
end
M.ms = ms

-- The latency line and the time breakdown line (nil when nothing was timed).
local function timing_lines(s)
  local l, t = s.latency, s.time
  if not l or l.count == 0 then return nil end
  local out = string.format("pacer: latency p50 %s, p90 %s, p99 %s, p99.9 %s, max %s", ms(l.p50), ms(l.p90),
    ms(l.p99), ms(l.p999), ms(l.max))
  if s.lateness.count > 0 then out = out .. string.format("; send lateness p99 %s", ms(s.lateness.p99)) end
  return out .. string.format("\npacer: time went to: the limiter %.2fs, a concurrency slot %.2fs, retry pauses "
    .. "%.2fs, the server %.2fs", t.limiter, t.slot, t.retry, t.server)
end

-- The summary of s, a paragraph of lines each starting "pacer: ".
local function line(s)
  local codes = {}
  for code, n in pairs(s.by_status) do codes[#codes + 1] = code .. "×" .. n end
  table.sort(codes)
  for kind, n in pairs(s.errors) do codes[#codes + 1] = kind .. "×" .. n end
  local out = string.format("pacer: %d requests in %.2fs: %d ok, %d failed, %d retries, %d throttled (429); "
    .. "average wait for the limiter %.3fs per request", s.requests, s.makespan, s.ok, s.failed, s.retries,
    s.throttled, s.requests > 0 and s.waited / s.requests or 0)
  if s.cancelled and s.cancelled > 0 then
    out = out .. string.format("\npacer: %d request%s in flight cancelled", s.cancelled, s.cancelled == 1 and "" or "s")
  end
  if #codes > 0 then out = out .. "\npacer: by status: " .. table.concat(codes, " ") end
  local tl = timing_lines(s)
  if tl then out = out .. "\n" .. tl end
  if s.cache_hits > 0 then out = out .. string.format("\npacer: %d answered from the cache", s.cache_hits) end
  local names = {}
  for name in pairs(s.quota) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local q = s.quota[name]
    out = out .. string.format("\npacer: quota left at %s: %s of %s%s", url.redact(name), tostring(q.remaining),
      tostring(q.limit or "?"), q.reset and string.format(", resets in %.0fs", q.reset) or "")
  end
  if s.ratio then
    out = out .. string.format("\npacer: makespan %.2fs vs ideal N/R %.2fs at %g/s: ratio %.3f", s.makespan,
      s.ideal, s.rate, s.ratio)
    local why = ratio_reason(s)
    if why then out = out .. " (" .. why .. ")" end
  end
  return out
end
M.line = line

-- Lines of `out` said to be about `whose`: "pacer: worker 2 of 3: ..." for each line.
function M.tagged(out, whose)
  return ("\n" .. out):gsub("\npacer: ", "\npacer: " .. whose .. ": "):sub(2)
end

-- At exit (how: "ok" | "error" | "interrupted" | "exit"): --stats, the summary line,
-- the thresholds. Returns the exit status of a run that otherwise ended well: 99 when a
-- threshold was crossed, 1 when items failed, else 0; and under --workers, this
-- worker's figures for the parent's run-wide summary (host.c hands them over).
function M.at_exit(how)
  if package.loaded["pacer.limiter.sqlite"] then package.loaded["pacer.limiter.sqlite"].save_all() end
  local s = M.summary(how)
  local checked = threshold.check_all(s)
  if #checked > 0 then s.thresholds = checked end
  local workers = options.workers or 1
  if options.stats and workers == 1 then -- under --workers the parent writes it
    M.write_stats({s})
  end
  local whose = workers > 1 and ("worker %d of %d"):format(options.worker, workers)
  if (options.verbosity or 0) >= 0 and (s.requests > 0 or how == "interrupted") then
    local out = line(s)
    if whose then out = M.tagged(out, whose) end
    io.stderr:write(out .. "\n") -- one write(2): another worker's lines never land inside it
  end
  local failed = failures.line()
  if failed and whose then failed = M.tagged(failed, whose) end
  if failed then io.stderr:write(failed .. "\n") end -- even with -q: it sets the exit status
  local crossed = threshold.report(checked) -- even with -q: it sets the exit status
  -- (the parent shows nothing with -q and no --stats: host/spawn.c then makes no summary)
  local summed = workers > 1 and ((options.verbosity or 0) >= 0 or options.stats)
  local figures = summed and require("pacer.run.workers").figures(s, stats.run) or nil
  if crossed then return 99, figures end
  return failed and 1 or 0, figures
end

-- Writes --stats: each summary of `list` as one JSON line (one, but for --workers);
-- "-" is stdout. A failure is a warning: the run's results stand.
function M.write_stats(list)
  local f, err = io.stdout, nil
  if options.stats ~= "-" then f, err = io.open(options.stats, "w") end
  local ok = f ~= nil
  for _, s in ipairs(list) do ok = ok and f:write(cjson.encode(s), "\n") end
  if f == io.stdout then
    ok = f:flush() and ok
  elseif f then
    ok = f:close() and ok
  end
  if not ok then io.stderr:write("pacer: warning: --stats: cannot write ", tostring(err or options.stats), "\n") end
end

return M
