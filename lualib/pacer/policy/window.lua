-- pacer.policy.window: a client's sending window (window = "22:00-06:00"): a gate that
-- waits while the local time is outside it.
local task = require "pacer.c.task"
local opts = require "pacer.base.options"
local clock = require "pacer.base.clock"

local M = {}

-- window("22:00-06:00") -> gate: gate:wait() returns at once inside the window, else
-- sleeps until it opens; gate:inside(wall) says whether a moment is inside.
function M.new(spec)
  local a, b = tostring(spec):match("^%s*(%d%d?:%d%d)%s*%-%s*(%d%d?:%d%d)%s*$")
  if not a then opts.raise("pacer.client: window must look like \"22:00-06:00\", got %q", tostring(spec)) end
  local from, to = clock.parse_hhmm("pacer.client: window", a), clock.parse_hhmm("pacer.client: window", b)
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
    local d = clock.until_minute(from, wall)
    task.sleep(d)
    return d
  end
  return g
end

return M
