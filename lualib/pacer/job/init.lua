-- pacer.job: a file (or list, or iterator) in, one outcome per row out, resumable.
--   local job = pacer.job{input = "numbers.csv", key = "phone", concurrency = 8}
--   local s = job:run(function(row, item) ... return result end [, {batch = N, retry_failed = true}])
-- The input is loaded once into a ledger (job/ledger/: SQLite beside the input, or
-- Redis for several hosts); each run takes the items still pending, so a rerun after a
-- crash continues, and an item that was in flight is run again under the same
-- idempotency key. The input is checked against what the ledger was made from: a
-- changed input is refused, never mixed in.
local cjson = require "cjson"
local crypto = require "pacer.c.crypto"
local task = require "pacer.c.task"
local options = require "pacer.c.cmdline"
local opts = require "pacer.base.options"
local pool = require "pacer.run.pool"
local failures = require "pacer.run.failures"
local progress = require "pacer.run.progress"
local stats = require "pacer.run.stats"
local gauges = require "pacer.observe.gauges"
local input = require "pacer.job.input"
local ledger_family = require "pacer.job.ledger"
local output = require "pacer.job.output"

local M = {}

local Job = {}
Job.__index = Job

local SPEC = {input = {"string", "table", "function"}, ledger = "string", name = "string",
  key = {"string", "function"}, validate = "function", concurrency = "integer", max_attempts = "integer",
  output = "string", format = "string", lease = "duration", progress = "boolean", on_error = "string"}

local LOAD_BATCH = 1000

function M.new(o)
  if (options.workers or 1) > 1 then -- one ledger and one output each would need a lock of their own
    opts.raise("pacer.job: not supported under --workers yet: run the job in one process (its rate is the same)")
  end
  o = opts.check("pacer.job", o or {}, SPEC)
  if o.input == nil then opts.raise("pacer.job: option 'input' is required (a .csv or .jsonl file, \"-\", a list "
    .. "or an iterator)") end
  if o.format and o.format ~= "csv" and o.format ~= "jsonl" then
    opts.raise("pacer.job: format must be \"csv\" or \"jsonl\", got %q", o.format)
  end
  local file = type(o.input) == "string" and o.input ~= "-"
  local where = o.ledger or (file and o.input .. ".ledger.db")
  if not where then opts.raise("pacer.job: option 'ledger' is required when the input is not a file") end
  local conc = o.concurrency or 8
  if conc < 1 then opts.raise("pacer.job: 'concurrency' must be >= 1, got %d", conc) end
  local max_attempts = o.max_attempts or 1
  if max_attempts < 1 then opts.raise("pacer.job: 'max_attempts' must be >= 1, got %d", max_attempts) end
  if o.output then output.check(o.output) end
  if o.on_error and not failures.ON_ERROR[o.on_error] then
    opts.raise("pacer.job: on_error must be \"report\", \"return\" or \"raise\", got %q", o.on_error)
  end
  local name = o.name or (file and o.input:match("([^/]+)$")) or nil
  if where:match("^redis://") and not name then
    opts.raise("pacer.job: a Redis ledger needs a 'name' for the job")
  end
  name = name or "job"
  if type(o.input) == "string" and o.input ~= "-" and not o.format and not input.format_of(o.input) then
    input.open(o.input) -- raises, naming the formats
  end
  return setmetatable({o = o, name = name, where = where, concurrency = conc, max_attempts = max_attempts,
    lease = o.lease or 30}, Job)
end

