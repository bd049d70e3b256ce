-- pacer.base.semaphore: a counting semaphore over the scheduler's suspend/wake, FIFO fair.
local task = require "pacer.c.task"

local Semaphore = {}
Semaphore.__index = Semaphore

local M = {}

function M.semaphore(n)
  return setmetatable({permits = n, head = 1, tail = 0, waiting = {}}, Semaphore)
end

-- Returns the seconds it waited for the permit (0 when one was free: no clock read).
function Semaphore:acquire()
  if self.permits > 0 and self.head > self.tail then
    self.permits = self.permits - 1
    return 0
  end
  self.tail = self.tail + 1
  self.waiting[self.tail] = task.current() or error("semaphore: must be used from a task", 2)
  local t0 = task.now()
  task.suspend()
  return task.now() - t0
end

-- Hands the permit straight to the longest waiter, if any.
function Semaphore:release()
  if self.head <= self.tail then
    local t = self.waiting[self.head]
    self.waiting[self.head] = nil
    self.head = self.head + 1
    task.wake(t)
  else
    self.permits = self.permits + 1
  end
end

function Semaphore:queued() return self.tail - self.head + 1 end

return M
