-- pacer.cache.redis: a cache kept in Redis (pacer.cache{redis = url, name =}), shared by
-- processes on several hosts. Values are stored as JSON with Redis's own expiry; fetch
-- is single-flight across processes (a short lock key: one process loads, the others
-- poll for its value). A cache is an optimisation, so while Redis is unreachable it
-- fails open: get misses, set is dropped, fetch runs the loader, one warning per outage.
local cjson = require "cjson"
local corelib = require "pacer.c.corelib"
local crypto = require "pacer.c.crypto"
local task = require "pacer.c.task"
local redis_conn = require "pacer.redis.conn"
local opts = require "pacer.base.options"

local M = {}

local Cache = {}
Cache.__index = Cache

local UNLOCK = [[
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
]]

-- Deletes every key under a prefix (SCAN, so a large cache does not block Redis long).
local CLEAR = [[
local cursor, n = '0', 0
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = r[1]
  for _, k in ipairs(r[2]) do n = n + redis.call('DEL', k) end
until cursor == '0'
return n
]]

local COUNT = [[
local cursor, n = '0', 0
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = r[1]
  n = n + #r[2]
until cursor == '0'
return n
]]

local SPEC = {redis = "string", name = "string", ttl = "duration", negative_ttl = "duration", lock = "duration",
  redis_timeout = "duration"}

-- A ttl argument (not an option) as seconds, or a raise naming the method, as the
-- memory cache words it.
local function ttl_arg(where, v, default)
  if v == nil then return default end
  local ok, d = pcall(corelib.parse_duration, v)
  if not ok then opts.raise("%s: %s", where, d) end
  return d
end

-- {redis = url, name = "default", ttl = 0 (no expiry), negative_ttl =, lock = "30s", redis_timeout = "2s"}
function M.new(o)
  for k in pairs(o) do
    if not SPEC[k] then
      opts.raise("pacer.cache: a Redis cache takes redis, name, ttl, negative_ttl, lock and redis_timeout, not '%s'",
        tostring(k))
    end
  end
  o = opts.check("pacer.cache", o, SPEC)
  local host, port = redis_conn.parse_url(o.redis, "pacer.cache")
  local name = o.name or "default"
  local self = setmetatable({name = name, prefix = "pacer:c:" .. name .. ":",
    conn = redis_conn.new(host, port, string.format("cache '%s'", name),
      redis_conn.timeout(o.redis_timeout, "pacer.cache")),
    ttl = o.ttl or 0, negative_ttl = o.negative_ttl, lock = o.lock or 30, inflight = {},
    counts = {hits = 0, misses = 0, sets = 0, loads = 0, waits = 0}}, Cache)
  if self.lock <= 0 then opts.raise("pacer.cache: 'lock' must be a positive duration, got %s", tostring(o.lock)) end
  return self
end

local function check_key(what, key)
  local kt = type(key)
  if kt ~= "string" and kt ~= "number" then
    opts.raise("cache:%s: key must be a string or a number, got %s", what, kt)
  end
  return tostring(key)
end

-- JSON has one number type: whole numbers come back as integers.
local function integers(v)
  if type(v) == "number" then return math.tointeger(v) or v end
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = integers(x) end
  end
  return v
end

-- One command; nil while Redis is unreachable (warned once), raises on a server error.
function Cache:try(...)
  if self.conn:resting() then return nil end
  local r, err = self.conn:call(...)
  return (self.conn:check(r, err, "caching nothing meanwhile"))
end

function Cache:eval(name, script, keys, ...)
  if self.conn:resting() then return nil end
  local r, err = self.conn:eval(name, script, keys, ...)
  return (self.conn:check(r, err, "caching nothing meanwhile"))
end

-- The stored value, or nil.
function Cache:raw(kind, key)
  local s = self:try("GET", self.prefix .. kind .. key)
  if not s then return nil end
  return integers(cjson.decode(s)).v
end

