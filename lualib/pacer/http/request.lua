-- pacer.request: one logical request: build it, then attempt, pace, retry until it
-- succeeds, fails for good, or the policy gives up. Clients call send() with their
-- limiter, semaphore and stats.
local crypto = require "pacer.c.crypto"
local cjson = require "cjson"
local errors = require "pacer.errors"
local corelib = require "pacer.c.corelib"
local http = require "pacer.c.http"
local log = require "pacer.log"
local task = require "pacer.c.task"
local opts = require "pacer.opts"
local response = require "pacer.response"
local retry = require "pacer.retry"
local stats = require "pacer.stats"
local url = require "pacer.url"

local M = {}

M.SPEC = {
  method = "string", url = "string", headers = "table", query = {"table", "string"},
  json = "any", body = "string", form = "table", timeout = "duration",
  connect_timeout = "duration", limiter = {"userdata", "table"}, retry = {"table", "boolean"},
  follow = {"boolean", "integer"}, verify = "boolean", max_body = "integer",
  idempotency_key = "string",
}

local SAFE = {GET = true, HEAD = true, OPTIONS = true, TRACE = true, PUT = true, DELETE = true}

local function check_header(where, name, value)
  local tn, tv = type(name), type(value)
  if (tn ~= "string" and tn ~= "number") or (tv ~= "string" and tv ~= "number" and tv ~= "boolean") then
    opts.raise("%s: header %s must be a string or number, got %s", where, tostring(name), tv)
  end
  name = tostring(name)
  if not name:match("^[!#$%%&'*+%-.^_`|~%w]+$") then
    opts.raise("%s: invalid header name %q (header injection?)", where, name)
  end
  value = tostring(value)
  if value:find("[\r\n%z]") then
    opts.raise("%s: header '%s' contains CR, LF or NUL (header injection?)", where, name)
  end
  return name, value
end
M.check_header = check_header

