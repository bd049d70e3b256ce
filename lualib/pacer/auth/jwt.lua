-- pacer.auth.jwt{alg =, key = | key_file =, claims = {...} | function() end, ttl = "15m",
-- header = {kid = ...}}: a JWS-signed JWT (RFC 7519) as "Authorization: Bearer <jwt>".
-- HS256 (key = the shared secret), RS256 (RSA PKCS#1 v1.5) and ES256 (P-256, raw r||s)
-- are signed by OpenSSL in runtime/mod/crypto.c. iat, exp (iat + ttl) and a random jti
-- are added unless the claims give them; a token is reused until `ttl / 10` (at most a
-- minute) before it expires, then signed afresh.
local cjson = require "cjson"
local crypto = require "pacer.c.crypto"
local task = require "pacer.c.task"
local opts = require "pacer.base.options"

local M = {}

local Jwt = {}
Jwt.__index = Jwt

Jwt.__name = "pacer.auth" -- the REPL shows it by __tostring, never its fields

local ALGS = {HS256 = "secret", RS256 = "RSA", ES256 = "EC"}

local function read_key(where, path)
  local f, err = io.open(path, "rb")
  if not f then opts.raise("%s: cannot read key_file: %s", where, err) end
  local s = f:read("a")
  f:close()
  return s
end

function M.new(o)
  local where = "pacer.auth.jwt"
  o = opts.check(where, o, {alg = "string", key = "string", key_file = "string", claims = {"table", "function"},
    ttl = "duration", header = "table"})
  local alg = o.alg or "RS256"
  if not ALGS[alg] then opts.raise("%s: 'alg' must be HS256, RS256 or ES256, got %q", where, alg) end
  if (o.key ~= nil) == (o.key_file ~= nil) then opts.raise("%s: give one of 'key' and 'key_file'", where) end
  local key = o.key or read_key(where, o.key_file)
  local self = setmetatable({kind = "jwt", alg = alg, claims = o.claims or {}, ttl = o.ttl or 900,
    extra_header = o.header or {}, signed = 0}, Jwt)
  if self.ttl <= 0 then opts.raise("%s: 'ttl' must be greater than 0", where) end
  if alg == "HS256" then
    if key == "" then opts.raise("%s: HS256 needs a non-empty secret 'key'", where) end
    self.secret = key
  else
    local k, why = crypto.load_key(key)
    if not k then opts.raise("%s: 'key%s' is %s", where, o.key_file and "_file" or "", why) end
    if k:type() ~= ALGS[alg] or (alg == "ES256" and k:bits() ~= 256) then
      opts.raise("%s: %s needs %s key, got %s %d-bit key", where, alg,
        alg == "ES256" and "a P-256 EC" or "an RSA", k:type(), k:bits())
    end
    self.pkey = k
  end
  return self
end

-- Signs a new token now; returns it, or nil, why.
function Jwt:sign()
  local claims = self.claims
  if type(claims) == "function" then
    claims = claims()
    if type(claims) ~= "table" then return nil, "the claims function must return a table" end
  end
  local now = math.floor(task.wall())
  local c = {}
  for k, v in pairs(claims) do c[k] = v end
  c.iat = c.iat or now
  c.exp = c.exp or (c.iat + math.floor(self.ttl))
  c.jti = c.jti or crypto.random_hex(16)
  local h = {alg = self.alg, typ = "JWT"}
  for k, v in pairs(self.extra_header) do h[k] = v end
  local input = crypto.base64url(cjson.encode(h)) .. "." .. crypto.base64url(cjson.encode(c))
  local sig, why
  if self.secret then sig = crypto.hmac_sha256_raw(self.secret, input)
  else sig, why = self.pkey:sign(input) end
  if not sig then return nil, why end
  self.token, self.exp = input .. "." .. crypto.base64url(sig), c.exp
  self.signed = self.signed + 1
  return self.token
end

function Jwt:header()
  local margin = math.min(60, self.ttl / 10)
  if not self.token or task.wall() >= self.exp - margin then
    local _, why = self:sign()
    if why then return nil, why end
  end
  return "Authorization: Bearer " .. self.token
end

-- A 401: the server refused this token (a clock skew, a revoked key): sign afresh.
function Jwt:refresh()
  self.token = nil
  return true
end

function Jwt:stats() return {signed = self.signed} end
function Jwt:__tostring() return string.format("pacer.auth.jwt (%s, ***)", self.alg) end

return M
