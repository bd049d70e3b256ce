-- pacer.redis.conn: one Redis connection as the Lua modules use it (the limiter, the
-- queue, the cache): made again on demand after it drops, scripts loaded once per
-- connection with SCRIPT LOAD and run with EVALSHA (loaded again after a restart), and
-- a waiting mode that rides out an outage with backoff, warning once per outage. A
-- command not answered within the connection's timeout (redis_timeout, default 2 s)
-- fails with "timeout: ..." and drops the connection: a frozen Redis is an outage too.
local connect = require "pacer.c.redis"
local task = require "pacer.c.task"
local log = require "pacer.base.log"
local opts = require "pacer.base.options"

local M = {}

-- server errors that mean "not now" (a restart loading its data, a busy script)
local TRANSIENT = {LOADING = true, BUSY = true, TRYAGAIN = true, MASTERDOWN = true}

local Conn = {}
Conn.__index = Conn

-- redis://HOST[:PORT][/DB] -> host, port (who names the option for the error)
function M.parse_url(u, who)
  local host, port = tostring(u):match("^redis://([^:/]+):?(%d*)/?%d*$")
  if not host then opts.raise("%s: 'redis' must look like redis://HOST:PORT, got %q", who, tostring(u)) end
  return host, tonumber(port) or 6379
end

M.TIMEOUT = 2 -- seconds a command may wait for its reply, unless redis_timeout says
M.PROBE = 1 -- seconds between tries of Redis during an outage, for users that do without it

-- The redis_timeout option of `who` (seconds, as opts.check normalized it) checked:
-- nil gives the default; it must be positive.
function M.timeout(v, who)
  if v == nil then return M.TIMEOUT end
  if v <= 0 then opts.raise("%s: 'redis_timeout' must be a positive duration, got %g", who, v) end
  return v
end

-- what names the user of the connection in warnings ("limiter 'audian'"); timeout in
-- seconds (default M.TIMEOUT).
function M.new(host, port, what, timeout)
  return setmetatable({host = host, port = port, what = what, sha = {}, timeout = timeout or M.TIMEOUT}, Conn)
end

function Conn:where() return string.format("redis %s:%d", self.host, self.port) end

-- c:call(cmd, ...) -> reply | false (nil reply) | nil, err; connection made on demand.
function Conn:call(...)
  if not (self.c and self.c:alive()) then
    self.c = connect(self.host, self.port, self.timeout)
    self.sha = {}
  end
  return self.c:call(...)
end

-- c:eval(name, script, keys, ...) -> reply | nil, err
function Conn:eval(name, script, keys, ...)
  if not (self.c and self.c:alive()) then self.sha = {} end
  if not self.sha[name] then
    local sha, err = self:call("SCRIPT", "LOAD", script)
    if not sha then return nil, err end
    self.sha[name] = sha
  end
  local args = {"EVALSHA", self.sha[name], #keys}
  table.move(keys, 1, #keys, 4, args)
  table.move({...}, 1, select("#", ...), #args + 1, args)
  local r, err = self:call(table.unpack(args))
  if r == nil and err and err:find("NOSCRIPT", 1, true) then -- Redis restarted empty: load again
    self.sha = {}
    return self:eval(name, script, keys, ...)
  end
  return r, err
end

-- Sorts out a reply: a server's error raises; while Redis is unreachable (or loading) it warns once
-- per outage (meanwhile says what happens then) and gives nil, true.
function Conn:check(r, err, meanwhile)
  if r ~= nil or not err then
    if self.outage then log.warn("%s is back for %s", self:where(), self.what) end
    self.outage = false
    return r
  end
  -- a server's error starts with its code (ERR, WRONGTYPE…); LOADING and the like pass
  local code = err:match("^(%u+) ")
  if code and not TRANSIENT[code] then error(string.format("%s: %s: %s", self.what, self:where(), err), 0) end
  self:close() -- the next call connects afresh
  self.retry_at = task.now() + M.PROBE
  if not self.outage then log.warn("%s unreachable for %s (%s): %s", self:where(), self.what, err, meanwhile) end
  self.outage = true
  return nil, true
end

-- True while an outage is on and the next try of Redis is not due: a user that can do
-- without Redis (the cache) goes without it, rather than wait out each command's timeout.
function Conn:resting()
  return self.outage and task.now() < (self.retry_at or 0)
end

-- Runs f(self) -> reply | nil, err until it answers while Redis is unreachable (backoff
-- 50 ms doubling to 2 s); raises on a server error.
function Conn:waiting(f)
  local backoff = 0.05
  while true do
    local r, err = f(self)
    local v, out = self:check(r, err, "waiting for it")
    if not out then return v end
    task.sleep(backoff)
    backoff = math.min(backoff * 2, 2)
  end
end

function Conn:close()
  if self.c then self.c:close() end
  self.c = nil
end

return M
