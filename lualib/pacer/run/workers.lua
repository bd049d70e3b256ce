-- pacer.run.workers: one summary of the whole of `pacer --workers N`. At exit each worker
-- encodes its figures (M.figures), and host.c leaves them in that worker's slot of the
-- memory the workers share. Once every worker has ended, the parent (host_summary)
-- hands them to M.summarize, which adds them up, merges the latency histograms, prints
-- the summary in a single process's format, marked "all N workers", and writes --stats.
-- A worker that died before it left its figures is named as missing, never counted 0.
local cjson = require "cjson"
local hist = require "pacer.c.hist"
local options = require "pacer.c.cmdline"

local M = {}

-- A worker's figures as one string: its summary, when it started and ended (the
-- monotonic clock, which every process shares), the rates it declared as rates of the
-- whole run, and its latency and lateness histograms.
function M.figures(s, run)
  local rates = {}
  for i, r in ipairs(run.rates) do rates[i] = run.per_worker[i] and r * options.workers or r end
  return cjson.encode{summary = s, started = run.started, ended = run.started + s.makespan, rates = rates,
    latency = run.timing.latency:dump(), lateness = run.timing.lateness:dump()}
end

-- Worker w's figures decoded and checked, or nil, why they are missing.
local function load(w)
  if not w.figures then
    if w.signal then return nil, "killed by signal " .. w.signal end
    return nil, "exited with status " .. tostring(w.code) .. " before leaving them"
  end
  local ok, f = pcall(function()
    local f = cjson.decode(w.figures)
    f.latency, f.lateness = hist.load(f.latency), hist.load(f.lateness)
    assert(type(f.summary) == "table" and type(f.rates) == "table")
    return f
  end)
  if not ok then return nil, "unreadable: " .. tostring(f) end
  return f
end

-- JSON gives every number back as a float: a count is shown as one ("200×30", not 30.0)
local function num(v)
  v = tonumber(v) or 0
  return math.tointeger(v) or v
end

local function add(into, from)
  for k, n in pairs(from or {}) do into[k] = num((into[k] or 0) + num(n)) end
end

local COUNTS = {"requests", "ok", "failed", "retries", "throttled", "waited", "cache_hits", "items_failed",
  "cancelled"}
local WORSE = {ok = 0, exit = 1, error = 2, interrupted = 3} -- how the run ended: the worst of how each did

-- "1, 2 and 4"
local function listed(ids)
  if #ids == 1 then return tostring(ids[1]) end
  return table.concat(ids, ", ", 1, #ids - 1) .. " and " .. ids[#ids]
end

-- "worker 2: killed by signal 9; workers 1 and 3: exited with status 1 before ..."; the
-- workers are left out when all missing ones have the one reason.
local function reasons(why, by_why, nmissing)
  if #why == 1 and #by_why[why[1]] == nmissing and nmissing > 1 then return why[1] end
  local out = {}
  for i, err in ipairs(why) do
    local ids = by_why[err]
    out[i] = string.format("worker%s %s: %s", #ids == 1 and "" or "s", listed(ids), err)
  end
  return table.concat(out, "; ")
end

-- The run's summary from the workers' figures: workers[k] = {figures = string | nil,
-- code = exit status, signal = n | nil}. Prints it (unless -q) after the workers' own,
-- and writes --stats: a line per worker ("worker": k), then the run's ("worker": 0).
function M.summarize(workers)
  local summary = require "pacer.run.summary"
  local n = #workers
  local all = {worker = 0, workers = n, outcome = "ok", makespan = 0, by_status = {}, errors = {}, quota = {},
    time = {limiter = 0, slot = 0, retry = 0, server = 0}}
  for _, k in ipairs(COUNTS) do all[k] = 0 end
  local latency, lateness = hist.new(), hist.new()
  local started, ended, rate, one_rate = math.huge, -math.huge, nil, true
  local lines, missing, why, by_why = {}, {}, {}, {} -- why: the reasons in order, by_why: whose
  for k, w in ipairs(workers) do
    local f, err = load(w)
    if not f then
      missing[#missing + 1] = k
      if not by_why[err] then why[#why + 1], by_why[err] = err, {} end
      table.insert(by_why[err], k)
    else
      local s = f.summary
      s.worker = k
      lines[#lines + 1] = s
      for _, c in ipairs(COUNTS) do all[c] = num(all[c] + num(s[c])) end
      add(all.by_status, s.by_status)
      add(all.errors, s.errors)
      add(all.time, s.time)
      for name, q in pairs(s.quota or {}) do -- the lowest any worker saw left
        local had = all.quota[name]
        if not had or (tonumber(q.remaining) or math.huge) < (tonumber(had.remaining) or math.huge) then
          for field, v in pairs(q) do
            if type(v) == "number" then q[field] = num(v) end
          end
          all.quota[name] = q
        end
      end
      if (WORSE[s.outcome] or 2) > WORSE[all.outcome] then all.outcome = s.outcome end
      latency:merge(f.latency)
      lateness:merge(f.lateness)
      started, ended = math.min(started, f.started), math.max(ended, f.ended)
      if #f.rates ~= 1 or (rate and rate ~= f.rates[1]) then one_rate = false end
      rate = f.rates[1]
    end
  end
  local present = #lines
  if present > 0 then all.makespan = ended - started end
  all.latency, all.lateness = latency:summary(), lateness:summary()
  if #missing > 0 then
    all.missing = missing
    if all.outcome ~= "interrupted" then all.outcome = "error" end
  end
  if all.cancelled == 0 then all.cancelled = nil end
  -- a ratio only from every worker, and only when they all declared the one rate
  if #missing == 0 and one_rate and rate then summary.pace(all, rate) end
  if options.stats then
    lines[#lines + 1] = all
    summary.write_stats(lines)
  end
  if (options.verbosity or 0) < 0 then return end
  local whose = #missing == 0 and ("all %d workers"):format(n) or ("%d of %d workers"):format(n - #missing, n)
  local out = {}
  if present > 0 and (all.requests > 0 or all.outcome == "interrupted" or #missing > 0) then
    out[1] = summary.tagged(summary.line(all), whose)
  end
  if #missing > 0 then
    out[#out + 1] = string.format("pacer: %s: the figures of worker%s %s are missing, %s (%s)", whose,
      #missing == 1 and "" or "s", listed(missing), present > 0 and "not counted above" or "no summary of the run",
      reasons(why, by_why, #missing))
  end
  if #out > 0 then io.stderr:write(table.concat(out, "\n"), "\n") end
end

return M
