-- pacer.run.alert: rules that watch a client and act. quota{below=, rearm_above=} fires once
-- when the share of quota left falls below `below` and re-arms above `rearm_above`;
-- exhaustion{within=} when the quota would run out within that time at the current
-- pace; on(event, action, {cooldown=}) for "giveup", "throttled", "circuit_open",
-- "key_retired". Actions: a function, "log", {webhook = url} (a JSON POST with a
-- Slack-style `text`), {exec = argv}, {email = {url = "smtp://host:port", from =, to =,
-- subject =, user =, password =, starttls =}} (SMTP through libcurl on the loop,
-- runtime/mod/mail.c). An action runs in its own task; if it fails the failure is
-- logged and the job goes on.
local crypto = require "pacer.c.crypto"
local mail = require "pacer.c.mail"
local proc = require "pacer.c.proc"
local task = require "pacer.c.task"
local log = require "pacer.base.log"
local opts = require "pacer.base.options"

local M = {}

local Alert = {}
Alert.__index = Alert

local EVENTS = {giveup = true, throttled = true, circuit_open = true, key_retired = true}

-- {email = {...}} checked once: url smtp(s)://, from, to (one address or a list);
-- no CR or LF in what becomes a header line.
local function check_email(where, e)
  e = opts.check(where .. ": email", e, {url = "string", from = "string", to = {"string", "table"},
    subject = "string", user = "string", password = "string", starttls = "boolean", verify = "boolean",
    timeout = "duration"})
  for _, k in ipairs{"url", "from", "to"} do
    if not e[k] then opts.raise("%s: email needs '%s'", where, k) end
  end
  if not e.url:lower():find("^smtps?://") then
    opts.raise("%s: email 'url' must be smtp://host:port or smtps://host:port", where)
  end
  if type(e.to) == "string" then e.to = {e.to} end
  for _, v in ipairs{e.from, e.subject or "", table.unpack(e.to)} do
    if type(v) ~= "string" or v:find("[\r\n%z]") then
      opts.raise("%s: email from, to and subject must be strings without CR or LF", where)
    end
  end
  return {email = e}
end

local function check_action(where, a)
  if a == nil or a == "log" or type(a) == "function" then return a or "log" end
  if type(a) == "table" and (type(a.webhook) == "string" or type(a.exec) == "table") then return a end
  if type(a) == "table" and type(a.email) == "table" then return check_email(where, a.email) end
  opts.raise("%s: action must be a function, \"log\", {webhook = url}, {exec = argv} or {email = {...}}", where)
end

