-- pacer.job.ledger.redis: a job's items in Redis (ledger = "redis://HOST:PORT", name =),
-- the protocol of ledger/init.lua, for any number of processes on any hosts. The first
-- process takes a lock and loads the input (the others wait; a loader that dies lets
-- its lock expire and the next starts the load again); items are leased like the Redis
-- queue's (queue/redis.lua): each step is one Lua script on the server, a lease is
-- renewed while its item runs and comes back to pending when its process dies.
-- Keys, under pacer:job:<name>: meta (hash), items (hash seq -> JSON), pending, leased
-- (seq -> expiry, ms), failed (sorted sets), keys (hash key -> line), counts (hash), lock.
local cjson = require "cjson"
local crypto = require "pacer.c.crypto"
local task = require "pacer.c.task"
local opts = require "pacer.base.options"
local redis_conn = require "pacer.redis.conn"
local ledger = require "pacer.job.ledger"

local M = {}

local Ledger = {}
Ledger.__index = Ledger

local NOW = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
]]

-- KEYS: items, pending, keys, counts; ARGV: JSON list of {seq, key, line, state, reason, row}
local ADD = [[
local list = cjson.decode(ARGV[1])
for _, it in ipairs(list) do
  local rec = {k = it.key, l = it.line, s = it.state, r = it.row, a = 0, f = 0, x = it.reason}
  if it.state == 'pending' then
    if redis.call('HSETNX', KEYS[3], it.key, it.line) == 0 then
      rec.s, rec.x = 'duplicate', 'duplicate of line ' .. redis.call('HGET', KEYS[3], it.key)
    else
      redis.call('ZADD', KEYS[2], it.seq, it.seq)
    end
  end
  redis.call('HSET', KEYS[1], it.seq, cjson.encode(rec))
  redis.call('HINCRBY', KEYS[4], rec.s, 1)
end
return #list
]]

-- KEYS: items, pending, leased, counts; ARGV: n, lease ms, token
local TAKE = NOW .. [[
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)) do
  local rec = cjson.decode(redis.call('HGET', KEYS[1], id))
  rec.s, rec.t = 'pending', nil
  redis.call('HSET', KEYS[1], id, cjson.encode(rec))
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZADD', KEYS[2], id, id)
  redis.call('HINCRBY', KEYS[4], 'leased', -1)
  redis.call('HINCRBY', KEYS[4], 'pending', 1)
end
local got = redis.call('ZPOPMIN', KEYS[2], tonumber(ARGV[1]))
local out = {}
for i = 1, #got, 2 do
  local id = got[i]
  local rec = cjson.decode(redis.call('HGET', KEYS[1], id))
  rec.s, rec.a, rec.t = 'leased', rec.a + 1, ARGV[3]
  redis.call('HSET', KEYS[1], id, cjson.encode(rec))
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), id)
  out[#out + 1] = id
  out[#out + 1] = cjson.encode(rec)
end
local n = #out / 2
if n > 0 then
  redis.call('HINCRBY', KEYS[4], 'pending', 0 - n)
  redis.call('HINCRBY', KEYS[4], 'leased', n)
end
return {out, redis.call('ZCARD', KEYS[3]) - n}
]]

-- KEYS: items, pending, leased, counts, failed; ARGV: token, JSON list of {seq, state, result, reason},
-- "release" (hand back unstarted) or nothing
local FINISH = [[
local n = 0
for _, o in ipairs(cjson.decode(ARGV[2])) do
  local raw = redis.call('HGET', KEYS[1], o.seq)
  local rec = raw and cjson.decode(raw)
  if rec and rec.s == 'leased' and rec.t == ARGV[1] then
    redis.call('ZREM', KEYS[3], o.seq)
    redis.call('HINCRBY', KEYS[4], 'leased', -1)
    rec.t, rec.s = nil, o.state
    if ARGV[3] == 'release' then
      rec.a = rec.a - 1
    elseif o.state == 'done' then
      rec.v, rec.x = o.result, nil
    else
      rec.x, rec.f = o.reason, rec.f + 1
    end
    if rec.s == 'pending' then redis.call('ZADD', KEYS[2], o.seq, o.seq) end
    if rec.s == 'failed' then redis.call('ZADD', KEYS[5], o.seq, o.seq) end
    redis.call('HINCRBY', KEYS[4], rec.s, 1)
    redis.call('HSET', KEYS[1], o.seq, cjson.encode(rec))
    n = n + 1
  end
end
return n
]]

