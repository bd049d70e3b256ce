-- spec/auth/oauth2_spec.lua: pacer.auth.oauth2 against a token endpoint on pacer's own
-- listener issuing 2 s tokens, used by 8 concurrent tasks over 6 s: token fetches are
-- counted (single-flight, refreshed ahead of expiry), a forced 401 is recovered with
-- one resend, and no secret or token reaches an error message.
local H = dofile("spec/support/helpers.lua")

local crypto = require "pacer.c.crypto"

-- The authorization server and the API behind it, in one listener.
local function servers(o)
  o = o or {}
  local s = {fetches = 0, inflight = 0, max_inflight = 0, issued = {}, refused = 0, expired = 0, ok = 0, n = 0}
  s.srv = pacer.serve{port = 0, routes = {
    ["POST /oauth/token"] = function(req)
      s.inflight = s.inflight + 1
      s.max_inflight = math.max(s.max_inflight, s.inflight)
      s.fetches = s.fetches + 1
      pacer.sleep(0.1) -- a slow authorization server: a window for duplicate fetches
      s.inflight = s.inflight - 1
      local want = "Basic " .. crypto.base64("spec-client:" .. (o.secret or "cs_TOPSECRET"))
      if req.headers.authorization ~= want then return 401, {error = "invalid_client"} end
      if not (req.body or ""):find("grant_type=client_credentials", 1, true) then
        return 400, {error = "unsupported_grant_type"}
      end
      s.n = s.n + 1
      local token = "at_SECRET_" .. s.n .. "_" .. crypto.random_hex(8)
      s.issued[token] = pacer.now() + 2
      s.scope = (req.body or ""):match("scope=([^&]*)")
      return 200, {access_token = token, token_type = "Bearer", expires_in = 2}
    end,
    ["GET /api/items"] = function(req)
      local token = (req.headers.authorization or ""):match("^Bearer (.+)$")
      local exp = token and s.issued[token]
      if not exp then
        s.refused = s.refused + 1
        return 401, {error = "invalid_token"}
      end
      if pacer.now() > exp then
        s.expired = s.expired + 1
        return 401, {error = "expired"}
      end
      s.ok = s.ok + 1
      return 200, {ok = true}
    end,
  }}
  s.url = s.srv.url
  return s
end

describe("pacer.auth.oauth2", function()
  it("8 tasks over 6 s: one fetch at a time, refreshed ahead, a forced 401 recovered", function()
    local s = servers()
    local auth = pacer.auth.oauth2{token_url = s.url .. "/oauth/token", client_id = "spec-client",
      client_secret = "cs_TOPSECRET", scope = "items:read"}
    local api = pacer.client{base_url = s.url .. "/api", auth = auth, rate = "40/s", retry = false}
    local failures, revoked = {}, false
    local t0 = pacer.now()
    local tasks = {}
    for i = 1, 8 do
      tasks[i] = pacer.spawn(function()
        for _ = 1, 200 do -- bounded: 6 s of requests at 40/s shared by 8
          if pacer.now() - t0 >= 6 then break end
          if i == 1 and not revoked and pacer.now() - t0 > 3 then -- the server revokes every token once
            revoked = true
            s.issued = {}
          end
          local res, err = api:get("/items")
          if not res or res.status ~= 200 then failures[#failures + 1] = res and res.status or err.message end
        end
      end)
    end
    for _, t in ipairs(tasks) do assert(t:wait()) end
    s.srv:close()
    assert.are.same({}, failures)
    assert.are.equal(1, s.max_inflight) -- single-flight
    -- 6 s of 2 s tokens renewed half a second ahead, plus one after the revocation
    assert.is_true(s.fetches >= 4 and s.fetches <= 7, "token fetches: " .. s.fetches)
    assert.are.equal(s.fetches, auth:stats().fetches)
    assert.are.equal(0, s.expired) -- never sent a token past its expiry
    assert.is_true(s.refused >= 1 and s.refused <= 8, "refused after revocation: " .. s.refused)
    assert.are.equal("items%3Aread", s.scope)
    local st = api:stats()
    assert.are.equal(st.requests, s.ok + s.refused) -- every 401 resent once, inside the same request
    assert.is_true(s.ok > 150, "only " .. s.ok .. " requests in 6 s")
    assert.are.equal(st.ok, s.ok)
  end)

  it("a refused client: kind auth, the endpoint's error code, no secret in the message", function()
    local s = servers{secret = "the-right-one"}
    local auth = pacer.auth.oauth2{token_url = s.url .. "/oauth/token", client_id = "spec-client",
      client_secret = "cs_TOPSECRET", retry = false}
    local api = pacer.client{base_url = s.url .. "/api", auth = auth, retry = false}
    local res, err = api:get("/items")
    s.srv:close()
    assert.is_nil(res)
    assert.are.equal("auth", err.kind)
    assert.matches("^GET http://127.0.0.1:%d+/api/items: oauth2 auth: token endpoint http://127.0.0.1:%d+/oauth/token " ..
      "answered HTTP 401 %(invalid_client%)$", err.message)
    assert.is_nil(tostring(auth):find("TOPSECRET", 1, true))
    assert.are.equal(0, s.ok)
  end)

  it("client_auth = 'body' sends the credentials in the form; options are checked", function()
    local seen
    local srv = pacer.serve{port = 0, routes = {["POST /token"] = function(req)
      seen = req.body
      return 200, {access_token = "at_1", expires_in = 60}
    end, ["GET /x"] = function(req) return 200, {a = req.headers.authorization} end}}
    local auth = pacer.auth.oauth2{token_url = srv.url .. "/token", client_id = "id 1", client_secret = "s&2",
      client_auth = "body", audience = "https://api.example"}
    assert.are.equal("Bearer at_1", pacer.request{url = srv.url .. "/x", auth = auth}:json().a)
    srv:close()
    H.contains(seen, "client_id=id%201")
    H.contains(seen, "client_secret=s%262")
    H.contains(seen, "audience=https%3A%2F%2Fapi.example")
    assert.are.equal("pacer.auth.oauth2: option 'client_secret' is required",
      H.message(function() pacer.auth.oauth2{token_url = "http://x", client_id = "a"} end))
  end)
end)
