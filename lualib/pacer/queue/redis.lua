-- pacer.queue.redis: the durable queue kept in Redis (pacer.queue{redis = url, name =}),
-- for workers on several hosts. The same contract as the SQLite queue: push, leased
-- pop, ack, fail with attempt counts, dead letters, an idempotency key per item; a
-- lease that is not acked in time (its worker died) puts the item back. Each step is
-- one Lua script on the server, so concurrent workers never take the same item.
local cjson = require "cjson"
local redis_conn = require "pacer.redis.conn"
local opts = require "pacer.base.options"
local base = require "pacer.queue.base"

local M = {}

local Queue = base.class("redis")

-- KEYS: ready (zset id->order), items, meta (hashes), leased (zset id->expiry ms), dead (list), seq
local PUSH = [[
local id = redis.call('INCR', KEYS[6])
local order = tonumber(ARGV[1]) * 1e13 + id
redis.call('HSET', KEYS[2], id, ARGV[2])
redis.call('HSET', KEYS[3], id, cjson.encode({idem = ARGV[3], attempts = 0, order = order}))
redis.call('ZADD', KEYS[1], order, id)
return id
]]

local POP = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
  local meta = cjson.decode(redis.call('HGET', KEYS[3], id))
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZADD', KEYS[1], meta.order, id)
end
local got = redis.call('ZPOPMIN', KEYS[1])
if #got == 0 then return false end
local id = got[1]
local meta = cjson.decode(redis.call('HGET', KEYS[3], id))
meta.attempts = meta.attempts + 1
redis.call('HSET', KEYS[3], id, cjson.encode(meta))
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[1]), id)
return {id, redis.call('HGET', KEYS[2], id), meta.attempts, meta.idem, tostring(meta.order)}
]]

local ACK = [[
if redis.call('ZREM', KEYS[4], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
]]

-- ARGV: id, lease ms. The lease runs from now again, if the item is still leased.
local RENEW = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if not redis.call('ZSCORE', KEYS[4], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[4], 'XX', now + tonumber(ARGV[2]), ARGV[1])
return 1
]]

local FAIL = [[
if redis.call('ZREM', KEYS[4], ARGV[1]) == 0 then return 0 end
local meta = cjson.decode(redis.call('HGET', KEYS[3], ARGV[1]))
if meta.attempts >= tonumber(ARGV[2]) then
  redis.call('RPUSH', KEYS[5], cjson.encode({item = redis.call('HGET', KEYS[2], ARGV[1]),
    err = ARGV[3], attempts = meta.attempts}))
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[1], meta.order, ARGV[1])
end
return 1
]]

-- {redis = url, name = "default", max_attempts = 3, lease = "5m", poll = "250ms", redis_timeout = "2s",
-- store_timeout = "30s"}
function M.new(o)
  local host, port = redis_conn.parse_url(o.redis, "pacer.queue")
  local name = o.name or "default"
  local prefix = "pacer:q:" .. name .. ":"
  return base.make(Queue, {name = name, max_attempts = o.max_attempts or 3,
    conn = redis_conn.new(host, port, string.format("queue '%s'", name),
      redis_conn.timeout(o.redis_timeout, "pacer.queue")),
    lease = opts.duration("pacer.queue", "lease", o.lease or 300),
    poll = opts.duration("pacer.queue", "poll", o.poll or 0.25),
    store_timeout = base.store_timeout("pacer.queue", o.store_timeout),
    keys = {prefix .. "ready", prefix .. "items", prefix .. "meta", prefix .. "leased", prefix .. "dead",
      prefix .. "seq"}})
end

-- Runs one of the scripts; waits while Redis is unreachable, raises on its errors.
function Queue:run(name, script, ...)
  local args = table.pack(...)
  return self.conn:waiting(function(c) return c:eval(name, script, self.keys, table.unpack(args, 1, args.n)) end)
end

-- One plain command, with the same waiting.
function Queue:cmd(...)
  local args = table.pack(...)
  return self.conn:waiting(function(c) return c:call(table.unpack(args, 1, args.n)) end)
end

function Queue:insert(payload, priority, idem) self:run("push", PUSH, priority, payload, idem) end

function Queue:try_pop()
  local r = self:run("pop", POP, math.floor(self.lease * 1000))
  if not r then return nil end
  local order = tonumber(r[5])
  return cjson.decode(r[2]), math.floor(order / 1e13),
    {id = r[1], attempts = r[3], idempotency_key = r[4]}
end

function Queue:ack(job) self:run("ack", ACK, job.id) end

-- Starts job's lease again (q:work does so while its handler runs). One try, no waiting
-- out an outage: the next renewal comes soon enough.
function Queue:renew(job)
  self.conn:eval("renew", RENEW, self.keys, job.id, math.floor(self.lease * 1000))
end

function Queue:fail(job, err) self:run("fail", FAIL, job.id, self.max_attempts, tostring(err)) end

function Queue:len()
  return self:cmd("ZCARD", self.keys[1]) + self:cmd("ZCARD", self.keys[4])
end

function Queue:dead()
  local out = {}
  for i, s in ipairs(self:cmd("LRANGE", self.keys[5], 0, -1)) do
    local d = cjson.decode(s)
    out[i] = {item = cjson.decode(d.item), err = d.err, attempts = d.attempts}
  end
  return out
end

function Queue:stats()
  local ready, leased = self:cmd("ZCARD", self.keys[1]), self:cmd("ZCARD", self.keys[4])
  return {ready = ready, leased = leased, dead = self:cmd("LLEN", self.keys[5]), len = ready + leased,
    closed = self.closed}
end

function Queue:close_db() self.conn:close() end

return M