-- Builds the wire request from options o, with client defaults `base` (may be nil).
-- Returns {method, url, headers = {"Name: value"}, hdr = {lower = value}, body, ...}.
function M.prepare(where, o, base)
  base = base or {}
  if o.url == nil then opts.raise("%s: option 'url' is required", where) end
  local r = {method = (o.method or "GET"):upper()}
  if not r.method:match("^[A-Z]+$") then opts.raise("%s: invalid method %q", where, o.method) end
  r.url = url.join(base.base_url, o.url)
  if r.url:find("%z") then opts.raise("%s: invalid URL '%s': it contains a NUL byte", where, url.redact((r.url:gsub("%z", "\\0")))) end
  if o.query then r.url = url.add_query(r.url, o.query) end
  local n = (o.json ~= nil and 1 or 0) + (o.form ~= nil and 1 or 0) + (o.body ~= nil and 1 or 0)
  if n > 1 then opts.raise("%s: give only one of 'json', 'form' and 'body'", where) end

  local hdr, order = {}, {}
  local function add(k, v)
    local name, value = check_header(where, k, v)
    local lk = name:lower()
    if hdr[lk] == nil then order[#order + 1] = name end
    hdr[lk] = value
    order[lk] = name
  end
  for k, v in pairs(base.headers or {}) do add(k, v) end
  for k, v in pairs(o.headers or {}) do add(k, v) end
  if o.json ~= nil then
    local ok, body = pcall(cjson.encode, o.json)
    if not ok then opts.raise("%s: cannot encode 'json': %s", where, body) end
    r.body = body
    if not hdr["content-type"] then add("Content-Type", "application/json") end
  elseif o.form then
    r.body = url.query(o.form)
    if not hdr["content-type"] then add("Content-Type", "application/x-www-form-urlencoded") end
  else
    r.body = o.body
    -- say what raw bytes are, rather than let libcurl call them a form
    if r.body and not hdr["content-type"] then add("Content-Type", "application/octet-stream") end
  end
  if o.idempotency_key then add("Idempotency-Key", o.idempotency_key) end
  if base.idempotency and not SAFE[r.method] and not hdr["idempotency-key"] then
    add("Idempotency-Key", crypto.random_hex(16)) -- one per logical request, kept across retries
  end
  if not hdr["accept"] then add("Accept", "application/json, */*;q=0.5") end
  r.headers, r.hdr = {}, hdr
  for i, name in ipairs(order) do r.headers[i] = order[name:lower()] .. ": " .. hdr[name:lower()] end

  local function dur(k)
    local v = o[k]
    if v == nil then v = base[k] end
    if v == nil then return nil end
    local ok, s = pcall(corelib.parse_duration, v)
    if not ok then opts.raise("%s: option '%s': %s", where, k, s) end
    if s <= 0 then opts.raise("%s: option '%s' must be greater than 0", where, k) end
    return s
  end
  r.timeout, r.connect_timeout = dur("timeout") or 30, dur("connect_timeout") or 10
  local follow = o.follow
  if follow == nil then follow = base.follow end
  r.follow = follow == true and 10 or follow or 0
  if o.verify ~= nil then r.verify = o.verify else r.verify = base.verify end
  if r.verify == false and r.url:find("^[Hh][Tt][Tt][Pp][Ss]:") then
    log.warn("TLS verification is off for %s", url.redact(r.url))
  end
  r.max_body = o.max_body or base.max_body
  r.idempotent = SAFE[r.method] or hdr["idempotency-key"] ~= nil
  return r
end

local function call_hook(fn, info)
  if fn then fn(info) end
end

-- Sends r with retries. ctx: {policy=, semaphore=, limiter= | gate=fn(r, attempt) ->
-- waited, extra header lines, token; observe=fn(r, res, err, token) -> again; sinks=
-- {stats...}; rate=fn; on_retry=, on_giveup=}. Returns res or nil, err.
function M.send(r, ctx)
  local p = ctx.policy
  local sinks = ctx.sinks
  local started = task.now()
  local attempt, wait, prev_delay = 0, 0, nil
  local idempotent = r.idempotent or (p and p.unsafe)
  while true do
    attempt = attempt + 1
    if ctx.semaphore then ctx.semaphore:acquire() end
    -- the gate paces this attempt (limiters, pauses, key choice); it may add headers
    local ok, paced, extra, token = true, 0, nil, nil
    if ctx.gate then
      ok, paced, extra, token = pcall(ctx.gate, r, attempt)
    elseif ctx.limiter then
      ok, paced = pcall(ctx.limiter.acquire, ctx.limiter)
    end
    if not ok then
      if ctx.semaphore then ctx.semaphore:release() end
      error(paced, 0)
    end
    stats.waited(sinks, paced)
    local wire = r
    if r.conditional or extra then -- on this attempt only: cache validators, a key
      wire = setmetatable({headers = {table.unpack(r.headers)}}, {__index = r})
      for k, v in pairs(r.conditional or {}) do wire.headers[#wire.headers + 1] = k .. ": " .. v end
      for _, line in ipairs(extra or {}) do wire.headers[#wire.headers + 1] = line end
    end
    local status, headers, body, info = http.request(wire)
    if ctx.semaphore then ctx.semaphore:release() end
    local res, err
    if status then
      res = response.new(r, status, headers, body, info, attempt)
    else
      err = headers
      if err.kind == "url" then
        if ctx.observe then ctx.observe(r, nil, err, token) end
        opts.raise("pacer.request: invalid URL '%s': %s", url.redact(r.url), err.message)
      end
      err.url, err.method, err.attempts = url.redact(r.url), r.method, attempt
      err.message = string.format("%s %s: %s", r.method, err.url, err.message)
      errors.new(err)
    end
    -- the observer learns from the answer (quota, 429s, breaker, alerts); it may ask
    -- for the attempt to be made again at once (a retired key: another key will do)
    local again = ctx.observe and ctx.observe(r, res, err, token)
    stats.attempt(sinks, r, attempt, status, err, wait + paced, res and res.elapsed or err.elapsed,
      res and res.quota, ctx.rate and ctx.rate())
    local elapsed = task.now() - started
    local delay, why
    if again and attempt < (p and p.max_tries or 1) + (ctx.again_budget or 0) then
      delay = 0
    elseif p then
      delay, why = retry.decide(p, res, err, attempt, elapsed, idempotent, {previous = prev_delay})
    end
    local info_t = {attempt = attempt, elapsed = elapsed, response = res, err = err, delay = delay}
    if delay == nil then
      local ok = res ~= nil and res.status < 400
      stats.finished(sinks, ok)
      if ok and p then call_hook(p.on_success, info_t) end
      if res then return res end
      return nil, err
    elseif delay == false then
      stats.finished(sinks, false)
      info_t.reason = why
      if p then call_hook(p.on_giveup, info_t) end
      if ctx.on_giveup then ctx.on_giveup(info_t) end
      if err then
        err.gave_up = why
        return nil, err
      end
      return nil, errors.new{kind = "gave_up", reason = why, status = res.status, last = res, attempts = attempt,
        message = string.format("%s %s: gave up after %d attempt%s (last: HTTP %d): %s", r.method,
          url.redact(r.url), attempt, attempt == 1 and "" or "s", res.status, why)}
    end
    if p then call_hook(p.on_retry, info_t) end -- (no policy: a retired key's resend)
    if ctx.on_retry then ctx.on_retry(info_t) end
    if log.enabled("info") then
      log.info("retry %d/%d of %s %s in %.3gs after %s", attempt, (p and p.max_tries or 1) - 1, r.method,
        url.redact(r.url), delay, res and ("HTTP " .. res.status) or err.kind)
    end
    prev_delay, wait = delay, delay
    if delay > 0 then task.sleep(delay) end
  end
end

-- pacer.request{...}: a request on its own (no client): retries by default.
function M.request(o)
  opts.check("pacer.request", o, M.SPEC)
  local r = M.prepare("pacer.request", o)
  return M.send(r, {policy = retry.policy(o.retry, "pacer.request"), limiter = o.limiter,
    sinks = {stats.run}})
end

return M