-- Why the input differs from what the ledger was made from, or nil when it does not.
local function changed(self, meta)
  local inp = self.o.input
  if type(inp) == "string" and inp ~= "-" then
    local size, mtime = input.stat(inp)
    if not size then opts.raise("pacer.job: %s", mtime) end
    local local_ledger = not self.where:match("^redis://")
    if local_ledger and size == meta.size and mtime == meta.mtime then return nil end
    local hash = input.hash_file(inp)
    if hash == meta.hash then
      if local_ledger then self.ledger:set_meta{size = size, mtime = mtime} end -- touched, not changed
      return nil
    end
    if size ~= meta.size then return string.format("%d bytes then, %d now", meta.size or 0, size) end
    return "its content differs"
  end
  -- stdin, a list, an iterator: read through and compare fingerprints
  local r = input.open(inp, self.o.format)
  local n = 0
  for _ = 1, math.huge do
    local row, line = r.next()
    if row == nil and line == nil then break end
    n = n + 1
  end
  local hash = r.hash()
  r.close()
  if hash == meta.hash then return nil end
  return string.format("%d rows now, and their content differs", n)
end

-- The key of a good row, or nil, why.
local function key_of(self, row, seq)
  local k = self.o.key
  if k == nil then return tostring(seq) end
  if type(k) == "function" then
    local ok, v = pcall(k, row)
    if not ok then return nil, "key: " .. tostring(v) end
    if v == nil or v == "" then return nil, "key: the function returned nothing" end
    return tostring(v)
  end
  local v = type(row) == "table" and row[k] or nil
  if v == nil or v == "" or v == cjson.null then return nil, string.format("no %s", k) end
  return tostring(v)
end

