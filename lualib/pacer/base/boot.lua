-- pacer.base.boot: run once by the host before the main chunk. Wraps coroutine.resume and
-- coroutine.wrap so that a pacer wait inside a user's own coroutine is passed up to the
-- scheduler (and its answer passed back down) instead of surfacing at the user's resume.
local task = require "pacer.c.task"

local MARK = task.yield_mark()
local co = coroutine
local resume, yield, status, close = co.resume, co.yield, co.status, co.close

local function pass(thread, ok, ...)
  if ok and status(thread) == "suspended" and (...) == MARK then
    return pass(thread, resume(thread, yield(MARK)))
  end
  return ok, ...
end

local wrapped = {}
for k, v in pairs(co) do wrapped[k] = v end

function wrapped.resume(thread, ...)
  return pass(thread, resume(thread, ...))
end

local function unwrap(thread, ok, ...)
  if ok then return ... end
  close(thread)
  error((...), 0)
end

function wrapped.wrap(fn)
  local thread = co.create(fn)
  return function(...)
    return unwrap(thread, pass(thread, resume(thread, ...)))
  end
end

_G.coroutine = wrapped

-- os.exit still prints the summary and writes --stats (then closes the state cleanly);
-- a crossed threshold turns a successful exit into 99, as at the end of a run
local real_exit = os.exit
function os.exit(code, close_state)
  local ok, exit_status = pcall(function() return require("pacer.run.summary").at_exit("exit") end)
  if ok and exit_status == 99 and (code == nil or code == true or code == 0) then code = 99 end
  return real_exit(code, close_state == nil and true or close_state)
end
package.loaded.coroutine = wrapped
-- the host's one global, for -e one-liners and the REPL; scripts may still require it
_G.pacer = require "pacer"
