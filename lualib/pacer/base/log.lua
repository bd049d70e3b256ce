-- pacer.base.log: leveled messages on stderr. The level comes from -v/-q, or PACER_LOG
-- (error, warn, info, debug). Callers pass redacted text: secrets never reach here.
local options = require "pacer.c.cmdline"

local LEVELS = {error = -1, warn = 0, info = 1, debug = 2}
local level = LEVELS[os.getenv("PACER_LOG") or ""] or options.verbosity or 0
-- under --workers a line says whose it is, as the worker's summary lines do
local PREFIX = "pacer: "
if options.in_worker and (options.workers or 1) > 1 then
  PREFIX = string.format("pacer: worker %d of %d: ", options.worker, options.workers)
end

local M = {}

local function emit(min, tag)
  return function(fmt, ...)
    if level >= min then
      -- one write(2) a line: with --workers, lines of two workers never interleave
      io.stderr:write(PREFIX .. tag .. string.format(fmt, ...) .. "\n")
    end
  end
end

M.error = emit(-1, "error: ")
M.warn = emit(0, "warning: ")
M.info = emit(1, "")
M.debug = emit(2, "debug: ")
function M.enabled(name) return level >= LEVELS[name] end

return M
