-- pacer.run.pool: n worker tasks that take work until there is none left, the one
-- worker loop behind pacer.each, q:work and jobs.
local task = require "pacer.c.task"
local opts = require "pacer.base.options"
local failures = require "pacer.run.failures"

local M = {}

-- The arguments of a work(n, fn [, o]) call, or a raise at the caller's line naming
-- `where`. Returns the failure collector for the call (run/failures.lua).
function M.check(where, n, fn, o)
  if math.type(n) ~= "integer" or n < 1 then opts.raise("%s: n must be an integer >= 1, got %s", where, tostring(n)) end
  if type(fn) ~= "function" then opts.raise("%s: expected a function, got %s", where, type(fn)) end
  return M.collector(where, o)
end

-- The failure collector of a call whose options `o` may say on_error = "report" (the
-- default: shown, and the exit status is 1), "return" (the caller handles them) or
-- "raise" (an error once every item has run).
function M.collector(where, o, spec)
  o = opts.check(where, o or {}, spec or {on_error = "string"})
  if o.on_error and not failures.ON_ERROR[o.on_error] then
    opts.raise("%s: on_error must be \"report\", \"return\" or \"raise\", got %q", where, o.on_error)
  end
  return failures.collector(where, o.on_error), o
end

-- Runs n workers; each calls take() for a unit of work (nil: that worker stops) and
-- handle(unit) on it. Returns once every worker has stopped. A raise in take or handle
-- (the caller catches the user's own errors) ends that worker; the first such error is
-- raised here once the others are done, so a pool never loses a worker silently.
function M.run(n, take, handle)
  local workers = {}
  for i = 1, n do
    workers[i] = task.spawn(function()
      while true do
        local unit = take()
        if unit == nil then return end
        handle(unit)
      end
    end)
  end
  local first
  for _, w in ipairs(workers) do
    local ok, err = w:wait()
    if not ok and first == nil then first = err end
  end
  if first ~= nil then error(first, 0) end
end

return M
