-- pacer.policy.adaptive: sets a client's pace from what the API says. With quota headers it
-- spreads what is left over the time to the reset (times `target`; the tightest policy
-- wins; nothing left: pause until the reset). With no headers it learns from 429s: with
-- a Retry-After, the rate becomes what got through between two pauses; without, it
-- halves; after each clean window it creeps up (AIMD). A Retry-After pauses every
-- request of the client, and wins over the quota headers.
local task = require "pacer.c.task"
local log = require "pacer.base.log"

local M = {}

local Adaptive = {}
Adaptive.__index = Adaptive

local UNKNOWN = 1e6 -- requests/s: "no limit known yet"

-- {limiter=, declared=per second or nil, target=0.9, min_rate=0.05, window=seconds,
--  achieved=fn() -> requests sent in the last second}
function M.new(o)
  local self = setmetatable({lim = o.limiter, declared = o.declared, target = o.target or 0.9,
    max_pause = o.max_pause or 300, name = o.name or "client",
    min_rate = o.min_rate or 0.05, window = o.window or 2, paused_until = 0,
    clean_since = task.now(), achieved = o.achieved, cycle_start = task.now(), cycle_ok = 0,
    last_429 = -math.huge}, Adaptive)
  self.rate = o.declared or UNKNOWN
  self.lim:set_rate(self.rate)
  return self
end

function Adaptive:set(rate, why)
  rate = math.max(self.min_rate, math.min(rate, self.declared or UNKNOWN))
  if math.abs(rate - self.rate) > 1e-9 * rate then
    if log.enabled("debug") then log.debug("adaptive: %.4g/s -> %.4g/s (%s)", self.rate, rate, why) end
    self.rate = rate
    self.lim:set_rate(rate)
  end
end

-- A server-given time, clamped: one hostile answer (Retry-After: 99999999, a reset in
-- the year 5000) must not stall or break the client. Warns once per client and kind.
function Adaptive:clamp(seconds, what)
  if seconds <= self.max_pause then return seconds end
  self.warned = self.warned or {}
  if not self.warned[what] then
    self.warned[what] = true
    log.warn("%s: the server gave a %s of %.6gs, more than max_retry_after/max_time (%gs): %s", self.name, what,
      seconds, self.max_pause, what == "pause" and string.format("requests fail at once for %gs", self.max_pause)
      or string.format("taken as %gs", self.max_pause))
  end
  return self.max_pause
end

-- A pause the server asked for. One longer than max_pause is not waited out: for
-- max_pause, requests fail at once (refused()) instead of hanging.
function Adaptive:pause(seconds)
  local now = task.now()
  if seconds > self.max_pause then
    self:clamp(seconds, "pause")
    self.refused_until, self.refused_ask = now + self.max_pause, seconds
    return
  end
  if now + seconds > self.paused_until then self.paused_until = now + seconds end
end

-- Why a request must not wait now (the server asked for more than max_pause), or nil.
function Adaptive:refused()
  if (self.refused_until or 0) <= task.now() then return nil end
  return string.format("the server asked this client to wait %.6gs, more than max_retry_after/max_time (%gs)",
    self.refused_ask, self.max_pause)
end

-- Seconds left of the current pause (0: none).
function Adaptive:pause_left() return math.max(0, self.paused_until - task.now()) end

-- Before an attempt: waits out a pause. Returns the seconds waited.
function Adaptive:wait()
  local left = self.paused_until - task.now()
  if left <= 0 then return 0 end
  task.sleep(left)
  return left
end

-- After an answer. `inflight`: other requests of the client not yet answered.
function Adaptive:observe(res, inflight)
  if not res then return end
  local now = task.now()
  if res.status == 429 then
    local ra = res.retry_after
    -- more 429s from requests sent before the first one came back say nothing new
    local echo = self.paused_until > now or now - self.last_429 < 0.1
    self.last_429 = now
    if ra then self:pause(ra) end
    if not res.quota and not echo then -- no headers to go by
      if ra and self.cycle_ok > 0 then
        -- what got through since the last pause ended, over the time until this one
        -- ends: the limit, measured (a window's quota over the window, for fixed windows)
        local cycle_end = now + ra
        if self.paused_until > cycle_end then cycle_end = self.paused_until end
        self:set(0.95 * self.cycle_ok / math.max(cycle_end - self.cycle_start, 0.001), "429, measured")
        self.cycle_start, self.cycle_ok = cycle_end, 0
      else -- multiplicative decrease
        local base = self.rate < UNKNOWN and self.rate or math.max(self.achieved(), 1)
        self:set(base / 2, "429")
      end
    end
    self.clean_since = now
    return
  end
  if res.status < 400 then self.cycle_ok = self.cycle_ok + 1 end
  local q = res.quota
  if q and q.remaining and q.reset and not res.headers["retry-after"] then
    local best
    for _, p in ipairs(q.policies or {q}) do
      if p.remaining and p.reset then
        local left = p.remaining - (inflight or 0)
        if left <= 0 then
          self:pause(math.max(p.reset, 0.001))
        else
          -- whole seconds are rounded up by servers: on average half a second less is left
          local reset = self:clamp(p.reset, "quota reset")
          if reset >= 1 and reset == math.floor(reset) then reset = reset - 0.5 end
          local r = self.target * left / math.max(reset, 0.001)
          if not best or r < best then best = r end
        end
      end
    end
    if best then self:set(best, "quota") end
    self.clean_since = now
    return
  end
  -- no quota: additive increase after a clean window (only once a limit was learnt)
  if self.rate < UNKNOWN and res.status < 400 and now - self.clean_since >= self.window then
    self:set(self.rate + math.max(0.1, self.rate * 0.05), "clean window")
    self.clean_since = now
  end
end

M.UNKNOWN = UNKNOWN
return M
