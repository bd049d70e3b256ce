-- pacer.queue.memory: the C priority queue (runtime/mod/queue.c) plus workers: q:work(n, fn)
-- runs n tasks that pop until the queue is closed and empty, retry a failing item up to
-- max_attempts, and keep what still fails in q:dead() with its error.
local new_queue = require "pacer.c.queue"
local task = require "pacer.c.task"
local opts = require "pacer.base.options"
local pool = require "pacer.run.pool"

local M = {}

local methods = getmetatable(new_queue{}).__index
local state = setmetatable({}, {__mode = "k"}) -- queue -> {max_attempts=, retry_delay=, dead={}}

-- q:work(n, fn [, {on_error=}]) -> {done=, failed=}: fn(item, attempt) for every item, n at a time.
function methods:work(n, fn, o)
  local failed_items = pool.check("queue:work", n, fn, o)
  local st = state[self]
  local done, failed = 0, 0
  pool.run(n, function() return self:pop() end, function(item)
    local ok, err
    for attempt = 1, st.max_attempts do
      ok, err = pcall(fn, item, attempt)
      if ok then break end
      if attempt < st.max_attempts and st.retry_delay > 0 then task.sleep(st.retry_delay) end
    end
    if ok then
      done = done + 1
    else
      failed = failed + 1
      st.dead[#st.dead + 1] = {item = item, err = err, attempts = st.max_attempts}
      failed_items:add(err)
    end
  end)
  failed_items:finish(done + failed)
  return {done = done, failed = failed}
end

-- q:dead() -> {{item=, err=, attempts=}, ...}: items that failed every attempt.
function methods:dead()
  local out = {}
  for i, d in ipairs(state[self].dead) do out[i] = d end
  return out
end

-- {capacity=, full = "wait" | "error", max_attempts = 3, retry_delay = 0}, checked by pacer.queue
function M.new(o)
  local ok, q = pcall(new_queue, o)
  if not ok then opts.raise("%s", q) end
  local attempts = o.max_attempts or 3
  if attempts < 1 then opts.raise("pacer.queue: 'max_attempts' must be >= 1, got %d", attempts) end
  state[q] = {max_attempts = attempts, retry_delay = opts.duration("pacer.queue", "retry_delay", o.retry_delay or 0),
    dead = {}}
  return q
end

return M
