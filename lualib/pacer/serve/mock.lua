-- pacer.serve.mock: a local API that throttles like a real one, for dry runs and tests.
-- Limit per window (GCRA with a burst of the whole window by default, or a fixed
-- window), RateLimit-* on every authenticated answer, 429 + Retry-After over the limit, injectable
-- failures, Idempotency-Key replay, and a record of every request it received.
local corelib = require "pacer.c.corelib"
local new_limiter = require "pacer.c.limiter"
local opts = require "pacer.base.options"
local serve = require "pacer.serve.listener"
local task = require "pacer.c.task"

-- One line, as the REPL shows it: pacer.mock http://127.0.0.1:8080 (50/s, 3 requests)
local Mock = {__name = "pacer.mock"}
function Mock.__tostring(m)
  return string.format("pacer.mock %s (%g/s, %d request%s)", m.url, m.rate, #m.requests, #m.requests == 1 and "" or "s")
end

local M = {}

local SPEC = {
  host = "string", port = "integer", rate = "rate", burst = "integer", mode = "string",
  fail = "number", fail_status = "table", latency = {"number", "string", "table"}, drop = "number",
  key = "string", retry_after = "string", numbers = "integer", max_batch = "integer",
  headers = "boolean",
}

local function probability(name, v)
  if v == nil then return 0 end
  if not (v >= 0 and v <= 1) then opts.raise("pacer.mock: '%s' must be between 0 and 1, got %s", name, v) end
  return v
end

local function latency_fn(l)
  if l == nil then return function() return 0 end end
  if type(l) == "table" then
    local lo = opts.duration("pacer.mock", "latency", l[1] or 0)
    local hi = opts.duration("pacer.mock", "latency", l[2] or l[1] or 0)
    return function() return lo + (hi - lo) * math.random() end
  end
  local d = opts.duration("pacer.mock", "latency", l)
  return function() return d end
end

function M.start(o)
  o = opts.check("pacer.mock", o or {}, SPEC)
  local rate = o.rate or "50/s"
  local ok, per_s, count, period = pcall(corelib.parse_rate, rate)
  if not ok then opts.raise("pacer.mock: %s", per_s) end
  local mode = o.mode or "gcra"
  if mode ~= "gcra" and mode ~= "fixed" then
    opts.raise("pacer.mock: mode must be \"gcra\" or \"fixed\", got %q", mode)
  end
  local limit = math.max(1, math.floor(count))
  local fail, drop = probability("fail", o.fail), probability("drop", o.drop)
  local fail_status = o.fail_status or {500, 503}
  local latency = latency_fn(o.latency)
  if o.burst and o.burst < 1 then opts.raise("pacer.mock: 'burst' must be an integer >= 1, got %d", o.burst) end
  local lim = new_limiter{rate = rate, burst = o.burst or limit}
  local window_start, window_used = task.now(), 0

  local self = {requests = {}, rate = per_s, limit = limit, window = period, mode = mode}
  local seq, sent = 0, 0
  local replies = {} -- Idempotency-Key -> {status, body}

  -- Returns allowed, remaining, reset seconds, retry-after seconds.
  local function admit()
    if mode == "fixed" then
      local now = task.now()
      if now >= window_start + period then
        window_start = window_start + math.floor((now - window_start) / period) * period
        window_used = 0
      end
      local reset = window_start + period - now
      if window_used >= limit then return false, 0, reset, reset end
      window_used = window_used + 1
      return true, limit - window_used, reset
    end
    local allowed, wait = lim:try_acquire()
    local st = lim:state()
    return allowed, st.remaining, st.reset, wait
  end

  local function record(req, status, extra)
    seq = seq + 1
    local r = {seq = seq, t = task.now(), method = req.method, path = req.path, status = status,
      idempotency_key = req.headers["idempotency-key"], body = req.body}
    for k, v in pairs(extra or {}) do r[k] = v end
    self.requests[seq] = r
    return r
  end

  local function sms(to, message)
    if type(to) ~= "string" or not to:match("^%+%d+$") then return nil, "'to' must be a phone number like +15550100" end
    if type(message) ~= "string" or message == "" then return nil, "'message' is required" end
    sent = sent + 1
    return {id = string.format("SM%08d", sent), to = to, status = "queued"}
  end

  local routes = {}
  routes["POST /v2/sms/send"] = function(req)
    local body = req:json()
    if type(body) ~= "table" then return 400, {error = "body must be a JSON object"} end
    local msg, err = sms(body.to, body.message or body.body)
    if not msg then return 422, {error = err} end
    return 200, msg
  end
  routes["POST /v2/sms/batch"] = function(req)
    local body = req:json()
    if type(body) ~= "table" or type(body.messages) ~= "table" then
      return 400, {error = "body must be {\"messages\": [...]}"}
    end
    if #body.messages > (o.max_batch or 100) then
      return 413, {error = string.format("at most %d messages per batch", o.max_batch or 100)}
    end
    local results = {}
    for i, m in ipairs(body.messages) do
      local msg, err = sms(type(m) == "table" and m.to, type(m) == "table" and (m.message or m.body))
      results[i] = msg or {index = i, error = err}
    end
    return 200, {results = results}
  end
  routes["GET /v2/numbers"] = function(req)
    local total = o.numbers or 250
    local page, per = tonumber(req.query.page) or 1, math.min(tonumber(req.query.per_page) or 50, 100)
    local items = {}
    for i = (page - 1) * per + 1, math.min(page * per, total) do
      items[#items + 1] = {number = string.format("+1555%07d", i), capabilities = {"sms"}}
    end
    return 200, {page = page, per_page = per, total = total, numbers = items}
  end
  routes["GET /v2/billing/usage"] = function()
    return 200, {sms_sent = sent, requests = seq}
  end

  -- what the mock received, for tests in other processes
  routes["GET /_mock/requests"] = function()
    local out = {}
    for i, r in ipairs(self.requests) do
      out[i] = {seq = r.seq, t = r.t, method = r.method, path = r.path, status = r.status,
        idempotency_key = r.idempotency_key, replayed = r.replayed, dropped = r.dropped, body = r.body}
    end
    -- cjson writes an empty table as {}: the record is a list, so say [] ourselves
    if #out == 0 then return 200, "[]", {["Content-Type"] = "application/json"} end
    return 200, out
  end

  local function handle(req, h)
    if req.path == "/_mock/requests" then return routes["GET /_mock/requests"]() end
    if o.key and req.headers["x-auth-token"] ~= o.key then
      record(req, 401)
      return 401, {error = "missing or invalid X-Auth-Token"}
    end
    local allowed, remaining, reset, retry_after = admit()
    local headers = {}
    if o.headers ~= false then -- headers = false: an API that says nothing about its quota
      headers["RateLimit-Limit"] = tostring(limit)
      headers["RateLimit-Remaining"] = tostring(remaining)
      headers["RateLimit-Reset"] = tostring(math.ceil(reset))
    end
    if not allowed then
      headers["Retry-After"] = o.retry_after or tostring(math.max(1, math.ceil(retry_after)))
      record(req, 429)
      return 429, {error = "rate limit exceeded"}, headers
    end
    local key = req.headers["idempotency-key"]
    if key and replies[key] then
      local prev = replies[key]
      headers["Idempotent-Replayed"] = "true"
      record(req, prev[1], {replayed = true})
      return prev[1], prev[2], headers
    end
    local d = latency()
    if d > 0 then task.sleep(d) end
    if fail > 0 and math.random() < fail then
      local st = fail_status[math.random(#fail_status)]
      record(req, st, {injected = true})
      return st, {error = "injected failure"}, headers
    end
    local fn = routes[req.method .. " " .. req.path]
    if not fn then
      record(req, 404)
      return 404, {error = "no route for " .. req.method .. " " .. req.path}, headers
    end
    local status, body = fn(req)
    if key and status < 500 then replies[key] = {status, body} end
    if drop > 0 and math.random() < drop then
      -- processed, then the connection is lost mid-answer: only a key makes a resend safe
      record(req, status, {dropped = true})
      h:drop("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":")
      return nil
    end
    record(req, status)
    return status, body, headers
  end

  local srv = serve.serve{host = o.host, port = o.port or 0, routes = {["* /*"] = handle}}
  self.url, self.port, self.host = srv.url, srv.port, srv.host

  -- Requests matching every field of `filter` ({path=, status=, method=, ...}).
  function self.count(_, filter)
    local n = 0
    for _, r in ipairs(self.requests) do
      local hit = true
      for k, v in pairs(filter or {}) do if r[k] ~= v then hit = false end end
      if hit then n = n + 1 end
    end
    return n
  end

  function self.close() srv.close() end
  return setmetatable(self, Mock)
end

return M