-- The message for an email action: RFC 5322 headers, then the alert as plain text.
local function email_message(e, info)
  local subject = e.subject or ("pacer alert: " .. (info.event or info.alert or "alert"))
  local lines = {
    "Date: " .. os.date("!%a, %d %b %Y %H:%M:%S +0000"),
    "From: " .. e.from,
    "To: " .. table.concat(e.to, ", "),
    "Subject: " .. subject,
    "Message-ID: <" .. crypto.random_hex(12) .. "@pacer>",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
    "pacer: " .. tostring(info.message),
    "",
  }
  for _, k in ipairs{"client", "alert", "event", "reason", "remaining", "limit"} do
    if info[k] ~= nil then lines[#lines + 1] = string.format("%s: %s", k, tostring(info[k])) end
  end
  return (table.concat(lines, "\r\n"):gsub("\r?\n", "\r\n")) .. "\r\n"
end

-- The address in "Name <addr>" or addr itself, for the SMTP envelope.
local function envelope(a) return "<" .. (a:match("<([^>]+)>") or a) .. ">" end

-- Runs an action in its own task; errors are logged, never raised.
local function run(action, info)
  task.spawn(function()
    local ok, err = pcall(function()
      if action == "log" then
        log.warn("alert: %s", info.message)
      elseif type(action) == "function" then
        action(info)
      elseif action.webhook then
        local res, e = require("pacer.http.request").request{method = "POST", url = action.webhook, timeout = 10,
          json = {text = "pacer: " .. info.message, alert = info.alert, client = info.client,
            event = info.event, remaining = info.remaining, limit = info.limit}}
        if not res then error(e.message, 0) end
        if res.status >= 300 then error("webhook answered HTTP " .. res.status, 0) end
      elseif action.email then
        local e = action.email
        local to = {}
        for i, a in ipairs(e.to) do to[i] = envelope(a) end
        local ok, err = mail.send{url = e.url, from = envelope(e.from), to = to, message = email_message(e, info),
          user = e.user, password = e.password, starttls = e.starttls, verify = e.verify, timeout = e.timeout or 30}
        if not ok then error(string.format("email to %s via %s: %s", table.concat(e.to, ", "),
          require("pacer.base.url").redact(e.url), err.message), 0) end
      elseif action.exec then
        -- started, not waited for in a blocking call: the loop goes on meanwhile
        local pid, e = proc.spawn(action.exec, {PACER_ALERT = info.message})
        if not pid then error(e, 0) end
        local code
        for _ = 1, 6000 do -- polled every 50 ms, for at most 5 minutes
          code = proc.waitpid(pid)
          if code then break end
          task.sleep(0.05)
        end
        if code ~= 0 then
          error(string.format("'%s' %s", table.concat(action.exec, " "),
            code and ("exited " .. code) or "still runs after 5 minutes"), 0)
        end
      end
    end)
    if not ok then log.error("alert action failed: %s", tostring(err)) end
  end)
end

function M.quota(o)
  opts.check("pacer.alert.quota", o, {below = "number", rearm_above = "number", action = "any"})
  for _, k in ipairs{"below", "rearm_above"} do
    if o[k] and not (o[k] >= 0 and o[k] <= 1) then
      opts.raise("pacer.alert.quota: '%s' is a fraction of the quota (0..1, e.g. 0.10 for 10%%), got %g", k, o[k])
    end
  end
  local below = o.below or 0.10
  local rearm = o.rearm_above or math.min(1, below * 2.5)
  if rearm < below then opts.raise("pacer.alert.quota: rearm_above (%g) must be >= below (%g)", rearm, below) end
  return setmetatable({kind = "quota", below = below, rearm = rearm, armed = true,
    action = check_action("pacer.alert.quota", o.action)}, Alert)
end

function M.exhaustion(o)
  o = opts.check("pacer.alert.exhaustion", o, {within = "duration", action = "any"})
  return setmetatable({kind = "exhaustion", within = o.within or 600, armed = true,
    action = check_action("pacer.alert.exhaustion", o.action)}, Alert)
end

function M.on(event, action, o)
  if not EVENTS[event] then
    opts.raise("pacer.alert.on: unknown event '%s' (known: circuit_open, giveup, key_retired, throttled)",
      tostring(event))
  end
  o = opts.check("pacer.alert.on", o or {}, {cooldown = "duration"})
  return setmetatable({kind = "event", on = event, cooldown = o.cooldown or 0,
    last = -math.huge, action = check_action("pacer.alert.on", action)}, Alert)
end

-- A client's quota changed: q = {remaining, limit, exhausts_in}.
function Alert:quota_seen(client, q)
  if self.kind == "quota" and q.limit and q.limit > 0 and q.remaining then
    local share = q.remaining / q.limit
    if self.armed and share <= self.below then
      self.armed = false
      run(self.action, {alert = "quota", client = client, remaining = q.remaining, limit = q.limit,
        message = string.format("%s: quota low: %d of %d left (%.0f%%)", client, q.remaining, q.limit, share * 100)})
    elseif not self.armed and share >= self.rearm then
      self.armed = true
    end
  elseif self.kind == "exhaustion" then
    local soon = q.exhausts_in and q.exhausts_in <= self.within
    if self.armed and soon then
      self.armed = false
      run(self.action, {alert = "exhaustion", client = client, remaining = q.remaining, limit = q.limit,
        exhausts_in = q.exhausts_in, message = string.format("%s: quota runs out in %.0fs at this pace",
          client, q.exhausts_in)})
    elseif not self.armed and not soon then
      self.armed = true
    end
  end
end

-- Something happened on a client: event name and details ({message=, ...}).
function Alert:event(name, info)
  if self.kind ~= "event" or self.on ~= name then return end
  local now = task.now()
  if now - self.last < self.cooldown then return end
  self.last = now
  info.alert, info.event = "event", name
  run(self.action, info)
end

function M.is_alert(v) return getmetatable(v) == Alert end

return M
