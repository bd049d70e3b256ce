-- pacer.auth.oauth2{token_url =, client_id =, client_secret =, scope =, audience =,
-- client_auth = "basic" | "body", retry = {...}}: the OAuth2 client-credentials grant
-- (RFC 6749 4.4). The token request is form-encoded, goes through pacer.request (its
-- own retry, counted in the run's stats, never against the API's limiter) and is made
-- once however many tasks need a token (single-flight: the others wait for it). A token
-- is refreshed in the background `ahead` seconds (a quarter of its lifetime, at most a
-- minute) before expires_in runs out, while requests go on with the old one; a 401
-- drops the token it refused, so the one resend gets a new one.
local cjson = require "cjson"
local crypto = require "pacer.c.crypto"
local task = require "pacer.c.task"
local log = require "pacer.base.log"
local opts = require "pacer.base.options"
local url = require "pacer.base.url"

local M = {}

local OAuth2 = {}
OAuth2.__index = OAuth2

OAuth2.__name = "pacer.auth" -- the REPL shows it by __tostring, never its fields

function M.new(o)
  local where = "pacer.auth.oauth2"
  o = opts.check(where, o, {token_url = "string", client_id = "string", client_secret = "string", scope = "string",
    audience = "string", client_auth = "string", retry = {"table", "boolean"}, timeout = "duration",
    params = "table"})
  for _, k in ipairs{"token_url", "client_id", "client_secret"} do
    if not o[k] then opts.raise("%s: option '%s' is required", where, k) end
  end
  local ca = o.client_auth or "basic"
  if ca ~= "basic" and ca ~= "body" then
    opts.raise("%s: 'client_auth' must be \"basic\" or \"body\", got %q", where, ca)
  end
  return setmetatable({kind = "oauth2", o = o, client_auth = ca, fetches = 0, failures = 0, waiting = {},
    shown_url = url.redact(o.token_url)}, OAuth2)
end

-- One token request: token, seconds it lives | nil, why.
function OAuth2:request_token()
  local o = self.o
  local form = {grant_type = "client_credentials", scope = o.scope, audience = o.audience}
  for k, v in pairs(o.params or {}) do form[k] = v end
  local headers = {}
  if self.client_auth == "basic" then -- RFC 6749 2.3.1: each part form-encoded first
    headers.Authorization = "Basic " .. crypto.base64(url.encode(o.client_id) .. ":" .. url.encode(o.client_secret))
  else
    form.client_id, form.client_secret = o.client_id, o.client_secret
  end
  local retry = o.retry
  if retry == nil then retry = {max_tries = 4, base = 0.2, cap = 5, max_time = 30} end
  local res, err = require("pacer.http.request").request{method = "POST", url = o.token_url, form = form,
    headers = headers, retry = retry, timeout = o.timeout or 15}
  if not res then return nil, string.format("token request to %s failed: %s", self.shown_url, err.kind) end
  local ok, body = pcall(cjson.decode, res.body or "")
  if res.status ~= 200 then -- the error code (RFC 6749 5.2) says why; the body may echo secrets
    local code = ok and type(body) == "table" and type(body.error) == "string" and body.error:match("^[%w_%.%-]+$")
    return nil, string.format("token endpoint %s answered HTTP %d%s", self.shown_url, res.status,
      code and (" (" .. code .. ")") or "")
  end
  if not ok or type(body) ~= "table" or type(body.access_token) ~= "string" or body.access_token == "" then
    return nil, string.format("token endpoint %s answered without an access_token", self.shown_url)
  end
  return body.access_token, tonumber(body.expires_in) or 3600
end

-- Fetches a token (the one fetch in flight) and wakes every task waiting for it.
function OAuth2:fetch()
  self.fetching = true
  self.fetches = self.fetches + 1
  local ok, token, ttl = pcall(self.request_token, self)
  if not ok then token, ttl = nil, tostring(token) end
  self.fetching = false
  local why
  if token then
    local now = task.now()
    self.token, self.expires_at = token, now + ttl
    self.generation = (self.generation or 0) + 1 -- what a request records, never the token
    self.refresh_at = now + ttl - math.min(60, ttl / 4)
  else
    why = ttl
    self.failures = self.failures + 1
    log.warn("oauth2: %s", why)
  end
  local waiting = self.waiting
  self.waiting = {}
  for _, t in ipairs(waiting) do task.wake(t, token ~= nil, why) end
  return token ~= nil, why
end

function OAuth2:header(r)
  local now = task.now()
  if self.token and now < self.expires_at then
    if now >= self.refresh_at and not self.fetching then -- ahead of expiry, in the background
      self.fetching = true
      task.spawn(function() self:fetch() end)
    end
  else
    local ok, why
    if self.fetching then -- someone else's fetch: wait for it
      self.waiting[#self.waiting + 1] = task.current()
      ok, why = task.suspend()
    else
      ok, why = self:fetch()
    end
    if not ok then return nil, why end
  end
  if r then r.auth_used = self.generation end
  return "Authorization: Bearer " .. self.token
end

-- A 401 on r: the token it carried is dropped (unless a newer one came meanwhile).
function OAuth2:refresh(r)
  if self.token and (not r or r.auth_used == self.generation) then self.token = nil end
  return true
end

function OAuth2:stats() return {fetches = self.fetches, failures = self.failures} end
function OAuth2:__tostring() return string.format("pacer.auth.oauth2 (%s, ***)", self.shown_url) end

return M
