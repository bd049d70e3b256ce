-- spec/auth/jwt_spec.lua: pacer.auth.jwt signs HS256, RS256 and ES256 tokens that an
-- independent verifier accepts: PyJWT (Debian python3-jwt) in spec/support/jwt_verifier.py
-- on loopback, with keys made by `openssl` here. Also bearer and basic, and the errors.
local H = dofile("spec/support/helpers.lua")

local dir

-- Runs a shell command to completion (yielding meanwhile); asserts it succeeded.
local function sh(cmd)
  local out, rc = H.sh(cmd, 20)
  assert(rc == 0, cmd .. " failed: " .. tostring(out))
  return out
end

-- The verifier for alg with the key in `keyfile`: its base URL and a stop().
local function verifier(alg, keyfile)
  local portfile = dir .. "/port." .. alg
  os.execute(string.format("/usr/bin/python3 spec/support/jwt_verifier.py %s %s %s >%s/verifier.log 2>&1 & echo $! >%s.pid",
    H.q(portfile), alg, H.q(keyfile), H.q(dir), H.q(portfile)))
  local port
  for _ = 1, 100 do -- bounded: 5 s
    port = H.read_file(portfile)
    if port then break end
    pacer.sleep(0.05)
  end
  assert(port, "jwt_verifier.py did not start: " .. tostring(H.read_file(dir .. "/verifier.log")))
  return "http://127.0.0.1:" .. port, function() os.execute("kill $(cat " .. H.q(portfile .. ".pid") .. ") 2>/dev/null") end
end

local KEYS = {
  RS256 = {"openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s/RS256.pem",
    "openssl pkey -in %s/RS256.pem -pubout -out %s/RS256.pub"},
  ES256 = {"openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s/ES256.pem",
    "openssl pkey -in %s/ES256.pem -pubout -out %s/ES256.pub"},
  HS256 = {"openssl rand -hex 32 | tr -d '\\n' > %s/HS256.pem", "cp %s/HS256.pem %s/HS256.pub"},
}

