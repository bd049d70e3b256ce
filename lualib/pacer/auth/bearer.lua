-- pacer.auth.bearer / basic: static credentials (see auth/init.lua for the protocol).
local crypto = require "pacer.c.crypto"
local opts = require "pacer.base.options"

local M = {}

local Static = {}
Static.__index = Static

Static.__name = "pacer.auth" -- the REPL shows it by __tostring, never its fields

function Static:header() return self.line end
function Static:__tostring() return "pacer.auth." .. self.kind .. " (***)" end

-- pacer.auth.bearer(token): Authorization: Bearer <token>
function M.bearer(token)
  if type(token) ~= "string" or token == "" or token:find("[\r\n%z]") then
    opts.raise("pacer.auth.bearer: expected a token string, got %s", type(token))
  end
  return setmetatable({kind = "bearer", line = "Authorization: Bearer " .. token}, Static)
end

-- pacer.auth.basic(user, password): Authorization: Basic base64(user:password)
function M.basic(user, password)
  if type(user) ~= "string" or user:find(":", 1, true) then
    opts.raise("pacer.auth.basic: expected a user name without ':', got %s", type(user))
  end
  if type(password) ~= "string" then
    opts.raise("pacer.auth.basic: expected a password string, got %s", type(password))
  end
  return setmetatable({kind = "basic", line = "Authorization: Basic " .. crypto.base64(user .. ":" .. password)},
    Static)
end

return M
