-- pacer.base.context: defaults scoped to one task, read by the client when a request
-- does not say: `priority` (the REPL runs each typed statement at REPL_PRIORITY, so it
-- goes ahead of background work) and `cost` (a pacer.batch{cost = "items"} charges one
-- unit per item to the requests its send() makes). Weak keys: a finished task's entry goes.
local task = require "pacer.c.task"

local M = {}

M.DEFAULT_PRIORITY = 5 -- the limiter's default (runtime/mod/limiter.c)
M.REPL_PRIORITY = 2

local by_task = setmetatable({}, {__mode = "k"})
local any = false -- set() was called: until then get() need not look for the task

-- The value of `name` for the running task, or nil.
function M.get(name)
  if not any then return nil end
  local t = task.current()
  local c = t and by_task[t]
  return c and c[name]
end

-- Sets `name` for the running task (or task t); returns the previous value.
function M.set(name, value, t)
  t = t or task.current()
  if not t then return nil end
  any = true
  local c = by_task[t]
  if not c then
    c = {}
    by_task[t] = c
  end
  local prev = c[name]
  c[name] = value
  return prev
end

return M
