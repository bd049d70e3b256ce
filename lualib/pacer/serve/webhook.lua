-- pacer.serve.webhook: HMAC-SHA256 signatures for webhooks, checked in constant time, with a
-- timestamp tolerance against replays.
--   pacer.webhook.sign(secret, payload) -> hex
--   pacer.webhook.verify{secret=, body=, signature=, timestamp=, tolerance="5m"}
--     -> true | false, reason
-- The signed payload is "<timestamp>.<body>" (Stripe's scheme) unless `payload` is given;
-- a signature may carry a "sha256=" or "v1=" prefix (GitHub, Stripe).
-- Replays are refused by default: a missing timestamp, one that is not a finite number,
-- one outside the tolerance, or a `payload` that does not contain the timestamp (so the
-- sender could change it) fails. Only `tolerance = false`, given by the caller, verifies
-- without a timestamp (for senders that sign none, such as GitHub).
local crypto = require "pacer.c.crypto"
local opts = require "pacer.base.options"

local M = {}

function M.sign(secret, payload)
  if type(secret) ~= "string" or secret == "" then
    opts.raise("pacer.webhook.sign: secret must be a non-empty string")
  end
  return crypto.hmac_sha256(secret, tostring(payload))
end

local SPEC = {secret = "string", body = "string", payload = "string", signature = "string",
  timestamp = {"number", "string"}, tolerance = {"duration", "boolean"}, now = "number"}

-- nil when the timestamp may be used, else why not. A sender chooses the timestamp: it
-- must never let the age check pass by being NaN or infinite.
local function timestamp_problem(o)
  if o.timestamp == nil then
    if o.tolerance == false then return nil end
    return "missing timestamp (a replay?); pass tolerance = false to verify without one"
  end
  local ts = tonumber(o.timestamp)
  if not ts then return "timestamp is not a number" end
  if ts ~= ts or ts == math.huge or ts == -math.huge then return "timestamp is not a finite number" end
  if o.tolerance == false then return nil end
  local now = o.now or os.time()
  local age = math.abs(now - ts)
  if age > o.tolerance or age ~= age then
    return string.format("timestamp outside the %gs tolerance (a replay?)", o.tolerance)
  end
  if o.payload and not o.payload:find(tostring(o.timestamp), 1, true) then
    return "the timestamp is not part of the signed payload (it could be changed)"
  end
end

function M.verify(o)
  o = opts.check("pacer.webhook.verify", o, SPEC)
  if not o.secret or o.secret == "" then opts.raise("pacer.webhook.verify: 'secret' is required") end
  if o.tolerance == true then
    opts.raise("pacer.webhook.verify: 'tolerance' must be a duration, or false to verify without a timestamp")
  end
  o.tolerance = o.tolerance == nil and 300 or o.tolerance
  if not o.payload and not o.body then opts.raise("pacer.webhook.verify: 'body' or 'payload' is required") end
  if not o.signature or o.signature == "" then return false, "missing signature" end
  local why = timestamp_problem(o)
  if why then return false, why end
  local payload = o.payload or (o.timestamp ~= nil and (tostring(o.timestamp) .. "." .. (o.body or ""))) or o.body
  local given = o.signature:gsub("^%s*sha256=", ""):gsub("^%s*v1=", ""):lower()
  if not crypto.equal(given, crypto.hmac_sha256(o.secret, payload)) then
    return false, "signature does not match"
  end
  return true
end

return M
