-- pacer.policy.keys: a pool of API keys. Each key has its own limiter and quota; a request goes
-- out on a key that can send now (the one with most quota left), or waits for the
-- soonest. A key answered 401/403 is retired. Keys are named key#1, key#2... in
-- everything pacer prints; their values only ever go into the request header.
local new_limiter = require "pacer.c.limiter"
local task = require "pacer.c.task"

local M = {}

local Pool = {}
Pool.__index = Pool

-- keys: list of strings; o: {rate=, rules=, burst=, header="Authorization", prefix="Bearer "}
function M.new(keys, o)
  local self = setmetatable({keys = {}, header = o.header or "Authorization",
    prefix = o.prefix, retired = 0, max_pause = o.max_pause or 300}, Pool)
  if self.prefix == nil then self.prefix = self.header:lower() == "authorization" and "Bearer " or "" end
  if not self.header:match("^[!#$%%&'*+%-.^_`|~%w]+$") then
    error(string.format("pacer.client: invalid key_header %q (header injection?)", self.header), 0)
  end
  if self.prefix:find("[\r\n%z]") then
    error("pacer.client: key_prefix contains CR, LF or NUL (header injection?)", 0)
  end
  for i, value in ipairs(keys) do
    if type(value) ~= "string" or value == "" or value:find("[\r\n%z]") then
      error(string.format("pacer.client: keys[%d] must be a non-empty string without CR/LF", i), 0)
    end
    local lim
    if o.rate or o.rules then lim = new_limiter{rate = o.rate, rules = o.rules, burst = o.burst} end
    self.keys[i] = {id = "key#" .. i, value = value, limiter = lim, paused_until = 0, sent = 0}
  end
  if #self.keys == 0 then error("pacer.client: 'keys' must hold at least one key", 0) end
  return self
end

local function left(k)
  local q = k.quota
  return q and q.remaining or math.huge
end

-- Picks a key and takes a slot on it; waits when none can send. Returns key, waited.
function Pool:acquire()
  local t0 = task.now()
  for _ = 1, 1e6 do
    local now, ready, soonest = task.now(), {}, math.huge
    for _, k in ipairs(self.keys) do
      if not k.retired then
        if k.paused_until > now then
          soonest = math.min(soonest, k.paused_until - now)
        else
          ready[#ready + 1] = k
        end
      end
    end
    if #ready == 0 and soonest == math.huge then
      error("pacer.client: every key of the pool has been retired (401/403)", 0)
    end
    table.sort(ready, function(a, b)
      if left(a) ~= left(b) then return left(a) > left(b) end
      return a.sent < b.sent
    end)
    for _, k in ipairs(ready) do
      local ok, wait = true, nil
      if k.limiter then ok, wait = k.limiter:try_acquire() end
      if ok then
        k.sent = k.sent + 1
        return k, task.now() - t0
      end
      soonest = math.min(soonest, wait)
    end
    task.sleep(soonest)
  end
end

function Pool:header_line(k) return self.header .. ": " .. self.prefix .. k.value end

-- After an answer on key k. Returns "retired" when this answer retired it.
function Pool:observe(k, res)
  if not res then return nil end
  if res.quota then k.quota = res.quota end
  local now = task.now()
  if res.status == 401 or res.status == 403 then
    if not k.retired then
      k.retired = true
      self.retired = self.retired + 1
      return "retired"
    end
    return nil
  end
  -- server-given waits, clamped to max_pause: a hostile answer must not retire a key for years
  local ra = res.status == 429 and res.retry_after
  if ra then k.paused_until = math.max(k.paused_until, now + math.min(ra, self.max_pause)) end
  local q = res.quota
  if q and q.remaining == 0 and q.reset then
    k.paused_until = math.max(k.paused_until, now + math.min(q.reset, self.max_pause))
  end
end

-- {["key#1"] = {remaining=, limit=, retired=, sent=}, ...}
function Pool:summary()
  local out = {}
  for _, k in ipairs(self.keys) do
    out[k.id] = {remaining = k.quota and k.quota.remaining, limit = k.quota and k.quota.limit,
      retired = k.retired == true, sent = k.sent}
  end
  return out
end

return M
