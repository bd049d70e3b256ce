-- pacer.run.progress: one live status line on stderr for long jobs (at most 10 redraws a
-- second), or a plain line every 5 s with --progress=plain; silent when stderr is not a
-- terminal, with --progress=off, or -q. Done/total, the rate of the last 10 s, 429s,
-- retries, failures, transfers in flight, and an ETA from the items left at that rate.
local proc = require "pacer.c.proc"
local http = require "pacer.c.http"
local options = require "pacer.c.cmdline"
local stats = require "pacer.run.stats"
local task = require "pacer.c.task"

local M = {}

local Bar = {}
Bar.__index = Bar

local function mode()
  if (options.verbosity or 0) < 0 or options.progress == "off" then return "off" end
  if options.progress == "plain" then return "plain" end
  return proc.isatty(2) and "live" or "off"
end

local function fmt_eta(s)
  if not s or s ~= s or s == math.huge then return "--" end
  if s >= 3600 then return string.format("%dh%02dm", s // 3600, (s % 3600) // 60) end
  if s >= 60 then return string.format("%dm%02ds", s // 60, math.floor(s % 60)) end
  return string.format("%ds", math.ceil(s))
end

-- Items per second now: over the last 10 s (a window kept in 1 s steps), else since the start.
function Bar:rate(now)
  local w = self.window
  local last = w[#w]
  if not last or now - last.t >= 1 then
    w[#w + 1] = {t = now, done = self.done}
    if #w > 11 then table.remove(w, 1) end
  end
  local first = w[1]
  if now - first.t >= 2 then return (self.done - first.done) / (now - first.t) end
  local elapsed = now - self.started
  return elapsed > 0 and (self.done - self.done0) / elapsed or 0
end

-- The ETA: items left at the current pace; early on (under 2 s) the declared or learnt
-- pace when the caller can tell it (o.pace() -> items/s).
function Bar:eta(rate, now)
  local left = self.total - self.done
  if left <= 0 then return "0s" end
  local pace = self.pace and now - self.started < 2 and self.pace() or nil
  pace = pace or rate
  return pace > 0 and fmt_eta(left / pace) or "--"
end

function Bar:line()
  local run = stats.run
  local now = task.now()
  local rate = self:rate(now)
  local parts = {}
  if self.total then
    parts[#parts + 1] = string.format("%s%d/%d %3d%%", self.label and (self.label .. " ") or "",
      self.done, self.total, self.total > 0 and math.floor(100 * self.done / self.total) or 100)
  else
    parts[#parts + 1] = string.format("%s%d done", self.label and (self.label .. " ") or "", self.done)
  end
  parts[#parts + 1] = string.format("%.1f/s", rate)
  parts[#parts + 1] = string.format("429s %d", run.throttled)
  parts[#parts + 1] = string.format("retries %d", run.retries)
  if self.failed > 0 then parts[#parts + 1] = string.format("failed %d", self.failed) end
  parts[#parts + 1] = string.format("in flight %d", http.inflight())
  if self.total then parts[#parts + 1] = "ETA " .. self:eta(rate, now) end
  return table.concat(parts, "  ")
end

function Bar:draw(final)
  if self.mode == "live" then
    io.stderr:write("\r", self:line(), "\27[K", final and "\n" or "")
  elseif self.mode == "plain" then
    io.stderr:write("progress: ", self:line(), "\n")
  end
  io.stderr:flush()
end

function Bar:advance(ok)
  self.done = self.done + 1
  if ok == false then self.failed = self.failed + 1 end
  if self.mode == "off" then return end
  local now = task.now()
  local every = self.mode == "live" and 0.1 or 5
  if now - self.drawn >= every then
    self.drawn = now
    self:draw(false)
  end
end

function Bar:finish()
  if self.finished then return end
  self.finished = true
  if self.mode ~= "off" then self:draw(true) end
end

-- {total=, label=, done = already done (a resumed job), pace = function() -> items/s | nil}
function M.start(o)
  o = o or {}
  local now = task.now()
  return setmetatable({total = o.total, label = o.label, done = o.done or 0, done0 = o.done or 0, failed = 0,
    started = now, drawn = now - 1, mode = o.mode or mode(), pace = o.pace, window = {}}, Bar)
end

return M
