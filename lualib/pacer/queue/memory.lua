-- pacer.queue: the C priority queue (runtime/queue.c) plus workers: q:work(n, fn) runs
-- n tasks that pop until the queue is closed and empty, retry a failing item up to
-- max_attempts, and keep what still fails in q:dead() with its error.
local new_queue = require "pacer.c.queue"
local corelib = require "pacer.c.corelib"
local task = require "pacer.c.task"
local opts = require "pacer.opts"

local M = {}

local methods = getmetatable(new_queue{}).__index
local state = setmetatable({}, {__mode = "k"}) -- queue -> {max_attempts=, retry_delay=, dead={}}

-- q:work(n, fn) -> {done=, failed=}: fn(item, attempt) for every item, n at a time.
function methods:work(n, fn)
  if math.type(n) ~= "integer" or n < 1 then opts.raise("queue:work: n must be an integer >= 1, got %s", tostring(n)) end
  if type(fn) ~= "function" then opts.raise("queue:work: expected a function, got %s", type(fn)) end
  local st = state[self]
  local done, failed = 0, 0
  local function worker()
    while true do
      local item = self:pop()
      if item == nil then return end
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
      end
    end
  end
  local workers = {}
  for i = 1, n do workers[i] = task.spawn(worker) end
  for _, w in ipairs(workers) do w:wait() end
  return {done = done, failed = failed}
end

-- q:dead() -> {{item=, err=, attempts=}, ...}: items that failed every attempt.
function methods:dead()
  local out = {}
  for i, d in ipairs(state[self].dead) do out[i] = d end
  return out
end

local SPEC = {capacity = "integer", full = "string", max_attempts = "integer", retry_delay = "duration",
  durable = "string", name = "string", poll = "duration", lease = "duration", redis = "string"}

-- pacer.queue{capacity=, full = "wait" | "error", max_attempts = 3, retry_delay = 0}
-- or {durable = "jobs.db", name = "default", max_attempts = 3} (lualib/pacer/durable.lua)
function M.new(o)
  o = opts.check("pacer.queue", o or {}, SPEC)
  if o.redis then
    if o.durable or o.capacity or o.full or o.retry_delay then
      opts.raise("pacer.queue: a Redis queue takes redis, name, max_attempts, poll and lease")
    end
    return require("pacer.redis_queue").new(o)
  end
  if o.durable then
    if o.capacity or o.full or o.retry_delay then
      opts.raise("pacer.queue: a durable queue takes durable, name, max_attempts, poll and lease")
    end
    return require("pacer.durable").new(o)
  end
  if o.name or o.poll or o.lease then opts.raise("pacer.queue: 'name', 'poll' and 'lease' go with durable or redis") end
  local ok, q = pcall(new_queue, o)
  if not ok then opts.raise("%s", q) end
  local attempts = o.max_attempts or 3
  if attempts < 1 then opts.raise("pacer.queue: 'max_attempts' must be >= 1, got %d", attempts) end
  local okd, delay = pcall(corelib.parse_duration, o.retry_delay or 0)
  if not okd then opts.raise("pacer.queue: option 'retry_delay': %s", delay) end
  state[q] = {max_attempts = attempts, retry_delay = delay, dead = {}}
  return q
end

return M
