-- pacer.serve.webhook: HMAC-SHA256 signatures for webhooks, checked in constant time, with a
-- timestamp tolerance against replays.
--   pacer.webhook.sign(secret, payload) -> hex
--   pacer.webhook.verify{secret=, body=, signature=, timestamp=, tolerance="5m"}
--     -> true | false, reason
-- With a timestamp the signed payload is "<timestamp>.<body>" (Stripe's scheme) unless
-- `payload` is given; a signature may carry a "sha256=" or "v1=" prefix (GitHub, Stripe).
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
  timestamp = {"number", "string"}, tolerance = "duration", now = "number"}

function M.verify(o)
  opts.check("pacer.webhook.verify", o, SPEC)
  if not o.secret or o.secret == "" then opts.raise("pacer.webhook.verify: 'secret' is required") end
  if not o.signature or o.signature == "" then return false, "missing signature" end
  local payload = o.payload
  if o.timestamp ~= nil then
    local ts = tonumber(o.timestamp)
    if not ts then return false, "timestamp is not a number" end
    local tolerance = opts.duration("pacer.webhook.verify", "tolerance", o.tolerance or 300)
    local now = o.now or os.time()
    if math.abs(now - ts) > tolerance then
      return false, string.format("timestamp outside the %gs tolerance (a replay?)", tolerance)
    end
    payload = payload or (tostring(o.timestamp) .. "." .. (o.body or ""))
  end
  payload = payload or o.body
  if not payload then opts.raise("pacer.webhook.verify: 'body' or 'payload' is required") end
  local given = o.signature:gsub("^%s*sha256=", ""):gsub("^%s*v1=", ""):lower()
  if not crypto.equal(given, crypto.hmac_sha256(o.secret, payload)) then
    return false, "signature does not match"
  end
  return true
end

return M
