-- pacer.policy.partition: one adaptive pace per quota partition of a client. An API may
-- split its capacity by user, application or resource and say, with the IETF fields'
-- pk (partition key), which partition a request was counted in. The script says which
-- partition a request will fall in with `partition = function(req) -> string | nil`;
-- requests of one partition share a limiter learnt from the answers of that partition,
-- and do not slow the others down.
-- Routing of one answer's policies (res.quota.policies, or res.quota itself):
--   the request had no partition (no function, or it gave nil)  -> the default partition
--   a policy with no pk, or with the request's own pk          -> the request's partition
--   a policy with another pk                                   -> that partition (warned
--     once: the function should return what the server's pk holds)
-- The default partition is the client's own adaptive pace (policy/adaptive.lua).
-- Until its first answer, a new partition sends one request at a time: its quota is not
-- known yet, and `concurrency` requests at once would overrun a small one.
-- Partitions are named partition#1, #2... in logs: a key may hold an account or a token.
local adaptive = require "pacer.policy.adaptive"
local log = require "pacer.base.log"
local new_limiter = require "pacer.c.limiter"
local opts = require "pacer.base.options"
local semaphore = require "pacer.base.semaphore"
local task = require "pacer.c.task"

local M = {}

-- At most this many partitions per client: a hostile or buggy server naming a new pk in
-- every answer must not grow memory without end. The least recently used one that has
-- nothing in flight is forgotten (it starts again from "no limit known").
M.MAX = 1000

local Parts = {}
Parts.__index = Parts

-- o: {fn = partition function, client = name, declared = rate or nil, target =,
--     max_pause =, default = the client's adaptive, default_inflight = fn() -> n}
function M.new(o)
  return setmetatable({fn = o.fn, name = o.client, declared = o.declared, target = o.target,
    max_pause = o.max_pause, default = o.default, default_inflight = o.default_inflight, parts = {},
    count = 0, ids = 0, warned = {}}, Parts)
end

-- The request's partition: the function's answer for {method=, url=, path=, headers=,
-- query=, json=, form=, body=}, or nil (the default partition). Raises in `where`'s
-- name when the function fails or answers something else than a string or nil.
function Parts:of(where, view)
  local ok, p = pcall(self.fn, view)
  if not ok then opts.raise("%s: the client's partition function failed: %s", where, tostring(p)) end
  if p ~= nil and type(p) ~= "string" then
    opts.raise("%s: the client's partition function must return a string or nil, got %s", where, type(p))
  end
  return p
end

local function sent_last_second(part)
  local now, n = task.now(), 0
  for _, t in pairs(part.sends) do if now - t <= 1 then n = n + 1 end end
  return n
end

-- Forgets the least recently used partition with nothing in flight.
function Parts:evict()
  local oldest
  for _, part in pairs(self.parts) do
    local busy = part.inflight > 0 or (part.gate and (part.gate.permits == 0 or part.gate:queued() > 0))
    if not busy and (not oldest or part.used < oldest.used) then oldest = part end
  end
  if not oldest then return end
  self.parts[oldest.key] = nil
  self.count = self.count - 1
  if not self.warned.evict then
    self.warned.evict = true
    log.warn("%s: more than %d quota partitions; the least recently used are forgotten", self.name, M.MAX)
  end
end

-- The partition named `key`, made at first use.
function Parts:get(key)
  local part = self.parts[key]
  if not part then
    if self.count >= M.MAX then self:evict() end
    self.ids = self.ids + 1
    local id = "partition#" .. self.ids
    part = {key = key, id = id, inflight = 0, sent = 0, sends = {}, nsends = 0}
    -- made as answers come: in another order in each worker, so not shared between them
    local lim = new_limiter{rate = adaptive.UNKNOWN, shared = false}
    part.adaptive = adaptive.new{limiter = lim, declared = self.declared,
      target = self.target, max_pause = self.max_pause, name = self.name .. " " .. id,
      achieved = function() return sent_last_second(part) end}
    self.parts[key] = part
    self.count = self.count + 1
  end
  part.used = task.now()
  return part
end

-- The adaptive pace of a request's partition (key nil: the default).
function Parts:adaptive(key)
  if key == nil then return self.default end
  return self:get(key).adaptive
end

-- Before an attempt: until partition `key` has had an answer, one request at a time
-- (token.gate: the permit this one holds, given back by done()).
function Parts:probe(key, token)
  if key == nil then return end
  local part = self:get(key)
  if part.learned then return end
  part.gate = part.gate or semaphore.semaphore(1)
  part.gate:acquire()
  if part.learned then
    part.gate:release()
  else
    token.gate = part.gate
  end
end

-- Gives back the probe's permit (after observe(), so the next one sees what it learnt).
function M.done(token)
  if token.gate then
    token.gate:release()
    token.gate = nil
  end
end

-- An attempt of partition `key` goes out.
function Parts:sent(key)
  if key == nil then return end
  local part = self:get(key)
  part.inflight, part.sent, part.nsends = part.inflight + 1, part.sent + 1, part.nsends + 1
  part.sends[(part.nsends - 1) % 64 + 1] = task.now()
end

-- The answer (or failure) of an attempt of partition `key`: its policies go where the
-- header above says, the status (429, Retry-After) to the request's own partition.
function Parts:observe(key, res)
  if key == nil then -- the default partition learns from everything it is told
    self.default:observe(res, self.default_inflight())
    return
  end
  local part = self:get(key)
  part.inflight = part.inflight - 1
  if not res then return end
  part.learned = true
  local mine, others = {}, {}
  local q = res.quota
  for _, p in ipairs(q and (q.policies or {q}) or {}) do
    local to = p.partition
    if to == nil or to == key then
      mine[#mine + 1] = p
    else
      others[to] = others[to] or {}
      table.insert(others[to], p)
    end
  end
  for to, policies in pairs(others) do
    local other = self:get(to)
    if not self.warned[key] and #mine == 0 then
      self.warned[key] = true
      log.warn("%s: a request of %s was counted by the server in another partition (%s, from its pk); " ..
        "the partition function should return what the server's pk holds", self.name, part.id, other.id)
    end
    if not res.headers["retry-after"] then other.adaptive:learn(policies, other.inflight) end
  end
  part.adaptive:observe(res, part.inflight, q and mine or nil)
end

-- {[key] = {id=, rate=, sent=, inflight=, remaining=, limit=}} of every partition.
function Parts:summary()
  local out = {}
  for key, part in pairs(self.parts) do
    local a = part.adaptive
    out[key] = {id = part.id, rate = a.lim:state().rate, sent = part.sent, inflight = part.inflight,
      paused = a:pause_left() > 0 or nil}
  end
  return out
end

return M
