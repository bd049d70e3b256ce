-- pacer.base.url: query strings, URL joining, and redaction of secrets for anything printed.
local M = {}

function M.encode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

function M.decode(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- {page = 2, tag = {"a", "b"}} -> "page=2&tag=a&tag=b" (keys sorted: stable URLs cache well)
function M.query(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    if v == nil then v = t[tonumber(k)] end
    local vs = type(v) == "table" and v or {v}
    for _, x in ipairs(vs) do
      if type(x) == "boolean" then x = x and "true" or "false" end
      parts[#parts + 1] = M.encode(k) .. "=" .. M.encode(x)
    end
  end
  return table.concat(parts, "&")
end

function M.parse_query(s)
  local t = {}
  for pair in (s or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k, v = M.decode(k), M.decode(v)
    if t[k] == nil then t[k] = v
    elseif type(t[k]) == "table" then table.insert(t[k], v)
    else t[k] = {t[k], v} end
  end
  return t
end

function M.add_query(u, q)
  local qs = type(q) == "string" and q or M.query(q)
  if qs == "" then return u end
  local base, frag = u:match("^([^#]*)(#?.*)$")
  return base .. (base:find("?", 1, true) and "&" or "?") .. qs .. frag
end

function M.is_absolute(u)
  return u:match("^%a[%w+.-]*://") ~= nil
end

-- base "http://h/v2" + "/sms/send" -> "http://h/v2/sms/send"
function M.join(base, path)
  if not base or M.is_absolute(path) then return path end
  if path == "" then return base end
  if path:byte(1) == 47 and path:byte(2) ~= 47 and base:byte(-1) ~= 47 then
    return base .. path -- the common case, "/x" on a base without a trailing "/"
  end
  return base:gsub("/+$", "") .. "/" .. path:gsub("^/+", "")
end

-- The redaction rule (README "Secrets"): a query parameter or a field whose name
-- contains one of these (any case) has its value shown as ***, and a URL's userinfo
-- (user and password: a user name may be a token) is shown as ***.
local SECRET_NAMES = {"key", "token", "secret", "password", "passwd", "pwd", "signature", "sig", "auth",
  "session", "sid", "jwt", "credential", "cookie", "bearer", "private"}

local function secret_name(name)
  name = tostring(name):lower()
  for _, s in ipairs(SECRET_NAMES) do
    if name:find(s, 1, true) then return true end
  end
  return false
end

-- pacer.secret_names{"ticket", "otp"}: more names to treat as secret. Returns them all.
function M.add_secret_names(names)
  for _, n in ipairs(names or {}) do
    if type(n) == "string" and n ~= "" then SECRET_NAMES[#SECRET_NAMES + 1] = n:lower() end
  end
  return {table.unpack(SECRET_NAMES)}
end

-- Removes the authority's userinfo and secret-looking query values.
function M.redact(u)
  u = tostring(u)
  local scheme, auth, rest = u:match("^(%a[%w+.-]*://)([^/?#]*)(.*)$")
  if auth and auth:find("@", 1, true) then
    local host = auth:match("^.*@([^@]*)$") -- the last @ ends the userinfo
    u = scheme .. "***@" .. host .. rest
  end
  return (u:gsub("([?&])([^=&#]+)=([^&#]*)", function(sep, k)
    if secret_name(M.decode(k)) then return sep .. k .. "=***" end
  end))
end

M.secret_name = secret_name
return M
