-- pacer.policy.adaptive: sets a client's pace from what the API says. With quota headers it
-- spreads what is left over the time to the reset (times `target`; the tightest policy
-- wins; nothing left: pause until the reset). With no headers it learns from 429s: with
-- a Retry-After, the rate becomes what got through between two pauses; without, it
-- halves; after each clean window it creeps up (AIMD). A Retry-After pauses every
-- request of the client, and wins over the quota headers.
-- Quota units (the IETF qu parameter): "requests" paces the limiter given (a request
-- costs its `cost`, 1 unless told); "content-bytes" paces a second limiter of its own on
-- which a request costs its body's size; other units are not paced by (warned once).
-- One of these per partition of a client (policy/partition.lua).
-- Under --workers the limiter is shared but each worker sees only its own answers: they
-- are counted on the limiter (lim:answered), and a measure takes every worker's, once
-- the pause is over (the other workers' answers of the cycle have all come by then).
local task = require "pacer.c.task"
local log = require "pacer.base.log"
local new_limiter = require "pacer.c.limiter"

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
    last_429 = -math.huge, bytes_inflight = 0}, Adaptive)
  self.rate = o.declared or UNKNOWN
  self.mine = self.rate
  self.lim:set_rate(self.rate)
  local st = self.lim.state and self.lim:state()
  self.shared = st and st.answered ~= nil and st.shared or false
  if self.shared then self.cycle_mark = 0 end -- the first cycle: from the run's start
  return self
end

