-- pacer.queue.base: what the durable queues (SQLite, Redis) share: checked pushes of
-- JSON items, a pop that waits (woken at once by a push here, polling for other
-- processes' pushes), close, and work() over leases: ack on success, fail on a raise.
-- A backend supplies insert(payload, priority, idem), try_pop(), ack(job), fail(job,
-- err), len(), dead(), stats(), close_db() and the fields max_attempts, poll.
local cjson = require "cjson"
local crypto = require "pacer.c.crypto"
local task = require "pacer.c.task"
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

-- q:pop() -> item, priority, job; waits while empty; nil once closed and empty
function Base:pop()
  for _ = 1, math.huge do
    local item, priority, job = self:try_pop()
    if item ~= nil then return item, priority, job end
    if self.closed then return nil end
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

-- q:work(n, fn [, {on_error=}]) -> {done=, failed=}: fn(item, attempt, job) until closed
-- and drained. A failure hands the item back to the queue (it comes round again) until
-- max_attempts; then it is a dead letter, reported as run/failures.lua says.
function Base:work(n, fn, o)
  local dead = pool.check("queue:work", n, fn, o)
  local done, failed = 0, 0
  pool.run(n, function()
    local item, _, job = self:pop()
    return item ~= nil and {item = item, job = job} or nil
  end, function(u)
    local ok, err = pcall(fn, u.item, u.job.attempts, u.job)
    if ok then
      self:ack(u.job)
      done = done + 1
    else
      self:fail(u.job, err)
      if u.job.attempts >= self.max_attempts then -- a dead letter now
        failed = failed + 1
        dead:add(err)
      end
    end
  end)
  dead:finish(done + failed)
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
