-- pacer.run.failures: items that failed in pacer.each, q:work, a job: reported when the
-- call ends (a count and the first messages, with the user's file:line), counted in the
-- exit summary, and they make the exit status 1, unless the caller said it handles
-- failures itself (on_error = "return").
local log = require "pacer.base.log"

local M = {}

local SHOWN = 3 -- messages shown per call
M.ON_ERROR = {report = true, ["return"] = true, raise = true}

local run = {failed = 0, calls = {}} -- for the exit summary

-- A collector for one call: add(err) per failed item; finish(total) reports.
function M.collector(where, on_error)
  return {where = where, on_error = on_error or "report", failed = 0, first = {}, seen = {},
    add = function(self, err)
      self.failed = self.failed + 1
      local msg = tostring(err)
      if self.seen[msg] then
        self.seen[msg] = self.seen[msg] + 1
      elseif #self.first < SHOWN then
        self.first[#self.first + 1], self.seen[msg] = msg, 1
      end
    end,
    finish = function(self, total, noun)
      if self.failed == 0 or self.on_error == "return" then return end
      local shown = {}
      for i, msg in ipairs(self.first) do
        shown[i] = self.seen[msg] > 1 and string.format("%s (%d times)", msg, self.seen[msg]) or msg
      end
      local text = string.format("%s: %d of %d %s failed; first: %s", self.where, self.failed, total,
        noun or "items", table.concat(shown, "; "))
      if self.on_error == "raise" then error(text, 0) end
      run.failed = run.failed + self.failed
      run.calls[#run.calls + 1] = text
      log.error("%s", text)
    end}
end

-- Failed items reported so far in this run (they set the exit status).
function M.count() return run.failed end

-- The summary line, or nil when nothing failed.
function M.line()
  if run.failed == 0 then return nil end
  return string.format("pacer: %d item%s failed in %d call%s (exit status 1)", run.failed,
    run.failed == 1 and "" or "s", #run.calls, #run.calls == 1 and "" or "s")
end

return M
