-- pacer.queue.base: what the durable queues (SQLite, Redis) share: checked pushes of
-- JSON items, a pop that waits (woken at once by a push here, polling for other
-- processes' pushes), close, and work() over leases: ack on success, fail on a raise.
-- A backend supplies insert(payload, priority, idem), try_pop(), ack(job), fail(job,
-- err), renew(job) (the lease starts again), len(), dead(), stats(), close_db() and the
-- fields max_attempts, poll, lease, store_timeout.
local cjson = require "cjson"
local crypto = require "pacer.c.crypto"
local task = require "pacer.c.task"
local log = require "pacer.base.log"
local opts = require "pacer.base.options"
local pool = require "pacer.run.pool"

local Base = {}
Base.__index = Base

-- A durable queue table of `class` with the fields every backend keeps.
function Base.make(class, fields)
  fields.waiting, fields.closed = {}, false
  return setmetatable(fields, class)
end

-- q:push(item [, priority]) -> true, once the backend has it
function Base:push(item, priority)
  if self.closed then opts.raise("queue:push: the queue is closed") end
  if item == nil then opts.raise("queue:push: cannot push nil") end
  local okj, payload = pcall(cjson.encode, item)
  if not okj then opts.raise("queue:push: a durable queue stores JSON: %s", payload) end
  self:insert(payload, priority or 5, crypto.random_hex(16))
  local t = table.remove(self.waiting, 1)
  if t then task.wake(t) end
  return true
end

-- q:pop() -> item, priority, job; waits while empty; nil once closed and empty (or,
-- for work(), once its run has stopped)
function Base:pop(run)
  for _ = 1, math.huge do
    local item, priority, job = self:try_pop()
    if item ~= nil then return item, priority, job end
    if self.closed or (run and run.stopped) then return nil end
    local me = task.current() or opts.raise("queue:pop: must be called from a task")
    self.waiting[#self.waiting + 1] = me
    task.sleep(self.poll) -- a push here wakes us at once; other processes' after `poll`
    for i, t in ipairs(self.waiting) do
      if t == me then table.remove(self.waiting, i) break end
    end
  end
end

function Base:close()
  self.closed = true
  local w = self.waiting
  self.waiting = {}
  for _, t in ipairs(w) do task.wake(t) end
end

Base.__len = function(q) return q:len() end

-- The checked store_timeout option of `where` (seconds; default 30).
function Base.store_timeout(where, v)
  if v == nil then return 30 end
  if v <= 0 then opts.raise("%s: 'store_timeout' must be a positive duration, got %g", where, v) end
  return v
end

-- One step on the store (pop, ack, fail) for work(): f(self, ...) retried with backoff
-- (50 ms doubling to 1 s) while it raises (a full disk, a locked or unreadable file),
-- for up to store_timeout. Returns true, f's results; or false once it has failed that
-- long (run.stopped then says why) or when it fails after another worker gave up.
local function store_step(self, run, f, ...)
  local first, pause = nil, 0.05
  while true do
    local r = table.pack(pcall(f, self, ...))
    if r[1] then
      if first and run.warned then
        log.warn("queue '%s': the store works again after %.1fs", self.name, task.now() - first)
        run.warned = false
      end
      return true, table.unpack(r, 2, r.n)
    end
    if run.stopped then return false end
    local why = tostring(r[2]):gsub("^[^\n]-:%d+: ", "") -- the reason, not our line
    local now = task.now()
    first = first or now
    if not run.warned then
      log.warn("queue '%s': the store failed (%s): retrying for up to %gs", self.name, why, self.store_timeout)
      run.warned = true
    end
    if now - first >= self.store_timeout then
      run.stopped = string.format("queue:work: stopped: %s (after %gs of retries)", why, self.store_timeout)
      local w = self.waiting -- the workers waiting for an item stop too
      self.waiting = {}
      for _, t in ipairs(w) do task.wake(t) end
      return false
    end
    task.sleep(math.min(pause, first + self.store_timeout - now))
    pause = math.min(pause * 2, 1)
  end
end

-- Renews u.job's lease every lease/3 until u.finished, so a job that runs longer than
-- its lease is not taken for a dead worker's and handed to another. Returns the task.
local function keep_leased(self, u)
  return task.spawn(function()
    while not u.finished do
      u.sleeping = true
      task.sleep(self.lease / 3)
      u.sleeping = false
      if u.finished then return end
      pcall(self.renew, self, u.job) -- a renewal that fails now may work at the next turn
    end
  end)
end

-- q:work(n, fn [, {on_error=}]) -> {done=, failed=}: fn(item, attempt, job) until closed
-- and drained. A failure hands the item back to the queue (it comes round again) until
-- max_attempts; then it is a dead letter, reported as run/failures.lua says. A lease is
-- renewed while fn runs. A store that keeps failing for store_timeout stops every
-- worker and raises "queue:work: stopped: <why> (after Ns of retries)"; what was not
-- acked stays in the queue.
function Base:work(n, fn, o)
  local dead = pool.check("queue:work", n, fn, o)
  local done, failed = 0, 0
  local run = {}
  pool.run(n, function()
    if run.stopped then return nil end
    local ok, item, _, job = store_step(self, run, self.pop, run)
    return ok and item ~= nil and {item = item, job = job} or nil
  end, function(u)
    local renewer = keep_leased(self, u)
    local ok, err = pcall(fn, u.item, u.job.attempts, u.job)
    u.finished = true
    if u.sleeping then pcall(task.wake, renewer) end -- cut its sleep short
    if ok then
      if store_step(self, run, self.ack, u.job) then done = done + 1 end
    elseif store_step(self, run, self.fail, u.job, err) and u.job.attempts >= self.max_attempts then
      failed = failed + 1 -- a dead letter now
      dead:add(err)
    end
  end)
  dead:finish(done + failed)
  if run.stopped then error(run.stopped, 2) end
  return {done = done, failed = failed}
end

-- A backend's class (`kind`: "sqlite" | "redis"): the shared methods, then its own.
function Base.class(kind)
  local c = setmetatable({}, {__index = Base})
  c.__index, c.__len, c.__name = c, Base.__len, "pacer.queue"
  c.__tostring = function(q) return string.format("pacer.queue %s '%s' (%d waiting)", kind, q.name, q:len()) end
  return c
end

return Base