-- With --workers, at the first attempt after a pause: sets the rate measured over the
-- cycle that ended (every worker's answers), and the next cycle counts from here.
function Adaptive:end_cycle()
  local answered = self.lim:state().answered
  local m = self.measure
  if m then
    self.measure = nil
    local through = answered - m.mark
    if through > 0 then
      self:set(0.95 * through / math.max(m.at - m.start, 0.001), "429, measured")
    else -- none got through: as with no Retry-After
      self:current()
      self:halve()
    end
  end
  self.cycle_mark = answered
end

-- Multiplicative decrease: half the pace, or half of what was sent in the last second
-- while none was known.
function Adaptive:halve()
  local base = self.rate < UNKNOWN and self.rate or math.max(self.achieved(), 1)
  self:set(base / 2, "429")
end

-- The rate the limiter holds now: with --workers another worker may have set it.
function Adaptive:current()
  if self.shared then
    local r = self.lim:state().rate
    self.rate = r >= 0.999 * UNKNOWN and UNKNOWN or r
  end
  return self.rate
end

function Adaptive:set(rate, why)
  rate = math.max(self.min_rate, math.min(rate, self.declared or UNKNOWN))
  if math.abs(rate - self.rate) > 1e-9 * rate then
    if log.enabled("debug") then log.debug("adaptive: %.4g/s -> %.4g/s (%s)", self.rate, rate, why) end
    self.rate = rate
    self.lim:set_rate(rate)
  end
  self.mine = self.rate
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
-- (now: task.now(), when the caller has it)
function Adaptive:refused(now)
  if (self.refused_until or 0) <= (now or task.now()) then return nil end
  return string.format("the server asked this client to wait %.6gs, more than max_retry_after/max_time (%gs)",
    self.refused_ask, self.max_pause)
end

-- Seconds left of the current pause (0: none).
function Adaptive:pause_left(now) return math.max(0, self.paused_until - (now or task.now())) end

-- Before an attempt: waits out a pause. Returns the seconds waited.
function Adaptive:wait(now)
  now = now or task.now()
  local left = self.paused_until - now
  if left > 0 then
    task.sleep(left)
    now = task.now()
  end
  if self.shared and not self.cycle_mark and now >= self.cycle_start then self:end_cycle() end
  return math.max(left, 0)
end

-- The units a request counts for in `unit`: its cost in requests, its body's bytes.
local function units_of(r, unit)
  if unit == "content-bytes" then return r.body and #r.body or 0 end
  return r.cost or 1
end

-- Before an attempt, after the requests limiter: takes the request's bytes from the
-- content-bytes limiter, once a policy counted in bytes was seen. Returns seconds
-- waited (token.bytes: what was taken), or false, err for max_wait.
function Adaptive:acquire_units(r, wo, token)
  local lim = self.bytes
  local n = lim and units_of(r, "content-bytes") or 0
  if n < 1 then return 0 end
  if n > lim:max_cost() then -- room for the largest body; a burst too far ahead is refused: charge less
    if not pcall(lim.set_rate, lim, lim:state().rate, n) then n = lim:max_cost() end
  end
  local w, late = lim:acquire(n, wo)
  if not w then return false, late end
  token.bytes = n
  self.bytes_inflight = self.bytes_inflight + n
  return w
end

-- After the answer: the bytes of the request are no longer in flight.
function Adaptive:release_units(token)
  if token.bytes then self.bytes_inflight = self.bytes_inflight - token.bytes end
end

-- Sets the pace in each unit from the policies that give remaining and reset (the
-- tightest wins); `inflight` requests not yet answered are counted as spent. Returns
-- true if any policy could be used.
function Adaptive:learn(policies, inflight)
  local best, any = {}, false
  for _, p in ipairs(policies) do
    local unit = p.unit or "requests"
    if p.remaining and p.reset and unit ~= "requests" and unit ~= "content-bytes" then
      self:warn_once("unit " .. unit, "%s: policy %q counts %q: pacer paces by requests and content-bytes only; " ..
        "it is shown in res.quota but not paced by", self.name, tostring(p.name), unit)
    elseif p.remaining and p.reset then
      any = true
      local left = p.remaining - (unit == "requests" and (inflight or 0) or self.bytes_inflight)
      if left <= 0 then
        self:pause(math.max(p.reset, 0.001))
        -- and after it, the policy's own pace: else every request that waited out the
        -- pause would go at once into a window that holds only a few
        if p.limit and p.window and p.window > 0 then
          local r = self.target * math.max(p.limit, 1) / p.window
          if not best[unit] or r < best[unit] then best[unit] = r end
        end
      else
        -- whole seconds are rounded up by servers: on average half a second less is left
        local reset = self:clamp(p.reset, "quota reset")
        if reset >= 1 and reset == math.floor(reset) then reset = reset - 0.5 end
        local r = self.target * left / math.max(reset, 0.001)
        if not best[unit] or r < best[unit] then best[unit] = r end
      end
    end
  end
  if best.requests then self:set(best.requests, "quota") end
  if best["content-bytes"] then self:set_bytes(best["content-bytes"]) end
  return any
end

-- The pace in content-bytes per second; the limiter is made at the first such policy.
function Adaptive:set_bytes(rate)
  rate = math.max(rate, 1)
  if not self.bytes then
    self.bytes = new_limiter{rate = rate, burst = 1, shared = false}
  else
    self.bytes:set_rate(rate)
  end
  if log.enabled("debug") then log.debug("adaptive: %s content-bytes at %.4g B/s", self.name, rate) end
end

function Adaptive:warn_once(what, fmt, ...)
  self.warned = self.warned or {}
  if self.warned[what] then return end
  self.warned[what] = true
  log.warn(fmt, ...)
end

-- After an answer. `inflight`: other requests of the client (the partition) not yet
-- answered; `policies`: the quota policies that concern it (default: all of res.quota).
function Adaptive:observe(res, inflight, policies)
  if not res then return end
  local now = task.now()
  if res.status == 429 then
    local ra = res.retry_after
    -- more 429s from requests sent before the first one came back say nothing new
    local echo = self.paused_until > now or now - self.last_429 < 0.1
    self.last_429 = now
    if ra then self:pause(ra) end
    if not res.quota and not echo then -- no headers to go by
      if ra and self.shared and self.cycle_mark then -- measured by end_cycle, all workers' answers
        local cycle_end = math.max(now + ra, self.paused_until)
        self.measure = {mark = self.cycle_mark, start = self.cycle_start, at = cycle_end}
        self.cycle_start, self.cycle_ok, self.cycle_mark = cycle_end, 0, nil
      elseif ra and self.cycle_ok > 0 then
        -- what got through since the last pause ended, over the time until this one
        -- ends: the limit, measured (a window's quota over the window, for fixed windows)
        local cycle_end = now + ra
        if self.paused_until > cycle_end then cycle_end = self.paused_until end
        self:set(0.95 * self.cycle_ok / math.max(cycle_end - self.cycle_start, 0.001), "429, measured")
        self.cycle_start, self.cycle_ok = cycle_end, 0
      elseif not (self.shared and self:current() ~= self.mine and self.rate < UNKNOWN) then
        self:halve() -- (unless another worker has just measured the limit)
      end
    end
    self.clean_since = now
    return
  end
  if res.status < 400 then
    self.cycle_ok = self.cycle_ok + 1
    if self.shared then self.lim:answered() end
  end
  local q = res.quota
  if q and not res.headers["retry-after"] and self:learn(policies or q.policies or {q}, inflight) then
    self.clean_since = now
    return
  end
  -- no quota: additive increase after a clean window (only once a limit was learnt; with
  -- none, the next look is a window later: under --workers current() reads the shared
  -- limiter's state, which every answer of a long unlimited run would have paid for)
  if res.status < 400 and now - self.clean_since >= self.window then
    if self:current() < UNKNOWN then self:set(self.rate + math.max(0.1, self.rate * 0.05), "clean window") end
    self.clean_since = now
  end
end

M.UNKNOWN = UNKNOWN
return M
