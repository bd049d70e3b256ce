-- pacer.schedule: work at times. every(interval, fn) and at("HH:MM", fn) run fn in its
-- own task (an error is logged, the schedule goes on) until handle:stop();
-- window("22:00-06:00") is a gate that waits while the local time is outside it.
local corelib = require "pacer.c.corelib"
local task = require "pacer.c.task"
local log = require "pacer.log"
local opts = require "pacer.opts"

local M = {}

local Handle = {}
Handle.__index = Handle

function Handle:stop()
  self.stopped = true
  if self.sleeping then
    local t = self.sleeping
    self.sleeping = nil
    task.wake(t)
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
  if not ok or secs <= 0 then opts.raise("pacer.every: interval must be a positive duration, got %s", tostring(interval)) end
  if type(fn) ~= "function" then opts.raise("pacer.every: expected a function, got %s", type(fn)) end
  local now = o and o.now
  return loop(setmetatable({runs = 0}, Handle), function() return now and 0 or secs end,
    function() return secs end, fn)
end

local function parse_hhmm(where, s)
  local h, m = tostring(s):match("^(%d%d?):(%d%d)$")
  h, m = tonumber(h), tonumber(m)
  if not h or h > 23 or m > 59 then opts.raise("%s: expected a time like \"02:00\", got %q", where, tostring(s)) end
  return h * 60 + m
end

-- Seconds from now until the local clock next shows minute-of-day `mod`.
local function until_minute(mod, wall)
  local t = os.date("*t", math.floor(wall))
  local now_s = t.hour * 3600 + t.min * 60 + t.sec + (wall % 1)
  local d = mod * 60 - now_s
  if d <= 0 then d = d + 86400 end
  return d
end

-- pacer.at("02:00", fn): fn(run) every day at that local time.
function M.at(hhmm, fn)
  local mod = parse_hhmm("pacer.at", hhmm)
  if type(fn) ~= "function" then opts.raise("pacer.at: expected a function, got %s", type(fn)) end
  local function next_wait() return until_minute(mod, task.wall()) end
  return loop(setmetatable({runs = 0}, Handle), next_wait, next_wait, fn)
end

-- window("22:00-06:00") -> gate: gate:wait() returns at once inside the window, else
-- sleeps until it opens; gate:inside(wall) says whether a moment is inside.
function M.window(spec)
  local a, b = tostring(spec):match("^%s*(%d%d?:%d%d)%s*%-%s*(%d%d?:%d%d)%s*$")
  if not a then opts.raise("pacer.client: window must look like \"22:00-06:00\", got %q", tostring(spec)) end
  local from, to = parse_hhmm("pacer.client: window", a), parse_hhmm("pacer.client: window", b)
  local g = {from = from, to = to}
  function g.inside(wall)
    local t = os.date("*t", math.floor(wall))
    local m = t.hour * 60 + t.min
    if from <= to then return m >= from and m < to end
    return m >= from or m < to -- across midnight
  end
  function g.wait()
    local wall = task.wall()
    if g.inside(wall) then return 0 end
    local d = until_minute(from, wall)
    task.sleep(d)
    return d
  end
  return g
end

return M