describe("pacer.auth.jwt against PyJWT", function()
  local stops, urls = {}, {}
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    for alg, cmds in pairs(KEYS) do
      for _, c in ipairs(cmds) do sh(c:gsub("%%s", dir)) end
      urls[alg], stops[alg] = verifier(alg, dir .. "/" .. alg .. ".pub")
    end
  end)
  teardown(function()
    for _, stop in pairs(stops) do stop() end
    os.execute("rm -rf " .. dir)
  end)

  for _, alg in ipairs{"HS256", "RS256", "ES256"} do
    it(alg .. ": the verifier accepts the token, its claims and header", function()
      local key = H.read_file(dir .. "/" .. alg .. ".pem")
      local auth = pacer.auth.jwt{alg = alg, key = key, ttl = "15m", header = {kid = "key-1"},
        claims = {iss = "pacer-spec", application_id = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"}}
      local api = pacer.client{base_url = urls[alg], auth = auth, retry = false}
      local res = api:post("/v1/messages", {json = {to = "447700900000", text = "hi"}})
      assert.are.equal(200, res.status, res.body)
      local b = res:json()
      assert.are.equal(alg, b.header.alg)
      assert.are.equal("JWT", b.header.typ)
      assert.are.equal("key-1", b.header.kid)
      assert.are.equal("pacer-spec", b.claims.iss)
      assert.are.equal("aaaaaaaa-bbbb-cccc-dddd-0123456789ab", b.claims.application_id)
      assert.are.equal(900, b.claims.exp - b.claims.iat)
      assert.is_true(math.abs(b.claims.iat - pacer.wall()) < 5)
      assert.matches("^%x+$", b.claims.jti)
      -- reused while it is fresh: the same jti, one signature
      local again = api:get("/v1/messages"):json()
      assert.are.equal(b.claims.jti, again.claims.jti)
      assert.are.equal(1, auth:stats().signed)
    end)
  end

  it("key_file, claims as a function, re-signed shortly before it expires", function()
    local n = 0
    local auth = pacer.auth.jwt{alg = "ES256", key_file = dir .. "/ES256.pem", ttl = 2,
      claims = function() n = n + 1 return {sub = "call-" .. n} end}
    local first = pacer.request{url = urls.ES256 .. "/x", auth = auth, retry = false}:json()
    assert.are.equal("call-1", first.claims.sub)
    pacer.sleep(2.0) -- past exp - ttl/10
    local second = pacer.request{url = urls.ES256 .. "/x", auth = auth, retry = false}:json()
    assert.are.equal("call-2", second.claims.sub)
    assert.are_not.equal(first.claims.jti, second.claims.jti)
    assert.are.equal(2, auth:stats().signed)
  end)

  it("a token signed with another key is refused: one re-sign and resend, then the 401", function()
    sh(string.format("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s/other.pem", dir))
    local auth = pacer.auth.jwt{alg = "RS256", key_file = dir .. "/other.pem"}
    local res = pacer.request{url = urls.RS256 .. "/x", auth = auth, retry = false}
    assert.are.equal(401, res.status)
    assert.matches("InvalidSignatureError", res.body, 1, true)
    assert.are.equal(2, auth:stats().signed)
  end)

  it("raises on a bad key, a key of the wrong type, or a missing key", function()
    assert.matches("^pacer.auth.jwt: 'key' is not a PEM private key %(",
      H.message(function() pacer.auth.jwt{alg = "RS256", key = "not a key"} end))
    local rsa = H.read_file(dir .. "/RS256.pem")
    assert.are.equal("pacer.auth.jwt: ES256 needs a P-256 EC key, got RSA 2048-bit key",
      H.message(function() pacer.auth.jwt{alg = "ES256", key = rsa} end))
    assert.are.equal("pacer.auth.jwt: give one of 'key' and 'key_file'",
      H.message(function() pacer.auth.jwt{alg = "HS256"} end))
    assert.are.equal("pacer.auth.jwt: 'alg' must be HS256, RS256 or ES256, got \"none\"",
      H.message(function() pacer.auth.jwt{alg = "none", key = "x"} end))
    -- the key never shows in what is printed
    local auth = pacer.auth.jwt{alg = "HS256", key = "s3cr3t-HS-key"}
    assert.are.equal("pacer.auth.jwt (HS256, ***)", tostring(auth))
  end)
end)

describe("pacer.auth.bearer and basic", function()
  local srv
  setup(function()
    srv = pacer.serve{port = 0, routes = {["GET /who"] = function(req)
      return 200, {authorization = req.headers.authorization}
    end}}
  end)
  teardown(function() srv:close() end)

  it("send the header per client, overridden per request", function()
    local api = pacer.client{base_url = srv.url, auth = pacer.auth.bearer("tok_123")}
    assert.are.equal("Bearer tok_123", api:get("/who"):json().authorization)
    assert.are.equal("Basic dXNlcjpwQHNzOnc=",
      api:get("/who", {auth = pacer.auth.basic("user", "p@ss:w")}):json().authorization)
    assert.are.equal("pacer.auth.bearer (***)", tostring(pacer.auth.bearer("tok_123")))
  end)

  it("an auth that cannot give a header fails the request with kind auth, unsent", function()
    local api = pacer.client{base_url = srv.url, retry = false}
    local res, err = api:get("/who", {auth = {kind = "custom", header = function() return nil, "vault is sealed" end}})
    assert.is_nil(res)
    assert.are.equal("auth", err.kind)
    assert.matches("^GET http://127.0.0.1:%d+/who: custom auth: vault is sealed$", err.message)
    assert.are.equal("pacer.client: option 'auth' must be a pacer.auth object (bearer, basic, jwt, oauth2) or a " ..
      "table with a header(req) method", H.message(function() pacer.client{auth = {}} end))
  end)
end)
