-- scripts/oauth2_api.lua: an API behind OAuth2 client credentials. pacer fetches the
-- token once for all tasks, renews it before it expires and, if the API refuses one
-- anyway (401), fetches a new one and resends. The authorization server and the API
-- are local listeners here; give real ones with TOKEN_URL / API_URL / CLIENT_ID /
-- CLIENT_SECRET in the environment.
local pacer = require "pacer"
local crypto = require "pacer.c.crypto"

local issued, fetches = {}, 0
local local_srv = pacer.serve{routes = {
  ["POST /oauth/token"] = function()
    fetches = fetches + 1
    local token = crypto.random_hex(16)
    issued[token] = pacer.now() + 1 -- short-lived on purpose: watch it renew
    return 200, {access_token = token, token_type = "Bearer", expires_in = 1}
  end,
  ["GET /v1/orders"] = function(req)
    local exp = issued[(req.headers.authorization or ""):match("^Bearer (%x+)$") or ""]
    if not exp or exp < pacer.now() then return 401, {error = "invalid_token"} end
    return 200, {orders = {}}
  end}}

local api = pacer.client{
  base_url = os.getenv("API_URL") or (local_srv.url .. "/v1"),
  auth = pacer.auth.oauth2{token_url = os.getenv("TOKEN_URL") or (local_srv.url .. "/oauth/token"),
    client_id = os.getenv("CLIENT_ID") or "demo-client", client_secret = os.getenv("CLIENT_SECRET") or "demo-secret",
    scope = "orders:read"},
  rate = "20/s",
}

local t0 = pacer.now()
local results = pacer.each({1, 2, 3, 4, 5, 6, 7, 8}, function()
  local n = 0
  while pacer.now() - t0 < 3 do
    assert(api:get("/orders", {query = {page = n}}).status == 200)
    n = n + 1
  end
  return n
end, {concurrency = 8, progress = false})
local total = 0
for _, r in ipairs(results) do total = total + (r.value or 0) end
print(string.format("%d requests in 3 s by 8 tasks, %d token fetches, %d failed", total, fetches,
  api:stats().failed))
local_srv.close()
