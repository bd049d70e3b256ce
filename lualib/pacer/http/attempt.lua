-- pacer.http.attempt: the one attempt loop. A logical request is attempted, paced and
-- retried here until it succeeds, fails for good, or its retry policy gives up. What
-- happens around each attempt belongs to the sender (a client, or a bare request):
--   sender.counters                   the stats sink the attempts are counted in
--                                        (run/stats.lua; and up its chain: the run's)
--   sender:before_attempt(r, n, deadline) -> seconds waited, extra header lines, token
--                                        (token.slot_wait: seconds spent waiting for a
--                                        concurrency slot; token.slot_at: the slot the
--                                        limiter promised, for observe/timing):
--                                        every pacing wait and the concurrency slot;
--                                        false, why when it cannot send before deadline
--                                        (why: a reason, or an error table with its
--                                        own kind: "deadline", "auth")
--   sender:after_attempt(r, res, err, token) -> again: frees the slot, learns from
--                                        the answer; `again` resends at once (a
--                                        retired key: another key will do)
--   sender.again_budget               resends `again` may add beyond max_tries
--   sender:rate(), sender:gave_up(info)  optional: the pace for the log, a give-up hook
local errors = require "pacer.base.errors"
local http = require "pacer.c.http"
local log = require "pacer.base.log"
local task = require "pacer.c.task"
local redirect = require "pacer.http.redirect"
local response = require "pacer.http.response"
local retry = require "pacer.policy.retry"
local stats = require "pacer.run.stats"
local timing = require "pacer.observe.timing"
local url = require "pacer.base.url"

local M = {}

local function call_hook(fn, info)
  if fn then fn(info) end
end

-- What the retry hooks and sender:gave_up are given (made only when one is called).
local function hook_info(n, elapsed, res, err, delay, why)
  return {attempt = n, elapsed = elapsed, response = res, err = err, delay = delay, reason = why}
end

-- The request as sent on this attempt: r plus cache validators and the sender's lines.
local function on_the_wire(r, extra)
  if not (r.conditional or extra) then return r end
  local wire = setmetatable({headers = {table.unpack(r.headers)}}, {__index = r})
  for k, v in pairs(r.conditional or {}) do wire.headers[#wire.headers + 1] = k .. ": " .. v end
  for _, line in ipairs(extra or {}) do wire.headers[#wire.headers + 1] = line end
  return wire
end

-- One transfer and the redirects it is allowed to follow: what http.request returns.
local function transfer(r, wire)
  local status, headers, body, info = http.request(wire)
  local hops = r.redirects or 0
  while hops > 0 and status do
    local nxt, refused = redirect.next(r, wire, status, headers)
    if refused then return nil, refused end
    if not nxt then return status, headers, body, info end
    hops = hops - 1
    wire = nxt
    status, headers, body, info = http.request(wire)
  end
  if status and r.redirects and r.redirects > 0 and redirect.is_redirect(status, headers) then
    return nil, {kind = "protocol", message = string.format("more than %d redirects", r.redirects)}
  end
  return status, headers, body, info
end

-- One attempt: res | nil, err (a transport failure, as an error table).
local function attempt_once(sender, r, n, deadline)
  local paced, extra, token = sender:before_attempt(r, n, deadline)
  if paced == false and type(extra) == "table" then -- an error of its own kind: deadline, auth
    extra.unsent, extra.attempts, extra.method, extra.url = true, n - 1, r.method, url.redact(r.url)
    extra.message = string.format("%s %s: %s", r.method, extra.url, extra.message or extra.kind)
    return nil, errors.new(extra)
  elseif paced == false then -- nothing was sent
    return nil, errors.new{kind = "gave_up", reason = extra, unsent = true, attempts = n - 1,
      message = string.format("%s %s: gave up: %s", r.method, url.redact(r.url), extra)}
  end
  if paced > 0 then stats.waited(sender.counters, paced) end
  local sent = task.now()
  local status, headers, body, info = transfer(r, on_the_wire(r, extra))
  local res, err
  if status then
    res = response.new(r, status, headers, body, info, n)
  end
  local t = token or {}
  timing.attempt(sender.counters, r.method, status or headers.kind, paced, t.slot_wait, t.slot_at, sent,
    status and res.elapsed or headers.elapsed)
  if not status then
    err = headers -- a server's refusal too (a redirect to file://, HTTP/0.9): prepare() checked the URL
    err.url, err.method, err.attempts = url.redact(r.url), r.method, n
    err.message = string.format("%s %s: %s", r.method, err.url, err.message)
    errors.new(err)
  end
  return res, err, paced, sender:after_attempt(r, res, err, token)
end

local function gave_up(r, res, err, why, n)
  if err then
    err.gave_up = why
    return nil, err
  end
  return nil, errors.new{kind = "gave_up", reason = why, status = res.status, last = res, attempts = n,
    message = string.format("%s %s: gave up after %d attempt%s (last: HTTP %d): %s", r.method,
      url.redact(r.url), n, n == 1 and "" or "s", res.status, why)}
end

-- Sends the prepared request r for `sender` under retry policy p (nil: one attempt).
-- Returns res (any status the policy does not retry) or nil, err.
function M.send(r, sender, p)
  local counters = sender.counters
  local started = task.now()
  local n, wait, prev_delay = 0, 0, nil
  local idempotent = r.idempotent or (p and p.unsafe)
  local max_tries = p and p.max_tries or 1
  while true do
    n = n + 1
    local res, err, paced, again = attempt_once(sender, r, n, started + (p and p.max_time or math.huge))
    if err and err.unsent then
      stats.finished(counters, false)
      if sender.gave_up and err.kind ~= "deadline" then
        sender:gave_up{attempt = n, reason = err.reason or err.message}
      end
      return nil, err
    end
    stats.attempt(counters, r, n, res and res.status, err, wait + paced, res and res.elapsed or err.elapsed,
      res and res.quota, sender)
    local elapsed = task.now() - started
    local delay, why
    if again and n < max_tries + (sender.again_budget or 0) then
      delay = 0
    elseif p then
      delay, why = retry.decide(p, res, err, n, elapsed, idempotent, nil, prev_delay)
    end
    if delay == nil then
      local ok = res ~= nil and res.status < 400
      stats.finished(counters, ok)
      if ok and p and p.on_success then p.on_success(hook_info(n, elapsed, res, err, delay)) end
      if res then return res end
      return nil, err
    elseif delay == false then
      stats.finished(counters, false)
      local i = hook_info(n, elapsed, res, err, delay, why)
      if p then call_hook(p.on_giveup, i) end
      if sender.gave_up then sender:gave_up(i) end
      return gave_up(r, res, err, why, n)
    end
    -- (no policy: a retired key's resend)
    if p and p.on_retry then p.on_retry(hook_info(n, elapsed, res, err, delay)) end
    if log.enabled("info") then
      log.info("retry %d/%d of %s %s in %.3gs after %s", n, max_tries - 1, r.method,
        url.redact(r.url), delay, res and ("HTTP " .. res.status) or err.kind)
    end
    prev_delay, wait = delay, delay
    if delay > 0 then
      timing.paused(counters, delay)
      task.sleep(delay)
    end
  end
end

return M
