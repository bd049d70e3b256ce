-- pacer.limiter.redis: a GCRA limiter kept in Redis, so processes on several hosts share one
-- quota: pacer.limiter{rate = "100/s", redis = "redis://127.0.0.1:6379", key = "audian"}.
-- Each acquire reserves the next slot atomically in a Lua script (EVALSHA; loaded with
-- SCRIPT LOAD, any Redis works, no module) timed by Redis's own clock, then sleeps until
-- that slot locally. When Redis cannot be reached: on_redis_down = "wait" (default)
-- retries with backoff until it is back; "local" paces with a local limiter at
-- `local_share` of the rate meanwhile, asking Redis again every PROBE seconds. Both log
-- once per outage. A Redis that stops answering (frozen, partitioned) is an outage once
-- a command has waited redis_timeout (default 2 s).
local redis_conn = require "pacer.redis.conn"
local corelib = require "pacer.c.corelib"
local new_limiter = require "pacer.c.limiter"
local task = require "pacer.c.task"
local log = require "pacer.base.log"
local opts = require "pacer.base.options"

local M = {}

local PROBE = 1 -- seconds between tries of Redis while a "local" limiter paces alone

-- KEYS: one per rule; ARGV: interval_us, tolerance_us per rule, then the cost n and
-- max_wait_us (-1: none). Reserves n units of every rule and returns the wait in us
-- before the slot (0: now); when that is beyond max_wait, reserves nothing and returns
-- -1 - wait.
local SCRIPT = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[2 * #KEYS + 1])
local max_wait = tonumber(ARGV[2 * #KEYS + 2])
local wait = 0
local tats = {}
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  tats[i] = tat
  local w = tat + (n - 1) * tonumber(ARGV[2 * i - 1]) - tonumber(ARGV[2 * i]) - now
  if w > wait then wait = w end
end
if max_wait >= 0 and wait > max_wait then return -1 - wait end
for i, key in ipairs(KEYS) do
  local at = now + wait
  local tat = tats[i]
  if tat < at then tat = at end
  tat = tat + n * tonumber(ARGV[2 * i - 1])
  redis.call('SET', key, string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
return wait
]]

local Limiter = {}
Limiter.__index = Limiter

local function rule_of(spec, burst)
  local b = burst or 1
  if type(spec) == "table" then spec, b = spec.rate, spec.burst or b end
  local ok, per_s, count, period = pcall(corelib.parse_rate, spec)
  if not ok then opts.raise("pacer.limiter: %s", per_s) end
  local interval = math.ceil(period * 1e6 / count)
  return {per_s = per_s, interval = interval, tolerance = (b - 1) * interval, burst = b}
end

-- o: {rate= | rules=, burst=, redis=url, key=, on_redis_down="wait"|"local", local_share=,
-- redis_timeout="2s"}
function M.limiter(o)
  local n = opts.check("pacer.limiter", o, {rate = "rate", rules = "table", burst = "integer", redis = "string",
    key = "string", on_redis_down = "string", local_share = "number", redis_timeout = "duration"})
  if not o.key then opts.raise("pacer.limiter: a Redis limiter needs a 'key' naming the shared quota") end
  local down = o.on_redis_down or "wait"
  if down ~= "wait" and down ~= "local" then
    opts.raise("pacer.limiter: on_redis_down must be \"wait\" or \"local\", got %q", down)
  end
  local self = setmetatable({key = o.key, down = down, waited = 0, granted = 0, outage = false, probing = false,
    retry_at = 0}, Limiter)
  self.host, self.port = redis_conn.parse_url(o.redis, "pacer.limiter")
  self.conn = redis_conn.new(self.host, self.port, string.format("limiter '%s'", o.key),
    redis_conn.timeout(n.redis_timeout, "pacer.limiter"))
  self:set_rules(o.rules or {o.rate}, o.burst)
  if down == "local" then
    local share = o.local_share or 0.5
    if not (share > 0 and share <= 1) then opts.raise("pacer.limiter: local_share must be in (0, 1], got %g", share) end
    self.share = share
  end
  return self
end

function Limiter:set_rules(rules, burst)
  if #rules == 0 then opts.raise("pacer.limiter: a 'rate' or 'rules' is required") end
  self.rules, self.keys, self.argv = {}, {}, {}
  for i, spec in ipairs(rules) do
    local r = rule_of(spec, burst)
    self.rules[i] = r
    self.keys[i] = "pacer:gcra:" .. self.key .. ":" .. i
    self.argv[2 * i - 1], self.argv[2 * i] = r.interval, r.tolerance
  end
  self.burst = burst
  self.fallback = nil
  -- the same rules in this process, taken after each Redis slot: it grants at once
  -- unless this process's own previous send went out late (its send-side schedule,
  -- runtime/mod/sendpace.c), so a late send is not followed by one too soon after it
  local local_rules = {}
  for i, r in ipairs(self.rules) do local_rules[i] = {rate = r.per_s, burst = r.burst} end
  self.sends = new_limiter{rules = local_rules}
end

function Limiter:set_rate(rate, burst) self:set_rules(type(rate) == "table" and rate or {rate}, burst or self.burst) end

-- One reservation of n units: the wait in seconds (negative: -1 - the wait beyond
-- max_wait, nothing reserved), or nil, error.
function Limiter:reserve(n, max_wait)
  local argv = {table.unpack(self.argv)}
  argv[#argv + 1], argv[#argv + 2] = n or 1, max_wait and math.floor(max_wait * 1e6) or -1
  local us, err = self.conn:eval("gcra", SCRIPT, self.keys, table.unpack(argv))
  if not us then return nil, err end
  if us < 0 then return -1 - (-1 - us) / 1e6 end
  return us / 1e6
end

-- The largest cost one acquire may ask for: the smallest burst of the rules.
function Limiter:max_cost()
  local m = math.huge
  for _, r in ipairs(self.rules) do m = math.min(m, r.burst) end
  return m
end

local function check_cost(self, n, where)
  if n == nil then return 1 end
  if math.type(n) ~= "integer" or n < 1 then opts.raise("%s: the cost must be an integer >= 1", where) end
  if n > self:max_cost() then
    opts.raise("%s: a cost of %d is above the limiter's burst (%d): it could never be granted", where, n,
      self:max_cost())
  end
  return n
end

function Limiter:local_limiter()
  if not self.fallback then
    local rules = {}
    for i, r in ipairs(self.rules) do rules[i] = {rate = r.per_s * self.share, burst = 1} end
    self.fallback = new_limiter{rules = rules, shared = false} -- made late: per worker
  end
  return self.fallback
end

-- lim:acquire([n [, {max_wait =}]]) -> seconds waited, the slot's time; or nil, {kind = "deadline"}
-- (priority is not shared through Redis: every host's waiters are equal there)
function Limiter:acquire(n, o)
  n = check_cost(self, n, "limiter:acquire")
  local max_wait = o and o.max_wait
  if type(max_wait) == "string" then max_wait = corelib.parse_duration(max_wait) end
  local t0 = task.now()
  local backoff = 0.05
  for _ = 1, math.huge do
    -- during an outage a "local" limiter asks Redis once per PROBE, one task at a time:
    -- the others must not each wait out redis_timeout
    if self.down == "local" and self.outage and (self.probing or task.now() < self.retry_at) then
      return self:acquire_local(n, o, t0)
    end
    self.probing = self.outage
    local ok, wait, err = pcall(self.reserve, self, n, max_wait)
    self.probing = false
    if not ok then error(wait, 0) end
    if wait and wait < 0 then
      return nil, {kind = "deadline", wait = -1 - wait, message = string.format(
        "the limiter's next slot is %.3fs away, beyond max_wait (%.3fs)", -1 - wait, max_wait)}
    end
    if wait then
      if self.outage then log.warn("redis %s:%d is back for limiter '%s'", self.host, self.port, self.key) end
      self.outage = false
      -- The wait counts from when Redis timed the slot, which is when it ran the script:
      -- the reply is at most a little after that, but the command may have queued long
      -- before it (a busy or frozen Redis). Taking the round trip off the wait would let
      -- every queued acquire go at once: wait it all, from the reply.
      local slot = task.now() + wait
      if wait > 0 then task.sleep(wait) end
      self.sends:acquire(math.min(n, self.sends:max_cost()))
      self.granted = self.granted + 1
      local w = task.now() - t0
      self.waited = self.waited + w
      return w, slot -- and the slot Redis gave, for lateness
    end
    if not self.outage then
      log.warn("redis %s:%d unreachable for limiter '%s' (%s): %s", self.host, self.port, self.key, err,
        self.down == "local" and string.format("pacing locally at %g of the rate", self.share) or "waiting for it")
      self.outage = true
    end
    self.conn:close()
    if self.down == "local" then
      self.retry_at = task.now() + PROBE
      return self:acquire_local(n, o, t0)
    end
    task.sleep(backoff)
    backoff = math.min(backoff * 2, 2)
  end
end

-- One grant from the local limiter (Redis being out), counted as a Redis one is.
function Limiter:acquire_local(n, o, t0)
  local w, x = self:local_limiter():acquire(math.min(n, self:local_limiter():max_cost()), o)
  if not w then return nil, x end -- x: the error
  self.granted = self.granted + 1
  return task.now() - t0, x -- x: the slot
end

function Limiter:state()
  local rate = math.huge
  for _, r in ipairs(self.rules) do rate = math.min(rate, r.per_s) end
  return {rate = rate, waited = self.waited, granted = self.granted, shared = true}
end

return M
