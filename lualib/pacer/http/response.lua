-- pacer.http.response: the response object: status, headers (case-insensitive), body,
-- elapsed, quota, retry_after (seconds, parsed once for every policy), and res:json().
local cjson = require "cjson"
local corelib = require "pacer.c.corelib"
local url = require "pacer.base.url"

local M = {}

local Headers = {
  __index = function(t, k) return type(k) == "string" and rawget(t, k:lower()) or nil end,
  __newindex = function(t, k, v) rawset(t, type(k) == "string" and k:lower() or k, v) end,
}

function M.headers(t) return setmetatable(t or {}, Headers) end

local Response = {}
Response.__index = Response

function Response:json()
  local ok, v = pcall(cjson.decode, self.body)
  if not ok then
    local snippet = self.body:sub(1, 60):gsub("[%c]", "?")
    error(string.format("res:json(): the body of %s %s (HTTP %d, %d bytes) is not valid JSON: %s; it starts %q",
      self.method, url.redact(self.url), self.status, #self.body, tostring(v):gsub("^.-: ", ""), snippet), 2)
  end
  return v
end

function Response:ok() return self.status >= 200 and self.status < 400 end

function Response:__tostring()
  return string.format("<response %d %s %s, %d bytes in %.3fs>", self.status, self.method,
    url.redact(self.url), #self.body, self.elapsed)
end

function M.new(req, status, headers, body, info, attempt)
  local quota, quota_error
  if info.quota_headers then quota, quota_error = corelib.parse_quota(headers) end
  local ra = rawget(headers, "retry-after") -- (names come lower-cased: no __index call)
  return setmetatable({
    status = status, headers = setmetatable(headers, Headers), body = body, elapsed = info.elapsed,
    ttfb = info.ttfb, http_version = info.http_version, reused = info.reused,
    method = req.method, url = req.url, attempts = attempt,
    quota = quota, quota_error = quota_error, -- why a malformed RateLimit field was ignored
    retry_after = ra and corelib.parse_retry_after(ra),
  }, Response)
end

-- A response answered from the HTTP cache: entry = {status, headers, body}; `via` is
-- the 304 that revalidated it, if any.
function M.cached(req, entry, via)
  local headers = {}
  for k, v in pairs(entry.headers) do headers[k] = v end
  return setmetatable({
    status = entry.status, headers = M.headers(headers), body = entry.body,
    elapsed = via and via.elapsed or 0, method = req.method, url = req.url, attempts = via and via.attempts or 0,
    quota = via and via.quota, cached = true,
  }, Response)
end

M.Response = Response
return M
