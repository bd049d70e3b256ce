-- pacer.serve.listener: an HTTP listener whose routes are Lua functions, each request in its own
-- task. A route returns status, body (a table is sent as JSON), headers; or nothing when
-- it answered or dropped the connection itself through its second argument.
local cjson = require "cjson"
local listen = require "pacer.c.server"
local log = require "pacer.base.log"
local opts = require "pacer.base.options"
local url = require "pacer.base.url"

local Server = {__name = "pacer.serve"}
function Server.__tostring(s) return "pacer.serve " .. s.url end

local M = {}

local SPEC = {
  host = "string", port = "integer", routes = "table", handler = "callable", max_body = "integer",
  max_header_bytes = "integer", max_headers = "integer", max_connections = "integer",
  header_timeout = "duration", body_timeout = "duration", idle_timeout = "duration",
}

local Request = {}
Request.__index = Request

function Request:json()
  local ok, v = pcall(cjson.decode, self.body)
  if not ok then return nil, "request body is not valid JSON" end
  return v
end

local JSON = {["Content-Type"] = "application/json"}

local function answer(h, status, body, headers)
  headers = headers or {}
  if type(body) == "table" then
    body = cjson.encode(body)
    local has = false
    for k in pairs(headers) do if k:lower() == "content-type" then has = true end end
    if not has then headers["Content-Type"] = "application/json" end
  end
  h:respond(status, headers, body or "")
end

-- "GET /a/b" exact, or "GET /a/*" prefix; "* /x" matches any method.
local function router(routes)
  local exact, prefix = {}, {}
  for key, fn in pairs(routes) do
    local method, path = tostring(key):match("^(%S+)%s+(/%S*)$")
    if not method then
      error(string.format("pacer.serve: route %q must look like \"GET /path\"", tostring(key)), 4)
    end
    if path:sub(-1) == "*" then
      prefix[#prefix + 1] = {method, path:sub(1, -2), fn}
    else
      exact[method .. " " .. path] = fn
    end
  end
  table.sort(prefix, function(a, b) return #a[2] > #b[2] end)
  return function(req)
    local fn = exact[req.method .. " " .. req.path] or exact["* " .. req.path]
    if fn then return fn end
    for _, p in ipairs(prefix) do
      if (p[1] == req.method or p[1] == "*") and req.path:sub(1, #p[2]) == p[2] then return p[3] end
    end
  end
end

function M.serve(o)
  opts.check("pacer.serve", o, SPEC)
  if not o.routes and not o.handler then opts.raise("pacer.serve: 'routes' or 'handler' is required") end
  local find = o.routes and router(o.routes)
  local handler = o.handler
  local function dispatch(req, h)
    req.raw_query = req.query
    req.query = url.parse_query(req.raw_query)
    setmetatable(req, Request)
    local fn = handler or find(req)
    if not fn then
      return answer(h, 404, {error = "no route for " .. req.method .. " " .. req.path})
    end
    local ok, err = xpcall(function()
      local status, body, headers = fn(req, h)
      if status ~= nil then
        answer(h, status, body, headers)
      elseif not h:answered() then
        error("the route returned no status and did not answer", 0)
      end
    end, debug.traceback)
    if not ok then
      log.error("handler for %s %s failed: %s", req.method, req.path, tostring(err))
      if not h:answered() then h:respond(500, JSON, '{"error":"internal error"}') end
    end
  end
  local args = {handler = dispatch}
  for k, v in pairs(o) do if k ~= "routes" and k ~= "handler" then args[k] = v end end
  for _, k in ipairs{"header_timeout", "body_timeout", "idle_timeout"} do
    if args[k] ~= nil then
      args[k] = opts.duration("pacer.serve", k, args[k])
      if args[k] <= 0 then opts.raise("pacer.serve: '%s' must be positive", k) end
    end
  end
  local ok, srv = pcall(listen, args)
  if not ok then
    local why = tostring(srv):match("Address already in use")
    if why then opts.raise("pacer.serve: port %s is in use (%s)", tostring(o.port), why) end
    opts.raise("%s", srv)
  end
  local host = o.host or "127.0.0.1"
  local port = srv:port()
  local h = host:find(":", 1, true) and ("[" .. host .. "]") or host
  return setmetatable({
    host = host, port = port, url = string.format("http://%s:%d", h, port),
    close = function() srv:close() end,
    _srv = srv,
  }, Server)
end

M.Server = Server
M.answer = answer
M.JSON = JSON
return M