function Cache:store(kind, key, value, ttl)
  local ok, s = pcall(cjson.encode, {v = value})
  if not ok then opts.raise("cache:set: a Redis cache stores JSON: %s", s) end
  if ttl > 0 then
    self:try("SET", self.prefix .. kind .. key, s, "PX", math.max(1, math.floor(ttl * 1000 + 0.5)))
  else
    self:try("SET", self.prefix .. kind .. key, s)
  end
end

function Cache:get(key)
  return self:raw("v:", check_key("get", key))
end

-- c:set(key, value [, ttl]); a nil value deletes.
function Cache:set(key, value, ttl)
  key = check_key("set", key)
  if value == nil then return self:delete(key) end
  self.counts.sets = self.counts.sets + 1
  self:store("v:", key, value, ttl_arg("cache:set", ttl, self.ttl))
end

function Cache:delete(key)
  key = check_key("delete", key)
  self:try("DEL", self.prefix .. "v:" .. key, self.prefix .. "e:" .. key)
end

function Cache:clear()
  self:eval("clear", CLEAR, {}, self.prefix .. "*")
end

function Cache:len()
  return self:eval("count", COUNT, {}, self.prefix .. "v:*") or 0
end
Cache.__len = Cache.len

function Cache:stats()
  local s = {}
  for k, v in pairs(self.counts) do s[k] = v end
  s.entries = self:len()
  return s
end

-- Loads key: when this process takes the lock, runs loader; otherwise waits for the
-- process that holds it to store the value (or to give the lock up, then tries again).
function Cache:load(key, loader, ttl)
  local lock, token = self.prefix .. "l:" .. key, crypto.random_hex(16)
  local give_up = task.now() + self.lock + 1
  local pause = 0.01
  while true do
    local got = self:try("SET", lock, token, "NX", "PX", math.ceil(self.lock * 1000))
    if got or self.conn.outage or task.now() > give_up then break end
    self.counts.waits = self.counts.waits + 1
    task.sleep(pause)
    pause = math.min(pause * 2, 0.2)
    local v = self:raw("v:", key)
    if v ~= nil then return v end
    if self.negative_ttl then
      local e = self:raw("e:", key)
      if e ~= nil then return nil, e end
    end
  end
  self.counts.loads = self.counts.loads + 1
  local ok, v, err = pcall(loader, key)
  local a, b
  if ok and v ~= nil then
    self:store("v:", key, v, ttl)
    a = v
  else
    b = ok and (err or "loader returned nil") or v
    if self.negative_ttl then self:store("e:", key, tostring(b), self.negative_ttl) end
  end
  self:eval("unlock", UNLOCK, {lock}, token)
  return a, b
end

-- c:fetch(key, loader [, ttl]) -> value | nil, err: loader(key) runs once at a time for a
-- key across every process sharing the cache.
function Cache:fetch(key, loader, ttl)
  if type(loader) ~= "function" then opts.raise("cache:fetch: loader must be a function, got %s", type(loader)) end
  key = check_key("fetch", key)
  ttl = ttl_arg("cache:fetch", ttl, self.ttl)
  local v = self:raw("v:", key)
  if v ~= nil then
    self.counts.hits = self.counts.hits + 1
    return v
  end
  self.counts.misses = self.counts.misses + 1
  if self.negative_ttl then
    local e = self:raw("e:", key)
    if e ~= nil then return nil, e end
  end
  local waiters = self.inflight[key]
  if waiters then -- this process loads it already
    waiters[#waiters + 1] = task.current() or opts.raise("cache:fetch: must be called from a task")
    return task.suspend()
  end
  waiters = {}
  self.inflight[key] = waiters
  local ok, a, b = pcall(self.load, self, key, loader, ttl)
  self.inflight[key] = nil
  if not ok then a, b = nil, a end
  for _, t in ipairs(waiters) do task.wake(t, a, b) end
  if not ok then error(b, 0) end
  return a, b
end

return M
