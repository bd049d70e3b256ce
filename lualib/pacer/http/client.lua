-- pacer.http.client: a base URL with its policies: pacing (limiter, adaptive, groups, key
-- pool), concurrency, retry, circuit breaker, time window, idempotency keys, HTTP cache,
-- alerts; stats and the latest quota seen. Each policy lives in its own module; this
-- file wires them into the attempt loop's hooks, before_attempt and after_attempt.
local adaptive = require "pacer.policy.adaptive"
local auth = require "pacer.auth"
local context = require "pacer.base.context"
local alert = require "pacer.run.alert"
local breaker = require "pacer.policy.breaker"
local httpcache = require "pacer.http.cache"
local keys = require "pacer.policy.keys"
local limiter = require "pacer.limiter"
local log = require "pacer.base.log"
local opts = require "pacer.base.options"
local partition = require "pacer.policy.partition"
local attempt = require "pacer.http.attempt"
local request = require "pacer.http.request"
local response = require "pacer.http.response"
local retry = require "pacer.policy.retry"
local window = require "pacer.policy.window"
local stats = require "pacer.run.stats"
local semaphore = require "pacer.base.semaphore"
local task = require "pacer.c.task"
local url = require "pacer.base.url"

local M = {}

local NO_OPTIONS = {} -- a request's options when none were given

local SPEC = {
  base_url = "string", headers = "table", rate = "rate", rules = "table", burst = "integer",
  concurrency = "integer", limiter = {"userdata", "table"}, retry = {"table", "boolean"},
  idempotency = {"boolean", "function"}, timeout = "duration", connect_timeout = "duration",
  follow = {"boolean", "integer", "table"}, verify = "boolean", max_body = "integer", name = "string",
  cache = {"table", "boolean"}, adaptive = "boolean", target = "number", keys = "table",
  key_header = "string", key_prefix = "string", groups = "table", alerts = "table",
  breaker = {"table", "boolean"}, window = "string", state = "string",
  auth = "table", cost = {"integer", "function"}, priority = "integer", max_wait = "duration",
  partition = "function",
}

local REQ_SPEC = {
  headers = "table", query = {"table", "string"}, json = "any", body = "string", form = "table",
  timeout = "duration", connect_timeout = "duration", retry = {"table", "boolean"},
  follow = {"boolean", "integer", "table"}, verify = "boolean", max_body = "integer",
  idempotency_key = "string", auth = "table", cost = "integer", priority = "integer", max_wait = "duration",
}

local Client = {}
Client.__index = Client

-- "api:get" and the like, the `where` of messages, made once per method (not per request)
local WHERE = {}

-- groups = {search = "30/min"} (paths under /search) or
-- {search = {match = "^/search/", rate = "30/min", burst = 1}}
local function compile_groups(groups)
  local out = {}
  for name, g in pairs(groups) do
    if type(g) ~= "table" then g = {rate = g} end
    local match = g.match or ("^/" .. tostring(name):gsub("%p", "%%%0"))
    out[#out + 1] = {name = name, match = match,
      limiter = limiter.memory({rate = g.rate, rules = g.rules, burst = g.burst}, "pacer.client")}
  end
  table.sort(out, function(a, b) return tostring(a.name) < tostring(b.name) end)
  return out
end

