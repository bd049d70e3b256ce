-- pacer.auth: credentials computed per attempt, for `auth =` on a client or a request.
-- The one place that knows the kinds (bearer, basic, jwt, oauth2: a file each). Every
-- auth object implements:
--   auth:header(req) -> "Authorization: ..." (a header line; may yield, e.g. to fetch a
--                       token), or nil, err: the request is then not sent and fails
--                       with err {kind = "auth", message =}
--   auth:refresh(req) -> true when a new credential may help after a 401 on req (the
--                       client then resends once, at once); optional
--   auth.kind         "bearer" | "basic" | "jwt" | "oauth2" | a user's own name
-- and its __tostring never shows a secret. Any table with a header method works.
local errors = require "pacer.base.errors"
local opts = require "pacer.base.options"

local M = {}

M.bearer = require("pacer.auth.bearer").bearer
M.basic = require("pacer.auth.bearer").basic
M.jwt = require("pacer.auth.jwt").new
M.oauth2 = require("pacer.auth.oauth2").new

-- a, checked where it enters (a client's or a request's `auth`).
function M.check(where, a)
  if type(a) ~= "table" or type(a.header) ~= "function" then
    opts.raise("%s: option 'auth' must be a pacer.auth object (bearer, basic, jwt, oauth2) or a table " ..
      "with a header(req) method", where)
  end
  return a
end

-- The header line for request r, or nil, err (kind "auth"; never a secret in it).
function M.line(a, r)
  local ok, line, why = pcall(a.header, a, r)
  if ok and type(line) == "string" and not line:find("[\r\n%z]") and line:find("^[%w%-]+:") then return line end
  if ok and line ~= nil then why = "header() did not return a header line" end
  local msg = not ok and tostring(line) or (type(why) == "table" and why.message) or tostring(why or "no credential")
  return nil, errors.new{kind = "auth", auth = a.kind, message = string.format("%s auth: %s", a.kind or "custom", msg)}
end

-- After a 401 on r: lets the auth object drop what was refused. True: resend once.
function M.refresh(a, r)
  if type(a.refresh) ~= "function" then return false end
  local ok, again = pcall(a.refresh, a, r)
  return ok and again == true
end

return M