-- KEYS: items, leased; ARGV: lease ms, token, seq...
local RENEW = NOW .. [[
local n = 0
for i = 3, #ARGV do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw and cjson.decode(raw).t == ARGV[2] then
    n = n + redis.call('ZADD', KEYS[2], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[i])
  end
end
return n
]]

-- KEYS: items, pending, failed, counts; ARGV: n
local RETRY = [[
local got = redis.call('ZPOPMIN', KEYS[3], tonumber(ARGV[1]))
for i = 1, #got, 2 do
  local rec = cjson.decode(redis.call('HGET', KEYS[1], got[i]))
  rec.s, rec.f = 'pending', 0
  redis.call('HSET', KEYS[1], got[i], cjson.encode(rec))
  redis.call('ZADD', KEYS[2], got[i], got[i])
end
local n = #got / 2
if n > 0 then
  redis.call('HINCRBY', KEYS[4], 'failed', 0 - n)
  redis.call('HINCRBY', KEYS[4], 'pending', n)
end
return n
]]

local LOCK_MS = 30000

-- url: redis://HOST:PORT; o.lease: seconds
function M.open(url, name, o)
  local host, port = redis_conn.parse_url(url, "pacer.job: ledger")
  local p = "pacer:job:" .. name .. ":"
  local self = setmetatable({url = url, name = name, lease_ms = math.floor((o and o.lease or 30) * 1000),
    token = crypto.random_hex(8),
    conn = redis_conn.new(host, port, string.format("job '%s'", name)),
    k = {meta = p .. "meta", items = p .. "items", pending = p .. "pending", leased = p .. "leased",
      failed = p .. "failed", keys = p .. "keys", counts = p .. "counts", lock = p .. "lock"}}, Ledger)
  return self
end

function Ledger:cmd(...)
  local args = table.pack(...)
  return self.conn:waiting(function(c) return c:call(table.unpack(args, 1, args.n)) end)
end

function Ledger:run(name, script, keys, ...)
  local args = table.pack(...)
  return self.conn:waiting(function(c) return c:eval(name, script, keys, table.unpack(args, 1, args.n)) end)
end

-- JSON numbers come back as floats: 2.0 -> 2
local function int(v) return math.tointeger(v) or v end