-- The client's pacing: a key pool, a given limiter, or one made from rate/rules.
local function setup_pacing(self, o)
  if o.limiter and (o.rate or o.rules) then
    opts.raise("pacer.client: give 'limiter' or 'rate'/'rules', not both")
  end
  if o.state and not (o.rate or o.rules) then
    opts.raise("pacer.client: 'state' keeps the schedule of a declared 'rate' or 'rules'")
  end
  if o.keys then -- rate/rules/burst are per key
    local ok, pool = pcall(keys.new, o.keys, {rate = o.rate, rules = o.rules, burst = o.burst,
      header = o.key_header, prefix = o.key_prefix, max_pause = self.max_pause})
    if not ok then opts.raise("%s", pool) end
    self.keys = pool
    self.limiter = o.limiter
  elseif o.limiter then
    self.limiter = o.limiter
  elseif o.rate or o.rules then
    self.limiter = limiter.memory({rate = o.rate, rules = o.rules, burst = o.burst}, "pacer.client")
    if o.state then -- the schedule outlives the process (keyed by the client's name)
      self.limiter = require("pacer.limiter.sqlite").wrap(self.limiter, o.state, self.name)
    end
  end
  if self.limiter and self.limiter.state and not o.keys then
    local st = self.limiter:state()
    table.insert(stats.run.rates, st.rate)
    -- a limiter of each worker's own (shared = false): the run's rate is N times it
    stats.run.per_worker[#stats.run.rates] = st.shared == false or nil
  end
  if o.adaptive and o.keys then
    opts.raise("pacer.client: adaptive = true does not go with keys: each key already follows its own quota")
  end
  if o.adaptive then
    self.limiter = self.limiter or limiter.memory({rate = adaptive.UNKNOWN}, "pacer.client")
    local declared = (o.rate or o.rules or o.limiter) and self.limiter:state().rate or nil
    if o.target and not (o.target > 0 and o.target <= 1) then
      opts.raise("pacer.client: 'target' must be in (0, 1], got %g", o.target)
    end
    self.adaptive = adaptive.new{limiter = self.limiter, declared = declared, target = o.target,
      achieved = function() return self:achieved() end, max_pause = self.max_pause, name = self.name}
    if o.partition then
      self.default_inflight = 0
      self.parts = partition.new{fn = o.partition, client = self.name, declared = declared, target = o.target,
        max_pause = self.max_pause, default = self.adaptive,
        default_inflight = function() return self.default_inflight end}
    end
  elseif o.target then
    opts.raise("pacer.client: 'target' goes with adaptive = true")
  elseif o.partition then
    opts.raise("pacer.client: 'partition' goes with adaptive = true: a partition's pace is learnt from the " ..
      "server's quota headers")
  end
  if o.groups then self.groups = compile_groups(o.groups) end
  if o.priority then self.priority = M.check_priority("pacer.client", o.priority) end
  self.cost, self.max_wait = o.cost, o.max_wait
end

function M.check_priority(where, p)
  if p < 1 or p > 9 then opts.raise("%s: 'priority' must be 1..9 (1 goes first), got %d", where, p) end
  return p
end

-- The other policies: breaker, window, alerts, concurrency, retry, HTTP cache.
local function setup_policies(self, o)
  if o.breaker then self.breaker = breaker.new(o.breaker) end
  if o.window then self.window = window.new(o.window) end
  self.alerts = {}
  for i, a in ipairs(o.alerts or {}) do
    if not alert.is_alert(a) then opts.raise("pacer.client: alerts[%d] is not a pacer.alert", i) end
    self.alerts[i] = a
  end
  local conc = o.concurrency or 64
  if conc < 1 then opts.raise("pacer.client: 'concurrency' must be >= 1, got %d", conc) end
  self.semaphore = semaphore.semaphore(conc)
  if o.cache then self.cache = httpcache.new(o.cache) end
end

function M.new(o)
  o = opts.check("pacer.client", o, SPEC)
  local self = setmetatable({}, Client)
  self.name = o.name or (o.base_url and url.redact(o.base_url)) or "client"
  self.defaults = {base_url = o.base_url, headers = o.headers, timeout = o.timeout,
    connect_timeout = o.connect_timeout, follow = o.follow, verify = o.verify,
    max_body = o.max_body, idempotency = o.idempotency}
  for _, k in ipairs{"timeout", "connect_timeout"} do -- checked now, not at the first request
    if o[k] ~= nil and o[k] <= 0 then opts.raise("pacer.client: option '%s' must be greater than 0", k) end
  end
  for k, v in pairs(o.headers or {}) do request.check_header("pacer.client", k, v) end
  self.policy = retry.policy(o.retry, "pacer.client")
  -- the longest wait a server may impose on this client (Retry-After, quota resets)
  local p = self.policy or retry.defaults
  self.max_pause = p.max_retry_after or p.max_time
  setup_pacing(self, o)
  setup_policies(self, o)
  self.sends, self.nsends, self.inflight = {}, 0, 0
  if o.auth then self.auth = auth.check("pacer.client", o.auth) end
  -- resends at once: a retired key's request goes out again; a 401 refreshes auth once
  self.again_budget = (self.keys and #self.keys.keys or 0) + 1
  stats.run.clients[self] = true
  self.counters = stats.new(stats.run) -- (counted for the run too)
  return self
end

function Client:event(name, info)
  info.client = self.name
  for _, a in ipairs(self.alerts) do a:event(name, info) end
end

-- Requests sent in the last second.
function Client:achieved()
  local now, n = task.now(), 0
  for _, t in pairs(self.sends) do if now - t <= 1 then n = n + 1 end end
  return n
end

function Client:rate()
  return self.limiter and self.limiter.state and self.limiter:state().rate or nil
end

-- The waits before one attempt, in order: the window, the breaker, an adaptive pause,
-- the request's path group (none of these holds a concurrency slot), then the slot,
-- then the key pool and the client's limiter, so that a grant goes to the wire at once.
-- Sets token.probe / token.slot as it takes them. Returns seconds waited, header lines.
function Client:pace(r, token, deadline)
  local waited = 0
  if self.window then waited = waited + self.window.wait() end
  if self.breaker then
    local w, probe = self.breaker:wait()
    waited, token.probe = waited + w, probe
  end
  -- the request's partition: its own adaptive pace and limiter (policy/partition.lua)
  local ad = self.parts and self.parts:adaptive(r.partition) or self.adaptive
  if self.parts then self.parts:probe(r.partition, token) end
  if ad then -- fail fast, not after a wait the request cannot afford
    local now = task.now()
    local refused, left = ad:refused(now), ad:pause_left(now)
    if refused then return false, refused end
    if left > 0 and deadline and now + left > deadline then
      return false, string.format("the server paused this client for %.3gs, past the request's max_time", left)
    end
    waited = waited + ad:wait(now)
  end
  -- the limiters' wait options (none made for a client with no limiter at all)
  local wo = (r.priority or r.max_wait) and {priority = r.priority, max_wait = r.max_wait}
  if self.groups then
    for _, g in ipairs(self.groups) do
      if (r.path or ""):find(g.match) then
        local w, late = g.limiter:acquire(math.min(r.cost, g.limiter:max_cost()), wo)
        if not w then return false, late end
        waited = waited + w
      end
    end
  end
  token.slot, token.slot_wait = true, self.semaphore:acquire()
  local extra
  if self.keys then
    local key, w = self.keys:acquire()
    waited, token.key, extra = waited + w, key, {self.keys:header_line(key)}
  end
  local lim = ad and ad.lim or self.limiter
  if lim then
    local cost = r.cost -- an adaptive limiter's burst is learnt, not declared: clamp to it
    if ad and lim.max_cost then cost = math.min(cost, lim:max_cost()) end
    local w, late = lim:acquire(cost, wo)
    if not w then return false, late end -- max_wait: refused at once, nothing taken
    waited, token.slot_at = waited + w, late -- (the slot it was granted)
  end
  if ad then -- the body's bytes, once the server counted in content-bytes
    local w, late = ad:acquire_units(r, wo, token)
    if not w then return false, late end
    waited = waited + w
  end
  token.adaptive = ad
  return waited, extra
end

-- The attempt loop's hook before an attempt (http/attempt.lua): every wait the
-- policies ask for. If one raises, what was taken is given back. Returns false, why
-- when the request cannot be sent before `deadline` (why: a reason, or an error table
-- of kind "deadline" for max_wait, "auth" when no credential could be had).
function Client:before_attempt(r, _, deadline)
  local token = {}
  local ok, waited, extra = pcall(self.pace, self, r, token, deadline)
  local a = r.auth or self.auth
  if ok and waited ~= false and a then -- computed per attempt, as late as possible
    local line, aerr = auth.line(a, r)
    if line then
      extra = extra or {}
      extra[#extra + 1] = line
    else
      waited, extra = false, aerr
    end
  end
  if not ok or waited == false then -- a raise, or no sending within the budget
    if token.slot then self.semaphore:release() end
    if token.probe then self.breaker:release_probe() end
    partition.done(token)
    if not ok then error(waited, 0) end
    return false, extra
  end
  self.inflight = self.inflight + 1
  if self.parts then
    if r.partition == nil then self.default_inflight = self.default_inflight + 1 end
    self.parts:sent(r.partition)
  end
  self.nsends = self.nsends + 1
  self.sends[(self.nsends - 1) % 64 + 1] = task.now()
  return waited, extra, token
end

-- The hook after an answer: frees the slot, then quota, pacing, breaker, key pool,
-- alerts. Returns true to make the attempt again at once (its key was retired).
function Client:after_attempt(r, res, err, token)
  self.semaphore:release()
  self.inflight = self.inflight - 1
  if res and res.quota then
    self.last_quota = res.quota
    self.last_quota_at = task.now()
  end
  if token.adaptive then token.adaptive:release_units(token) end
  if self.parts then
    if r.partition == nil then self.default_inflight = self.default_inflight - 1 end
    local ok, why = pcall(self.parts.observe, self.parts, r.partition, res)
    partition.done(token) -- even on a raise: a permit kept would stall the partition for good
    if not ok then error(why, 0) end
  elseif self.adaptive then
    self.adaptive:observe(res, self.inflight)
  end
  if res and res.quota_error and not self.warned_quota then -- the draft: ignore it; we also say so
    self.warned_quota = true
    log.warn("%s: the server's quota header was ignored: %s", self.name, res.quota_error)
  end
  if res and res.quota and res.quota.dropped and not self.warned_dropped then
    self.warned_dropped = true
    log.warn("%s: the server sent more quota policies than pacer reads (64 per header): %d not read",
      self.name, res.quota.dropped)
  end
  if self.breaker and err and err.kind == "url" then -- the caller's mistake, not the server's
    if token.probe then self.breaker:release_probe() end
  elseif self.breaker and self.breaker:record(not breaker.failed(res, err), token.probe) == "opened" then
    self:event("circuit_open", {message = string.format("%s: circuit open after %d failures, pausing %gs",
      self.name, self.breaker.fails, self.breaker.cooldown)})
  end
  local again
  if self.keys and self.keys:observe(token.key, res) == "retired" then
    self:event("key_retired", {key = token.key.id, message = string.format("%s: %s retired after HTTP %d",
      self.name, token.key.id, res.status)})
    again = true
  end
  local cred = r.auth or self.auth
  if res and res.status == 401 and cred and not r.auth_refreshed then -- one refresh and resend
    r.auth_refreshed = true
    if auth.refresh(cred, r) then again = true end
  end
  if res and res.status == 429 then
    self:event("throttled", {message = string.format("%s: throttled (429) on %s %s", self.name, r.method,
      url.redact(r.url))})
  end
  if res and res.quota and #self.alerts > 0 then
    local q = self:quota()
    for _, a in ipairs(self.alerts) do a:quota_seen(self.name, q) end
  end
  return again
end

-- The request's cost, priority, max_wait and auth (its own, the client's, the task's).
function Client:pacing_options(where, r, ro)
  local cost = ro.cost or context.get("cost")
  if cost == nil and type(self.cost) == "function" then
    cost = self.cost{method = r.method, url = r.url, path = r.path, json = ro.json, form = ro.form, body = ro.body,
      query = ro.query}
    if math.type(cost) ~= "integer" then
      opts.raise("%s: the client's cost function must return an integer, got %s", where, tostring(cost))
    end
  elseif cost == nil then
    cost = self.cost or 1
  end
  if cost < 1 then opts.raise("%s: 'cost' must be >= 1, got %d", where, cost) end
  local max = not self.adaptive and self.limiter and self.limiter.max_cost and self.limiter:max_cost()
  if max and cost > max then
    opts.raise("%s: a cost of %d is above the burst of %s's limiter (%d): it could never be sent; " ..
      "raise 'burst'", where, cost, self.name, max)
  end
  r.cost = cost
  if self.parts then
    r.partition = self.parts:of(where, {method = r.method, url = r.url, path = r.path, headers = ro.headers,
      query = ro.query, json = ro.json, form = ro.form, body = ro.body})
  end
  local p = ro.priority or self.priority or context.get("priority")
  r.priority = p and M.check_priority(where, p)
  r.max_wait = ro.max_wait or self.max_wait
  if ro.auth then r.auth = auth.check(where, ro.auth) end
end

function Client:gave_up(info)
  self:event("giveup", {message = string.format("%s: gave up: %s", self.name, info.reason or "?"),
    reason = info.reason})
end

-- api:request(method, path [, opts]) or api:request{method=, url=|path=, ...}
local function do_request(self, method, path, ro)
  if type(method) == "table" then
    ro = {}
    for k, v in pairs(method) do ro[k] = v end
    method, path = ro.method or "GET", ro.url or ro.path
    ro.method, ro.url, ro.path = nil, nil, nil
  end
  if type(path) ~= "string" then opts.raise("api:request: expected a path string, got %s", type(path)) end
  local where = WHERE[method] or "api:" .. method:lower()
  local o = {method = method, url = path}
  if ro ~= nil and (type(ro) ~= "table" or next(ro) ~= nil) then
    ro = opts.check(where, ro, REQ_SPEC)
    for k, v in pairs(ro) do o[k] = v end
  else
    ro = NO_OPTIONS -- (read only, never kept)
  end
  local r = request.prepare(where, o, self.defaults)
  r.path = path
  self:pacing_options(where, r, ro)
  local policy = self.policy
  if ro.retry ~= nil then policy = retry.policy(ro.retry, where) end
  local hc, entry = self.cache, nil
  if hc then
    local fresh
    entry, fresh = hc:before(r)
    if fresh then
      stats.cache_hit(self.counters)
      return response.cached(r, entry)
    end
    if r.method == "GET" then stats.cache_miss(self.counters, entry ~= nil) end
  end
  local res, err = attempt.send(r, self, policy)
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

function Client:stats()
  local s = stats.copy(self.counters)
  if self.limiter and self.limiter.state then s.rate = self.limiter:state().rate end
  if self.keys then s.keys = self.keys:summary() end
  if self.breaker then s.circuit = self.breaker.state end
  if self.parts then s.partitions = self.parts:summary() end
  return s
end

-- The latest quota the API reported, reset counted down from when it was seen, with
-- used (0..1) and exhausts_in: seconds until it runs out at the current pace (nil when
-- the reset comes first or nothing is being sent).
function Client:quota()
  local q = self.last_quota
  if not q then return nil end
  local c = {}
  for k, v in pairs(q) do c[k] = v end
  if c.reset then c.reset = math.max(0, c.reset - (task.now() - self.last_quota_at)) end
  local pace = self:achieved()
  if c.remaining and pace > 0 then
    local t = c.remaining / pace
    if not c.reset or t < c.reset then c.exhausts_in = t end
  end
  return c
end

-- The public methods check how they were called: api.get("/x") says to use api:get.
-- (Fixed arities, each straight to do_request: this is every request's path.)
local function misused(name) opts.raise("api.%s: call it as api:%s(...)", name, name) end

function Client:request(method, path, ro)
  if getmetatable(self) ~= Client then misused("request") end
  return do_request(self, method, path, ro)
end

for _, m in ipairs{"get", "post", "put", "patch", "delete", "head"} do
  local method = m:upper()
  WHERE[method] = "api:" .. m
  Client[m] = function(self, path, ro)
    if getmetatable(self) ~= Client then misused(m) end
    return do_request(self, method, path, ro)
  end
end

for _, name in ipairs{"stats", "quota"} do
  local method = Client[name]
  Client[name] = function(self)
    if getmetatable(self) ~= Client then misused(name) end
    return method(self)
  end
end

Client.__name = "pacer.client"

-- One line, as the REPL shows it: pacer.client http://127.0.0.1:8080/v2 (10/s, 3 requests)
function Client:__tostring()
  local rate = self:rate()
  local pace = self.keys and (#self.keys.keys .. " keys") or rate and string.format("%g/s", rate) or "unpaced"
  local n = self.counters.requests
  return string.format("pacer.client %s (%s, %d request%s)", self.name, pace, n, n == 1 and "" or "s")
end

M.Client = Client
return M
