-- pacer.client: a base URL with its policies: pacing (limiter), concurrency, retry,
-- idempotency keys, default headers and timeouts; stats and the latest quota seen.
local httpcache = require "pacer.httpcache"
local response = require "pacer.response"
local new_limiter = require "pacer.c.limiter"
local opts = require "pacer.opts"
local request = require "pacer.request"
local retry = require "pacer.retry"
local stats = require "pacer.stats"
local sync = require "pacer.sync"
local task = require "pacer.c.task"

local M = {}

local SPEC = {
  base_url = "string", headers = "table", rate = "rate", rules = "table", burst = "integer",
  concurrency = "integer", limiter = {"userdata", "table"}, retry = {"table", "boolean"},
  idempotency = "boolean", timeout = "duration", connect_timeout = "duration",
  follow = {"boolean", "integer"}, verify = "boolean", max_body = "integer", name = "string",
  cache = {"table", "boolean"},
}
-- in API.md, built by later work; refused by name rather than silently ignored
local LATER = {adaptive = true, target = true, keys = true, alerts = true, groups = true}

local REQ_SPEC = {
  headers = "table", query = {"table", "string"}, json = "any", body = "string", form = "table",
  timeout = "duration", connect_timeout = "duration", retry = {"table", "boolean"},
  follow = {"boolean", "integer"}, verify = "boolean", max_body = "integer",
  idempotency_key = "string",
}

local Client = {}
Client.__index = Client

function M.new(o)
  opts.check("pacer.client", o, SPEC, LATER)
  local self = setmetatable({}, Client)
  self.name = o.name or o.base_url or "client"
  self.defaults = {base_url = o.base_url, headers = o.headers, timeout = o.timeout,
    connect_timeout = o.connect_timeout, follow = o.follow, verify = o.verify,
    max_body = o.max_body, idempotency = o.idempotency}
  if o.limiter and (o.rate or o.rules) then
    opts.raise("pacer.client: give 'limiter' or 'rate'/'rules', not both")
  end
  if o.limiter then
    self.limiter = o.limiter
  elseif o.rate or o.rules then
    local ok, lim = pcall(new_limiter, {rate = o.rate, rules = o.rules, burst = o.burst})
    if not ok then opts.raise("%s", (lim:gsub("^pacer%.limiter", "pacer.client"))) end
    self.limiter = lim
  end
  if self.limiter and self.limiter.state then
    self.rate = self.limiter:state().rate
    table.insert(stats.run.rates, self.rate)
  end
  local conc = o.concurrency or 64
  if conc < 1 then opts.raise("pacer.client: 'concurrency' must be >= 1, got %d", conc) end
  self.semaphore = sync.semaphore(conc)
  self.policy = retry.policy(o.retry, "pacer.client")
  if o.cache then self.cache = httpcache.new(o.cache) end
  stats.run.clients[self] = true
  self.counters = stats.new()
  self.sinks = {self.counters, stats.run}
  self.on_response = function(res)
    if res.quota then
      self.last_quota = res.quota
      self.last_quota_at = task.now()
    end
  end
  return self
end

-- api:request(method, path [, opts]) or api:request{method=, url=|path=, ...}
function Client:request(method, path, ro)
  if type(method) == "table" then
    ro = {}
    for k, v in pairs(method) do ro[k] = v end
    method, path = ro.method or "GET", ro.url or ro.path
    ro.method, ro.url, ro.path = nil, nil, nil
  end
  ro = ro or {}
  if type(path) ~= "string" then opts.raise("api:request: expected a path string, got %s", type(path)) end
  local where = "api:" .. method:lower()
  opts.check(where, ro, REQ_SPEC)
  local o = {method = method, url = path}
  for k, v in pairs(ro) do o[k] = v end
  local r = request.prepare(where, o, self.defaults)
  local policy = self.policy
  if ro.retry ~= nil then policy = retry.policy(ro.retry, where) end
  local hc, entry = self.cache, nil
  if hc then
    local fresh
    entry, fresh = hc:before(r)
    if fresh then
      stats.cache_hit(self.sinks)
      return response.cached(r, entry)
    end
    if r.method == "GET" then stats.cache_miss(self.sinks, entry ~= nil) end
  end
  local res, err = request.send(r, {policy = policy, limiter = self.limiter, semaphore = self.semaphore,
    sinks = self.sinks, on_response = self.on_response, rate = self.rate})
  if hc and res then
    local revalidated = hc:after(r, path, res, entry)
    if revalidated then
      local cached = response.cached(r, revalidated, res)
      cached.revalidated = true
      return cached
    end
  end
  return res, err
end

for _, m in ipairs{"get", "post", "put", "patch", "delete", "head"} do
  local method = m:upper()
  Client[m] = function(self, path, ro) return self:request(method, path, ro) end
end

function Client:stats() return stats.copy(self.counters) end

-- The latest quota the API reported, with reset counted down from when it was seen.
function Client:quota()
  local q = self.last_quota
  if not q then return nil end
  local c = {}
  for k, v in pairs(q) do c[k] = v end
  if c.reset then c.reset = math.max(0, c.reset - (task.now() - self.last_quota_at)) end
  return c
end

function Client:__tostring()
  return string.format("<pacer.client %s>", self.name)
end

M.Client = Client
return M