local function hash_table(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

function Ledger:meta()
  local m = hash_table(self:cmd("HGETALL", self.k.meta))
  if next(m) == nil then return nil end
  for k, v in pairs(m) do if ledger.NUMERIC[k] then m[k] = tonumber(v) end end
  return m
end

function Ledger:set_meta(t)
  local args = {"HSET", self.k.meta}
  for k, v in pairs(t) do
    args[#args + 1] = k
    args[#args + 1] = tostring(v)
  end
  self:cmd(table.unpack(args))
end

-- Waits (at most an hour) while another process loads; true when this one is to load.
function Ledger:begin_load()
  local k = self.k
  for _ = 1, 36000 do
    if self:cmd("HGET", k.meta, "loaded") == "1" then return false end
    if self:cmd("SET", k.lock, self.token, "NX", "PX", LOCK_MS) then
      if self:cmd("HGET", k.meta, "loaded") == "1" then -- loaded while we asked
        self:cmd("DEL", k.lock)
        return false
      end
      self:cmd("DEL", k.meta, k.items, k.pending, k.leased, k.failed, k.keys, k.counts) -- a load that died
      return true
    end
    task.sleep(0.1)
  end
  opts.raise("pacer.job: gave up waiting for another process to load the input of job '%s'", self.name)
end

function Ledger:add(items)
  if #items == 0 then return end
  self:run("job_add", ADD, {self.k.items, self.k.pending, self.k.keys, self.k.counts}, cjson.encode(items))
  self:cmd("PEXPIRE", self.k.lock, LOCK_MS) -- still loading
end

function Ledger:finish_load(meta)
  meta.loaded = 1
  self:set_meta(meta)
  self:cmd("DEL", self.k.lock)
end

function Ledger.recover() end -- expired leases come back in take()

function Ledger:retry_failed()
  for _ = 1, math.huge do
    if self:run("job_retry", RETRY, {self.k.items, self.k.pending, self.k.failed, self.k.counts}, 1000) == 0 then
      return
    end
  end
end

function Ledger:take(n)
  local r = self:run("job_take", TAKE, {self.k.items, self.k.pending, self.k.leased, self.k.counts}, n,
    self.lease_ms, self.token)
  local items = {}
  for i = 1, #r[1], 2 do
    local rec = cjson.decode(r[1][i + 1])
    items[#items + 1] = {seq = math.tointeger(tonumber(r[1][i])), key = rec.k, line = int(rec.l), row = rec.r,
      attempts = int(rec.a), failures = int(rec.f)}
  end
  return items, r[2]
end

local function finish(self, list, how)
  if #list == 0 then return end
  local out = {}
  for i, o in ipairs(list) do
    out[i] = {seq = o.item.seq, state = o.state, result = o.result, reason = o.reason}
  end
  self:run("job_finish", FINISH, {self.k.items, self.k.pending, self.k.leased, self.k.counts, self.k.failed},
    self.token, cjson.encode(out), how)
end

function Ledger:finish(list) finish(self, list, "") end

function Ledger:release(items)
  local list = {}
  for i, it in ipairs(items) do list[i] = {item = it, state = "pending"} end
  finish(self, list, "release")
end

function Ledger:renew(items)
  if #items == 0 then return end
  local seqs = {}
  for i, it in ipairs(items) do seqs[i] = it.seq end
  self:run("job_renew", RENEW, {self.k.items, self.k.leased}, self.lease_ms, self.token, table.unpack(seqs))
end

function Ledger:counts()
  local c = {total = 0, pending = 0, leased = 0, done = 0, failed = 0, invalid = 0, duplicate = 0}
  for k, v in pairs(hash_table(self:cmd("HGETALL", self.k.counts))) do
    c[k] = tonumber(v)
    c.total = c.total + c[k]
  end
  return c
end

function Ledger:outcomes(after, n)
  n = math.min(n, 250) -- a call takes at most 255 arguments
  local args = {"HMGET", self.k.items}
  for i = 1, n do args[#args + 1] = after + i end
  local out = {}
  for i, raw in ipairs(self:cmd(table.unpack(args))) do
    if not raw then break end
    local rec = cjson.decode(raw)
    out[#out + 1] = {seq = after + i, key = rec.k, line = int(rec.l), state = rec.s, attempts = int(rec.a),
      reason = rec.x, result = rec.v}
  end
  return out
end

function Ledger:close() self.conn:close() end

-- The names of the jobs kept at url (for `pacer job status redis://...`).
function M.names(url)
  local host, port = redis_conn.parse_url(url, "pacer job")
  local c = redis_conn.new(host, port, "pacer job")
  local names, cursor = {}, "0"
  for _ = 1, 10000 do
    local r = c:waiting(function(x) return x:call("SCAN", cursor, "MATCH", "pacer:job:*:meta", "COUNT", 1000) end)
    cursor = r[1]
    for _, key in ipairs(r[2]) do names[#names + 1] = key:match("^pacer:job:(.*):meta$") end
    if cursor == "0" then break end
  end
  c:close()
  table.sort(names)
  return names
end

return M
