-- pacer.http.request: a logical request built from its options (prepare), and
-- pacer.request{...}, a request on its own: no client, an optional limiter, retries.
local crypto = require "pacer.c.crypto"
local cjson = require "cjson"
local attempt = require "pacer.http.attempt"
local auth = require "pacer.auth"
local http = require "pacer.c.http"
local log = require "pacer.base.log"
local opts = require "pacer.base.options"
local retry = require "pacer.policy.retry"
local stats = require "pacer.run.stats"
local url = require "pacer.base.url"

local M = {}

M.SPEC = {
  method = "string", url = "string", headers = "table", query = {"table", "string"},
  json = "any", body = "string", form = "table", timeout = "duration",
  connect_timeout = "duration", limiter = {"userdata", "table"}, retry = {"table", "boolean"},
  follow = {"boolean", "integer", "table"}, verify = "boolean", max_body = "integer",
  idempotency_key = "string", auth = "table", cost = "integer", priority = "integer", max_wait = "duration",
}

-- URLs check_url found good -> their parse: a URL is parsed once.
local good_urls, ngood_urls = {}, 0

local ACCEPT = "application/json, */*;q=0.5"
local ACCEPT_LINE = "Accept: " .. ACCEPT

local SAFE = {GET = true, HEAD = true, OPTIONS = true, TRACE = true, PUT = true, DELETE = true}
-- methods as given most of the time: no upper() and pattern match for these
local KNOWN = {GET = true, HEAD = true, OPTIONS = true, TRACE = true, PUT = true, DELETE = true, POST = true,
  PATCH = true}

-- Header names already found valid (a pure function of the name): the pattern match
-- is done once per name, not on every request. Bounded: cleared when it fills.
local good_names, ngood_names = {}, 0

local function check_header(where, name, value)
  local tn, tv = type(name), type(value)
  if (tn ~= "string" and tn ~= "number") or (tv ~= "string" and tv ~= "number" and tv ~= "boolean") then
    opts.raise("%s: header %s must be a string or number, got %s", where, tostring(name), tv)
  end
  name = tostring(name)
  if not good_names[name] then
    if not name:match("^[!#$%%&'*+%-.^_`|~%w]+$") then
      opts.raise("%s: invalid header name %q (header injection?)", where, name)
    end
    if ngood_names >= 512 then good_names, ngood_names = {}, 0 end
    good_names[name], ngood_names = true, ngood_names + 1
  end
  value = tostring(value)
  if value:find("[\r\n%z]") then
    opts.raise("%s: header '%s' contains CR, LF or NUL (header injection?)", where, name)
  end
  return name, value
end
M.check_header = check_header