-- Reads the input into the ledger, once. Rows that do not parse, lack a key or fail
-- validate() are kept as invalid items with "name:line: why".
local function load(self, L)
  local r = input.open(self.o.input, self.o.format)
  local size, mtime = input.stat(self.o.input)
  local batch, seq = {}, 0
  local validate = self.o.validate
  for _ = 1, math.huge do
    local row, line, why = r.next()
    if row == nil and line == nil then break end
    seq = seq + 1
    local it = {seq = seq, line = line, state = "pending"}
    if row then
      local okj, enc = pcall(cjson.encode, row)
      it.row = okj and enc or nil
      if not okj then why = "not storable as JSON: " .. enc end
      if not why then it.key, why = key_of(self, row, seq) end
      if not why and validate then
        local ok, good, reason = pcall(validate, row)
        if not ok then why = tostring(good)
        elseif not good then why = reason and tostring(reason) or "not valid" end
      end
    end
    if why then
      it.state, it.reason = "invalid", string.format("%s:%d: %s", r.name, line, why)
      it.key = it.key or (row and key_of(self, row, seq)) or tostring(seq)
    end
    batch[#batch + 1] = it
    if #batch >= LOAD_BATCH then
      L:add(batch)
      batch = {}
    end
  end
  L:add(batch)
  local hash = r.hash()
  r.close()
  L:finish_load{job_id = crypto.random_hex(8), hash = hash, size = size, mtime = mtime, total = seq,
    source = type(self.o.input) == "string" and self.o.input or "(" .. type(self.o.input) .. ")",
    name = self.name, created = os.date("!%Y-%m-%dT%H:%M:%SZ")}
  return seq
end

-- Opens the ledger and makes sure it holds this input: loaded now, or checked.
function Job:_prepare()
  if self.ledger then return end
  local inp = self.o.input
  if type(inp) == "string" and inp ~= "-" then -- before the ledger is made beside it
    local f, err = io.open(inp, "rb")
    if not f then opts.raise("pacer.job: cannot open %s", err) end
    f:close()
  end
  self.ledger = ledger_family.open(self.where, self.name, {lease = self.lease})
  local L = self.ledger
  if L:begin_load() then
    local ok, err = pcall(load, self, L)
    if not ok then
      L:close()
      self.ledger = nil
      error(err, 0)
    end
  else
    local meta = L:meta()
    local why = changed(self, meta)
    if why then
      L:close()
      self.ledger = nil
      local src = type(self.o.input) == "string" and self.o.input or "the input"
      opts.raise("pacer.job: %s has changed since the ledger %s was made from it (%s); run with the input it "
        .. "was made from, or to start a new job give another ledger (or delete %s: every row would be sent "
        .. "again)", src, self.where, why, self.where)
    end
  end
  self.job_id = L:meta().job_id
  gauges.register("pacer_job_items", self, function()
    if not self.ledger then return {} end
    local c, out = self.ledger:counts(), {}
    c.pending = c.pending + c.leased
    for _, k in ipairs{"done", "failed", "invalid", "duplicate", "pending"} do
      out[#out + 1] = {{job = self.name, outcome = k}, c[k]}
    end
    return out
  end)
end

-- The item as fn sees it.
local function view(self, it)
  return {key = it.key, line = it.line, seq = it.seq, attempt = it.attempts,
    idempotency_key = self.job_id .. "-" .. it.seq}
end

local function reason_of(err)
  if type(err) == "table" and err.message then return tostring(err.message) end
  return tostring(err)
end

local function encode_result(v)
  if v == nil then return "null" end
  local ok, enc = pcall(cjson.encode, v)
  return ok and enc or cjson.encode(tostring(v))
end

-- The summary table of the ledger now.
function Job:summary()
  self:_prepare()
  local c = self.ledger:counts()
  return {total = c.total, done = c.done, failed = c.failed, invalid = c.invalid, duplicate = c.duplicate,
    pending = c.pending + c.leased}
end

local pace

-- job:run(fn [, {batch = N, retry_failed = true}]) -> summary
function Job:run(fn, ro)
  if type(fn) ~= "function" then opts.raise("job:run: expected a function, got %s", type(fn)) end
  ro = opts.check("job:run", ro or {}, {batch = "integer", retry_failed = "boolean"})
  if ro.batch and ro.batch < 1 then opts.raise("job:run: 'batch' must be >= 1, got %d", ro.batch) end
  self:_prepare()
  local L = self.ledger
  if ro.retry_failed then L:retry_failed() end
  L:recover()
  local c0 = L:counts()
  local already = c0.total - c0.pending - c0.leased
  local bar = self.o.progress ~= false and progress.start{total = c0.total, done = already, label = self.name,
    pace = function() return pace(ro.batch) end}
  local started, wall0 = task.now(), task.wall()
  local ran, failed_now = 0, 0
  local inflight = {} -- seq -> item (taken and not finished)
  local buffer, others = {}, 0
  local per_take = ro.batch or 1
  local want = math.max(per_take, math.min(64, per_take * self.concurrency))
  local stopped = false

  local function take()
    for _ = 1, math.huge do
      if task.stopping() then stopped = true return nil end
      if #buffer >= per_take then break end
      local got
      got, others = L:take(want - #buffer)
      for _, it in ipairs(got) do
        buffer[#buffer + 1] = it
        inflight[it.seq] = it
      end
      if #got == 0 then
        if #buffer > 0 then break end
        if others == 0 then return nil end
        task.sleep(0.2) -- items leased by other processes: theirs may come back to us
      end
    end
    local unit = {}
    for i = 1, math.min(per_take, #buffer) do unit[i] = table.remove(buffer, 1) end
    return unit
  end

  local function outcome(it, ok, value)
    inflight[it.seq] = nil
    ran = ran + 1
    if ok then
      if bar then bar:advance(true) end
      return {item = it, state = "done", result = encode_result(value)}
    end
    local reason = reason_of(value)
    if it.failures + 1 < self.max_attempts then
      return {item = it, state = "pending", reason = reason}
    end
    failed_now = failed_now + 1
    if bar then bar:advance(false) end
    return {item = it, state = "failed", reason = reason}
  end

  local function handle(unit)
    local rows, views = {}, {}
    for i, it in ipairs(unit) do
      rows[i], views[i] = cjson.decode(it.row), view(self, it)
    end
    local list = {}
    if not ro.batch then
      local ok, v = pcall(fn, rows[1], views[1])
      list[1] = outcome(unit[1], ok, v)
    else
      local ok, results = pcall(fn, rows, views)
      if ok and type(results) ~= "table" then
        ok, results = false, "the batch function returned " .. type(results) .. ", not a list of results"
      end
      for i, it in ipairs(unit) do
        if not ok then list[i] = outcome(it, false, results)
        else
          local r = results[i]
          if r == nil then list[i] = outcome(it, false, "no result for this item")
          elseif type(r) == "table" and r.error ~= nil then list[i] = outcome(it, false, r.error)
          else list[i] = outcome(it, true, r) end
        end
      end
    end
    L:finish(list)
  end

  -- the heartbeat: leases kept alive, the run's pace recorded for `pacer job status`
  local running = true
  local function record_run()
    if ran == 0 then return end -- the last run that did something is what status shows
    local elapsed = task.now() - started
    L:set_meta{run_started = wall0, run_updated = task.wall(), run_items = ran, run_elapsed = elapsed,
      run_pid = require("pacer.c.proc").pid()}
  end
  local napping -- the heartbeat's task while it sleeps (woken at the end of the run)
  local beat = task.spawn(function()
    for _ = 1, math.huge do
      napping = task.current()
      task.sleep(1)
      napping = nil
      if not running then return end
      local list = {}
      for _, it in pairs(inflight) do list[#list + 1] = it end
      L:renew(list)
      record_run()
    end
  end)

  task.graceful(true)
  local ok, err = pcall(pool.run, self.concurrency, take, handle)
  task.graceful(false)
  running = false
  if napping then task.wake(napping) end
  beat:wait()
  if #buffer > 0 then L:release(buffer) end -- taken, never started
  record_run()
  if not ok then error(err, 0) end
  if bar then bar:finish() end
  local s = self:summary()
  s.ran, s.elapsed, s.interrupted = ran, task.now() - started, stopped or nil
  if self.o.output then
    local n = output.write(self.o.output, L)
    s.output = self.o.output
    assert(n == s.total, "outcome file incomplete")
  end
  self:_report(s)
  return s
end

-- Items per second the declared or learnt rate allows (one request per item, or per
-- batch of `batch`), when one client says so.
function pace(batch)
  local rate
  for client in pairs(stats.run.clients) do
    local r = client:rate()
    if r and r > 0 then
      if rate then return nil end -- several clients: no single pace
      rate = r
    end
  end
  return rate and rate * (batch or 1) or nil
end

-- The end summary on stderr, and failures reported (they set the exit status).
function Job:_report(s)
  if (options.verbosity or 0) >= 0 then
    io.stderr:write(string.format("pacer: job '%s': %d items: %d done, %d failed, %d invalid, %d duplicate, "
      .. "%d pending; this run %d in %.2fs (%.1f/s)%s%s\n", self.name, s.total, s.done, s.failed, s.invalid,
      s.duplicate, s.pending, s.ran, s.elapsed, s.elapsed > 0 and s.ran / s.elapsed or 0,
      s.interrupted and "; interrupted (run again to go on)" or "",
      s.output and ("; outcomes in " .. s.output) or ""))
  end
  self:_failures(s)
end

-- Failed and invalid items through run/failures.lua: a count, the first reasons, and
-- exit status 1 (on_error = "report", the default), or a raise ("raise"), or nothing
-- ("return": the caller reads the summary).
function Job:_failures(s)
  if s.failed + s.invalid == 0 or self.o.on_error == "return" then return end
  local col = failures.collector(string.format("job '%s'", self.name), self.o.on_error)
  local after = 0
  for _ = 1, math.huge do
    local recs = self.ledger:outcomes(after, 1000)
    if #recs == 0 then break end
    for _, r in ipairs(recs) do
      if r.state == "failed" then col:add(string.format("%s (key %s)", r.reason, r.key))
      elseif r.state == "invalid" then col:add(r.reason) end
    end
    after = recs[#recs].seq
  end
  col:finish(s.total, "items")
end

-- job:export(path) -> rows written: the outcome file of the ledger as it is.
function Job:export(path)
  output.check(path)
  self:_prepare()
  return output.write(path, self.ledger)
end

function Job:close()
  if self.ledger then self.ledger:close() end
  self.ledger = nil
end

return M
