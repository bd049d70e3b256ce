-- pacer.run.schedule: work at times. every(interval, fn) and at("HH:MM", fn) run fn in its
-- own task (an error is logged, the schedule goes on) until handle:stop().
local corelib = require "pacer.c.corelib"
local task = require "pacer.c.task"
local log = require "pacer.base.log"
local opts = require "pacer.base.options"
local clock = require "pacer.base.clock"

local M = {}

local Handle = {}
Handle.__index = Handle

function Handle:stop()
  self.stopped = true
  if self.sleeping then
    local t = self.sleeping
    self.sleeping = nil
    -- its timer may have fired already (the task is ready, not suspended): then it
    -- sees `stopped` when it runs
    pcall(task.wake, t)
  end
end

local function loop(h, first_wait, next_wait, fn)
  h.task = task.spawn(function()
    local wait = first_wait()
    while not h.stopped do
      h.sleeping = task.current()
      task.sleep(wait)
      h.sleeping = nil
      if h.stopped then break end
      h.runs = h.runs + 1
      local ok, err = xpcall(fn, debug.traceback, h.runs)
      if not ok then log.error("scheduled job failed: %s", tostring(err)) end
      wait = next_wait()
    end
  end)
  return h
end

-- pacer.every("5m", fn [, {now = true}]): fn(run) every interval (the first run after one
-- interval, or at once with now = true).
function M.every(interval, fn, o)
  local ok, secs = pcall(corelib.parse_duration, interval)
  if not ok or secs <= 0 then
    opts.raise("pacer.every: interval must be a positive duration, got %s", tostring(interval))
  end
  if type(fn) ~= "function" then opts.raise("pacer.every: expected a function, got %s", type(fn)) end
  local now = o and o.now
  return loop(setmetatable({runs = 0}, Handle), function() return now and 0 or secs end,
    function() return secs end, fn)
end

-- pacer.at("02:00", fn): fn(run) every day at that local time.
function M.at(hhmm, fn)
  local mod = clock.parse_hhmm("pacer.at", hhmm)
  if type(fn) ~= "function" then opts.raise("pacer.at: expected a function, got %s", type(fn)) end
  local function next_wait() return clock.until_minute(mod, task.wall()) end
  return loop(setmetatable({runs = 0}, Handle), next_wait, next_wait, fn)
end

return M
