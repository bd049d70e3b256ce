-- pacer.policy.backoff: backoff strategies as plain objects with delay(self, attempt, ctx) ->
-- seconds. attempt is the retry number (1 for the first retry). Any table with such a
-- method can stand in for these. Jitter: "full" U(0,d), "equal" d/2 + U(0,d/2), "none".
local M = {}

local Strategy = {}
Strategy.__index = Strategy

local function jittered(self, d)
  local rnd = self.random or math.random
  if self.jitter == "full" then return d * rnd()
  elseif self.jitter == "equal" then return d / 2 + (d / 2) * rnd()
  end
  return d
end

local JITTERS = {full = true, equal = true, none = true}

local function new(kind, o, raw)
  o = o or {}
  if o.jitter ~= nil and not JITTERS[o.jitter] then
    error(string.format("pacer.backoff.%s: jitter must be \"full\", \"equal\" or \"none\", got %q",
      kind, tostring(o.jitter)), 3)
  end
  local self = setmetatable({kind = kind, jitter = o.jitter or "none", random = o.random,
    cap = o.cap or math.huge}, Strategy)
  self.raw = raw
  for k, v in pairs(o) do if self[k] == nil then self[k] = v end end
  return self
end

function Strategy:delay(attempt, ctx)
  return jittered(self, math.min(self.cap, self.raw(self, attempt, ctx)))
end

-- `delay` names both the option and the method: the number is kept as `seconds`
function M.constant(o)
  local copy = {}
  for k, v in pairs(o or {}) do if k ~= "delay" then copy[k] = v end end
  copy.seconds = (o or {}).delay or 1
  return new("constant", copy, function(self) return self.seconds end)
end

function M.linear(o)
  return new("linear", o, function(self, n) return (self.base or self.step or 1) + (self.step or 1) * (n - 1) end)
end

function M.fibonacci(o)
  return new("fibonacci", o, function(self, n)
    local a, b = self.base or 1, self.base or 1
    for _ = 2, n do a, b = b, a + b end
    return a
  end)
end

function M.expo(o)
  o = o or {}
  return new("expo", o, function(self, n)
    return (self.base or 1) * (self.factor or 2) ^ (n - 1)
  end)
end

-- AWS "decorrelated jitter": min(cap, U(base, 3 * previous)); it is its own jitter.
function M.decorrelated(o)
  o = o or {}
  local self = new("decorrelated", o, nil)
  self.delay = function(s, _, ctx)
    local base = s.base or 1
    local prev = (ctx and ctx.previous) or s.previous or base
    local rnd = s.random or math.random
    local d = math.min(s.cap, base + (prev * 3 - base) * rnd())
    s.previous = d
    return d
  end
  return self
end

-- chain{{constant{delay = 1}, tries = 3}, expo{}}: the first strategy for its `tries`
-- retries, then the next (counting its attempts from 1), and so on; the last one stays.
function M.chain(steps)
  if type(steps) ~= "table" or #steps == 0 then
    error("pacer.backoff.chain: expected a list of strategies", 2)
  end
  for i, s in ipairs(steps) do
    local strat = s[1] or s
    if type(strat.delay) ~= "function" then
      error(string.format("pacer.backoff.chain: step %d has no delay(self, attempt) method", i), 2)
    end
  end
  return {kind = "chain", delay = function(_, attempt, ctx)
    local n = attempt
    for i, s in ipairs(steps) do
      local strat, tries = s[1] or s, s.tries
      if not tries or n <= tries or i == #steps then return strat:delay(n, ctx) end
      n = n - tries
    end
  end}
end

return M
