-- scripts/jwt_sms.lua: the seed blog's SMS send through a Messages API that wants a JWT
-- signed with the application's private key (RS256, claims application_id, iat, exp,
-- jti), one per call or reused while fresh: pacer.auth.jwt does it per attempt.
--   pacer scripts/jwt_sms.lua [PRIVATE_KEY.pem [APPLICATION_ID]]
-- Without a key one is made with openssl, and the "Messages API" is a local listener
-- that reads the JWT's claims (spec/auth/jwt_spec.lua checks the signatures with PyJWT).
local pacer = require "pacer"
local crypto = require "pacer.c.crypto"

local key_file, app_id = arg[1], arg[2] or "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
local made
if not key_file then
  key_file = os.tmpname()
  made = key_file
  assert(os.execute("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " .. key_file ..
    " 2>/dev/null"), "openssl could not make a key")
end

local api_srv = pacer.serve{routes = {["POST /v0.1/messages"] = function(req)
  local payload = (req.headers.authorization or ""):match("^Bearer [%w_-]+%.([%w_-]+)%.[%w_-]+$")
  local claims = payload and pacer.json.decode(crypto.base64url_decode(payload))
  if not claims or claims.application_id ~= app_id or claims.exp < pacer.wall() then
    return 401, {title = "Unauthorized"}
  end
  return 202, {message_uuid = crypto.random_hex(16), jti = claims.jti}
end}}

local api = pacer.client{
  base_url = api_srv.url .. "/v0.1",
  auth = pacer.auth.jwt{alg = "RS256", key_file = key_file, ttl = "15m", claims = {application_id = app_id}},
  rate = "30/s", -- the Messages API's per-second limit
  retry = {max_tries = 4, base = 0.1},
}

local numbers = {"447700900001", "447700900002", "447700900003", "447700900004", "447700900005"}
local jtis = {}
local results = pacer.each(numbers, function(to)
  local res = assert(api:post("/messages", {json = {
    from = {type = "sms", number = "447700900000"}, to = {type = "sms", number = to},
    message = {content = {type = "text", text = "This is an SMS sent from the Messages API"}}}}))
  assert(res.status == 202, "HTTP " .. res.status)
  jtis[res:json().jti] = true
  return res:json().message_uuid
end, {concurrency = 5, progress = false})

local n, tokens = 0, 0
for _, r in ipairs(results) do if r.ok then n = n + 1 end end
for _ in pairs(jtis) do tokens = tokens + 1 end
print(string.format("%d of %d SMS accepted, signed with %d JWT", n, #numbers, tokens))
api_srv.close()
if made then os.remove(made) end