-- Adds one header to prepare()'s hdr (lower-cased name -> value), order (lower-cased
-- names as first seen) and names (the spelling last given).
local function add_header(where, hdr, order, names, k, v)
  local name, value = check_header(where, k, v)
  local lk = name:lower()
  if hdr[lk] == nil then order[#order + 1] = lk end
  hdr[lk] = value
  names[lk] = name
end

-- A duration option of a request, or its client's default (seconds, as opts.check left it).
local function duration(where, o, base, k)
  local v = o[k]
  if v == nil then v = base[k] end
  if v ~= nil and v <= 0 then opts.raise("%s: option '%s' must be greater than 0", where, k) end
  return v
end

-- The caller's and the client's headers, the body's Content-Type and the idempotency key
-- for prepare(), and pacer's Accept unless given. Returns hdr (lower-cased name ->
-- value), the lines, the body.
local function build_headers(where, method, u, o, base)
  local n = (o.json ~= nil and 1 or 0) + (o.form ~= nil and 1 or 0) + (o.body ~= nil and 1 or 0)
  if n > 1 then opts.raise("%s: give only one of 'json', 'form' and 'body'", where) end
  -- hdr: lower-cased name -> value; order: lower-cased names as first seen; names: the
  -- spelling last given
  local hdr, order, names = {}, {}, {}
  if base.headers then for k, v in pairs(base.headers) do add_header(where, hdr, order, names, k, v) end end
  if o.headers then for k, v in pairs(o.headers) do add_header(where, hdr, order, names, k, v) end end
  local body = o.body
  if o.json ~= nil then
    local ok, json = pcall(cjson.encode, o.json)
    if not ok then opts.raise("%s: cannot encode 'json': %s", where, json) end
    body = json
    if not hdr["content-type"] then add_header(where, hdr, order, names, "Content-Type", "application/json") end
  elseif o.form then
    body = url.query(o.form)
    if not hdr["content-type"] then
      add_header(where, hdr, order, names, "Content-Type", "application/x-www-form-urlencoded")
    end
  elseif body and not hdr["content-type"] then
    -- say what raw bytes are, rather than let libcurl call them a form
    add_header(where, hdr, order, names, "Content-Type", "application/octet-stream")
  end
  if o.idempotency_key then add_header(where, hdr, order, names, "Idempotency-Key", o.idempotency_key) end
  if base.idempotency and not SAFE[method] and not hdr["idempotency-key"] then
    -- one per logical request, kept across retries; a function makes keys that also
    -- survive a restart (derived from what is sent, e.g. the recipient)
    local key = crypto.random_hex(16)
    if type(base.idempotency) == "function" then
      key = base.idempotency{method = method, url = u, path = o.url, query = o.query, json = o.json,
        form = o.form, body = o.body}
      if type(key) ~= "string" and type(key) ~= "number" or key == "" then
        opts.raise("%s: the idempotency function must return a non-empty string, got %s", where, type(key))
      end
    end
    add_header(where, hdr, order, names, "Idempotency-Key", key)
  end
  local headers = {}
  for i, lk in ipairs(order) do headers[i] = names[lk] .. ": " .. hdr[lk] end
  if not hdr["accept"] then -- (pacer's own line: nothing to check)
    hdr.accept = ACCEPT
    headers[#headers + 1] = ACCEPT_LINE
  end
  return hdr, headers, body
end

-- The URL of a request: base_url joined, query added, checked and parsed (once per
-- distinct URL). Returns it and its parse (http.parse_url), which libcurl copies.
local function check_url(where, o, base)
  local u = url.join(base.base_url, o.url)
  if o.query then u = url.add_query(u, o.query) end
  local parsed = good_urls[u]
  if not parsed then -- now, not after the limiter granted it a slot
    if u:find("%z") then -- (the parse would read up to it only)
      opts.raise("%s: invalid URL '%s': it contains a NUL byte", where, url.redact((u:gsub("%z", "\\0"))))
    end
    local bad
    parsed, bad = http.parse_url(u)
    if not parsed then opts.raise("%s: invalid URL '%s': %s", where, url.redact(u), bad) end
    if ngood_urls >= 1024 then good_urls, ngood_urls = {}, 0 end
    good_urls[u], ngood_urls = parsed, ngood_urls + 1
  end
  return u, parsed
end

-- Builds the wire request from options o, with client defaults `base` (may be nil).
-- Returns {method, url, headers = {"Name: value"}, hdr = {lower = value}, body, ...}.
function M.prepare(where, o, base)
  base = base or {}
  if o.url == nil then opts.raise("%s: option 'url' is required", where) end
  local method = o.method or "GET"
  if not KNOWN[method] then
    method = method:upper()
    if not method:match("^[A-Z]+$") then opts.raise("%s: invalid method %q", where, o.method) end
  end
  local u, parsed = check_url(where, o, base)
  local hdr, headers, body
  if base.headers or o.headers or o.json ~= nil or o.form or o.body or o.idempotency_key
    or (base.idempotency and not SAFE[method]) then
    hdr, headers, body = build_headers(where, method, u, o, base)
  else -- (most requests: pacer's Accept line alone, nothing to check or order)
    hdr, headers = {accept = ACCEPT}, {ACCEPT_LINE}
  end
  -- redirects are followed by http/redirect.lua, not libcurl (which would send every
  -- caller header to whatever origin a server names)
  local follow, redirects, downgrade = o.follow
  if follow == nil then follow = base.follow end
  if type(follow) == "table" then
    follow = opts.check(where .. ": follow", follow, {max = "integer", downgrade = "boolean"})
    redirects, downgrade = follow.max or 10, follow.downgrade == true
  else
    redirects = follow == true and 10 or follow or 0
  end
  if redirects < 0 then opts.raise("%s: option 'follow' must be >= 0, got %d", where, redirects) end
  local verify = o.verify
  if verify == nil then verify = base.verify end
  if verify == false and u:find("^[Hh][Tt][Tt][Pp][Ss]:") then
    log.warn("TLS verification is off for %s", url.redact(u))
  end
  -- one constructor with every field, including those the client fills in later (path,
  -- cost, priority, max_wait, partition): the table is sized once, never grown
  return {method = method, url = u, headers = headers, hdr = hdr, body = body,
    -- what http.request need not parse again: this very string was checked (a value, not
    -- a flag: a table that inherits it with another url, a redirect's, is checked again)
    url_checked = u, url_handle = parsed,
    timeout = duration(where, o, base, "timeout") or 30,
    connect_timeout = duration(where, o, base, "connect_timeout") or 10,
    redirects = redirects, downgrade = downgrade, verify = verify, max_body = o.max_body or base.max_body,
    idempotent = SAFE[method] or hdr["idempotency-key"] ~= nil,
    path = nil, cost = nil, priority = nil, max_wait = nil, partition = nil}
end

-- The sender of a request made without a client: its own limiter, the run's stats.
local Bare = {}
Bare.__index = Bare

-- The limiter's wait (cost, priority, max_wait as asked), then the auth header.
function Bare:before_attempt(r)
  local waited, token = 0, {}
  if self.limiter then
    local w, late = self.limiter:acquire(r.cost, {priority = r.priority, max_wait = r.max_wait})
    if not w then return false, late end
    waited, token.slot_at = w, late
  end
  if r.auth then
    local line, err = auth.line(r.auth, r)
    if not line then return false, err end
    return waited, {line}, token
  end
  return waited, nil, token
end

-- A 401: the auth object refreshes once and the request goes again at once.
function Bare.after_attempt(_, r, res)
  if res and res.status == 401 and r.auth and not r.auth_refreshed then
    r.auth_refreshed = true
    return auth.refresh(r.auth, r)
  end
end

-- the requests made without a client, as one more client in /metrics ("pacer.request")
M.counters = stats.new(stats.run)

-- pacer.request{...}: a request on its own (no client): retries by default.
function M.request(o)
  o = opts.check("pacer.request", o, M.SPEC)
  local r = M.prepare("pacer.request", o)
  if o.auth then r.auth = auth.check("pacer.request", o.auth) end
  if o.priority and (o.priority < 1 or o.priority > 9) then
    opts.raise("pacer.request: 'priority' must be 1..9 (1 goes first), got %d", o.priority)
  end
  r.cost, r.priority, r.max_wait = o.cost or 1, o.priority, o.max_wait
  if r.cost < 1 then opts.raise("pacer.request: 'cost' must be >= 1, got %d", r.cost) end
  local max = o.limiter and o.limiter.max_cost and o.limiter:max_cost()
  if max and r.cost > max then
    opts.raise("pacer.request: a cost of %d is above the limiter's burst (%d): it could never be sent", r.cost, max)
  end
  return attempt.send(r, setmetatable({limiter = o.limiter, counters = M.counters, again_budget = 1}, Bare),
    retry.policy(o.retry, "pacer.request"))
end

return M
