-- pacer.http.redirect: following redirects ourselves (follow = true | N | {max =,
-- downgrade =}), so that what the caller meant for one origin stays there. On a
-- redirect to another origin every header the caller set (API keys, auth, idempotency
-- keys) is dropped, and a request with a body (a 307/308 POST) is not followed at all:
-- its 3xx comes back as the answer. https -> http is refused unless downgrade = true.
-- A Location that is not http(s) is a protocol error. 301/302/303 turn into a GET.
local M = {}

local REDIRECT = {[301] = true, [302] = true, [303] = true, [307] = true, [308] = true}

local function origin(u)
  local scheme, authority = u:match("^(%a[%w+.-]*)://([^/?#]*)")
  if not scheme then return nil end
  authority = authority:gsub("^.*@", "") -- userinfo is not part of the origin
  return scheme:lower() .. "://" .. authority:lower(), scheme:lower()
end
M.origin = origin

-- Location resolved against the URL it came from (absolute, //host, /path, or relative).
local function resolve(from, loc)
  if loc:match("^%a[%w+.-]*:") then return loc end
  local scheme, authority, path = from:match("^(%a[%w+.-]*)://([^/?#]*)([^?#]*)")
  if loc:sub(1, 2) == "//" then return scheme .. ":" .. loc end
  if loc:sub(1, 1) == "/" then return scheme .. "://" .. authority .. loc end
  return scheme .. "://" .. authority .. (path:match("^(.*/)") or "/") .. loc
end
M.resolve = resolve

-- Whether an answer asks to be followed.
function M.is_redirect(status, headers) return REDIRECT[status] and headers.location ~= nil end

-- The request to send next after answer `status`/`headers` to `wire`, or nil when the
-- answer is final; nil, err (a protocol error table) when the redirect is refused.
function M.next(r, wire, status, headers)
  if not REDIRECT[status] or not headers.location then return nil end
  local to = resolve(wire.url, headers.location)
  local to_origin, to_scheme = origin(to)
  if to_scheme ~= "http" and to_scheme ~= "https" then
    return nil, {kind = "protocol", message = string.format("redirect to a %s URL refused (only http and https)",
      to_scheme or "malformed")}
  end
  local from_origin, from_scheme = origin(wire.url)
  if from_scheme == "https" and to_scheme == "http" and not r.downgrade then
    return nil, {kind = "protocol",
      message = "redirect from https to http refused (follow = {downgrade = true} allows it)"}
  end
  local keep_body = (status == 307 or status == 308) and wire.body ~= nil
  local cross = to_origin ~= from_origin
  if cross and keep_body then return nil end -- a body for one origin is not sent to another
  local nxt = {url = to, method = wire.method, body = wire.body, headers = wire.headers, timeout = wire.timeout,
    connect_timeout = wire.connect_timeout, verify = wire.verify, max_body = wire.max_body}
  if (not keep_body and wire.body ~= nil) or (status == 303 and wire.method ~= "HEAD") then
    nxt.method, nxt.body = wire.method == "HEAD" and "HEAD" or "GET", nil
  end
  if cross then -- only what pacer itself adds goes to another origin
    nxt.headers = {"Accept: " .. (r.hdr.accept or "*/*")}
  elseif nxt.body == nil and wire.body ~= nil then -- the body is gone: so is its Content-Type
    nxt.headers = {}
    for _, line in ipairs(wire.headers) do
      if not line:lower():find("^content%-type:") then nxt.headers[#nxt.headers + 1] = line end
    end
  end
  return nxt
end

return M
