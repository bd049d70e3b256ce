-- pacer.base.clock: times of day on the local clock, for schedules and windows.
local opts = require "pacer.base.options"

local M = {}

-- "HH:MM" -> minute of the day, or a raise naming `where`.
function M.parse_hhmm(where, s)
  local h, m = tostring(s):match("^(%d%d?):(%d%d)$")
  h, m = tonumber(h), tonumber(m)
  if not h or h > 23 or m > 59 then opts.raise("%s: expected a time like \"02:00\", got %q", where, tostring(s)) end
  return h * 60 + m
end

-- Seconds from `wall` until the local clock next shows minute-of-day `mod`.
function M.until_minute(mod, wall)
  local t = os.date("*t", math.floor(wall))
  local now_s = t.hour * 3600 + t.min * 60 + t.sec + (wall % 1)
  local d = mod * 60 - now_s
  if d <= 0 then d = d + 86400 end
  return d
end

return M
