-- pacer.policy.retry: what to retry, how long to wait, when to give up. The defaults follow
-- API.md: 6 tries in 300 s, expo backoff with full jitter, 429/5xx/network, Retry-After.
local backoff = require "pacer.policy.backoff"
local opts = require "pacer.base.options"

local M = {}

M.defaults = {
  max_tries = 6, max_time = 300, backoff = "expo", base = 1, factor = 2, cap = 60,
  jitter = "full", on = {429, 500, 502, 503, 504, "network"}, retry_after = true,
}

-- transport error kinds that "network" stands for (dns, tls and url are not transient)
M.NETWORK = {timeout = true, connect = true, closed = true}
local KINDS = {timeout = true, connect = true, closed = true, dns = true, tls = true,
  protocol = true, too_large = true, other = true}

local SPEC = {
  max_tries = "integer", max_time = "duration", backoff = {"string", "table"}, base = "number",
  factor = "number", cap = "duration", jitter = "string", on = "table", retry_after = "boolean",
  max_retry_after = "duration", unsafe = "boolean", on_retry = "callable", on_giveup = "callable",
  on_success = "callable", random = "callable", seed = "number", retry_after_jitter = "number",
}

-- spec: nil/true (defaults), false (single attempt), or a table overriding defaults.
function M.policy(spec, where)
  if spec == false then return nil end
  if spec == nil or spec == true then spec = {} end
  where = where or "retry"
  spec = opts.check(where .. ".retry", spec, SPEC)
  local p = {}
  for k, v in pairs(M.defaults) do p[k] = v end
  for k, v in pairs(spec) do p[k] = v end
  if p.max_tries < 1 then opts.raise("%s.retry: max_tries must be >= 1, got %d", where, p.max_tries) end
  p.statuses, p.kinds, p.predicates = {}, {}, {}
  for _, v in ipairs(p.on) do
    if math.type(v) == "integer" then p.statuses[v] = true
    elseif v == "network" then for k in pairs(M.NETWORK) do p.kinds[k] = true end
    elseif type(v) == "string" and KINDS[v] then p.kinds[v] = true
    elseif type(v) == "function" then p.predicates[#p.predicates + 1] = v
    else
      opts.raise("%s.retry: 'on' entries must be status codes, error kinds (%s) or functions, got %s",
        where, "network, timeout, connect, closed, dns, tls, protocol", tostring(v))
    end
  end
  if p.seed and not p.random then p.random = require("pacer.base.rng").new(p.seed) end
  p.retry_after_jitter = p.retry_after_jitter or 0.1
  if type(p.backoff) == "string" then
    local make = backoff[p.backoff]
    if not make then
      opts.raise("%s.retry: unknown backoff '%s' (known: constant, linear, fibonacci, expo, decorrelated)",
        where, p.backoff)
    end
    p.backoff = make{base = p.base, factor = p.factor, cap = p.cap, jitter = p.jitter, random = p.random}
  elseif type(p.backoff.delay) ~= "function" then
    opts.raise("%s.retry: backoff must be a name or a table with a delay(self, attempt, ctx) method", where)
  end
  return p
end

local function retryable(p, res, err, idempotent)
  if res then
    local hit = p.statuses[res.status]
    if p.predicates[1] then -- (most policies have none: no ipairs on every answer)
      for _, pred in ipairs(p.predicates) do hit = hit or pred(res, nil) end
    end
    if not hit then return false end
    -- a 429 was refused before any work was done: always safe to repeat
    return res.status == 429 or idempotent
  end
  local hit = p.kinds[err.kind]
  for _, pred in ipairs(p.predicates) do hit = hit or pred(nil, err) end
  if not hit then return false end
  -- nothing reached the server (connect, dns): safe for any method
  return idempotent or not err.sent
end

-- Decides after attempt n, `elapsed` seconds into the logical request.
-- Returns nil (final: hand this outcome to the caller), or delay, or false, reason.
-- ctx (for the backoff) may be nil: {previous = previous} is made when it is needed.
function M.decide(p, res, err, n, elapsed, idempotent, ctx, previous)
  if not retryable(p, res, err, idempotent) then return nil end
  if n >= p.max_tries then return false, string.format("max_tries (%d) reached", p.max_tries) end
  local delay = res and p.retry_after and res.retry_after
  if delay then
    if p.max_retry_after and delay > p.max_retry_after then
      return false, string.format("Retry-After %s exceeds max_retry_after (%gs)", res.headers["retry-after"],
        p.max_retry_after)
    end
    if elapsed + delay > p.max_time then
      return false, string.format("Retry-After (%.3gs) would pass max_time (%gs)", delay, p.max_time)
    end
    -- never earlier than asked; a little later at random, so clients told the same
    -- second do not all come back in it together
    local spread = math.min(1, delay * p.retry_after_jitter, p.max_time - elapsed - delay)
    return delay + spread * (p.random or math.random)()
  end
  delay = p.backoff:delay(n, ctx or {previous = previous})
  if elapsed + delay > p.max_time then
    return false, string.format("next wait (%.3gs) would pass max_time (%gs)", delay, p.max_time)
  end
  return delay
end

return M
