-- pacer.observe.metrics: the Prometheus text exposition (format 0.0.4) of the run, served
-- at GET /metrics on pacer's own listener (serve/listener.lua) while the job runs:
-- `--metrics HOST:PORT` or pacer.metrics{host =, port =} (loopback by default).
-- Clients are the ones made with pacer.client (by name: the redacted base URL unless
-- named) plus "pacer.request" for requests made without one. Label values are names
-- pacer gave or the user chose, never credentials: keys appear as key#1, URLs redacted.
-- Queues and jobs offer their gauges through observe/gauges.lua (pacer_queue_items,
-- pacer_job_items).
local gauges = require "pacer.observe.gauges"
local listener = require "pacer.serve.listener"
local hist = require "pacer.c.hist"
local log = require "pacer.base.log"
local opts = require "pacer.base.options"
local stats = require "pacer.run.stats"

local M = {}

-- seconds: 1 ms .. 1 min, the range of an API's answers and of pacing waits
local BUCKETS = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, math.huge}

local HELP = {
  pacer_requests_total = {"counter", "HTTP attempts by client, method and status (or transport error kind)"},
  pacer_retries_total = {"counter", "attempts that were retries"},
  pacer_throttled_total = {"counter", "attempts answered 429"},
  pacer_request_duration_seconds = {"histogram", "the server's time per attempt"},
  pacer_limiter_wait_seconds = {"histogram", "time each attempt waited for pacing"},
  pacer_send_lateness_seconds = {"histogram", "send start minus the slot the limiter promised"},
  pacer_time_seconds_total = {"counter", "where the time went: limiter, slot (concurrency), retry, server"},
  pacer_inflight = {"gauge", "requests in flight"},
  pacer_rate = {"gauge", "the client's current pace, requests per second"},
  pacer_quota_remaining = {"gauge", "requests left in the quota the API last reported"},
  pacer_quota_limit = {"gauge", "the quota's limit as the API last reported it"},
  pacer_circuit_open = {"gauge", "1 while the client's circuit breaker is open"},
  pacer_key_requests_total = {"counter", "requests sent with each key of a key pool (key#1, ...)"},
  pacer_key_retired = {"gauge", "1 once a key of the pool was retired (401/403)"},
  pacer_queue_items = {"gauge", "items waiting in a queue"},
  pacer_job_items = {"gauge", "a job's items by outcome (pending: not finished yet)"},
}
local ORDER = {"pacer_requests_total", "pacer_retries_total", "pacer_throttled_total", "pacer_request_duration_seconds",
  "pacer_limiter_wait_seconds", "pacer_send_lateness_seconds", "pacer_time_seconds_total", "pacer_inflight",
  "pacer_rate", "pacer_quota_remaining", "pacer_quota_limit", "pacer_circuit_open", "pacer_key_requests_total",
  "pacer_key_retired", "pacer_queue_items",
  "pacer_job_items"}

-- A label value as the format wants it: valid UTF-8 without control characters (a
-- quota policy comes from the server, which may send anything), at most 200 bytes.
local function escape(v)
  v = tostring(v):gsub("%c", "?")
  if #v > 200 then v = v:sub(1, 200) end
  if not utf8.len(v) then v = v:gsub("[\128-\255]", "?") end
  return (v:gsub("[\\\"]", {["\\"] = "\\\\", ["\""] = "\\\""}))
end

local function labels(l, order)
  local parts = {}
  for _, k in ipairs(order) do
    if l[k] ~= nil then parts[#parts + 1] = k .. "=\"" .. escape(l[k]) .. "\"" end
  end
  return #parts > 0 and "{" .. table.concat(parts, ",") .. "}" or ""
end

local function num(v)
  if v == math.huge then return "+Inf" end
  if v ~= v then return "NaN" end
  if math.type(v) == "integer" then return tostring(v) end
  return string.format("%.15g", v)
end

-- The clients by name, those of one name merged: {name=, counters=, clients={...}}.
local function client_groups()
  local by, names = {}, {}
  local function add(name, counters, client)
    local g = by[name]
    if not g then
      g = {name = name, list = {}, clients = {}}
      by[name] = g
      names[#names + 1] = name
    end
    g.list[#g.list + 1] = counters
    g.clients[#g.clients + 1] = client
  end
  for client in pairs(stats.run.clients) do add(client.name, client.counters, client) end
  local bare = package.loaded["pacer.http.request"] and package.loaded["pacer.http.request"].counters
  if bare and bare.requests > 0 then add("pacer.request", bare) end
  table.sort(names)
  local out = {}
  for i, name in ipairs(names) do out[i] = by[name] end
  return out
end

local function merged(g, field)
  if #g.list == 1 then return g.list[1].timing[field] end
  local h = hist.new()
  for _, c in ipairs(g.list) do h:merge(c.timing[field]) end
  return h
end

local function sum(g, f)
  local n = 0
  for _, c in ipairs(g.list) do n = n + f(c) end
  return n
end

-- The exposition text of the run now.
function M.render()
  local fam = {}
  for _, f in ipairs(ORDER) do fam[f] = {} end
  local function add(f, line) local t = fam[f]; t[#t + 1] = line end
  local function histogram(f, g, h)
    local cum = h:cumulative(BUCKETS)
    for i, le in ipairs(BUCKETS) do
      add(f, f .. "_bucket" .. labels({client = g.name, le = num(le)}, {"client", "le"}) .. " " .. cum[i])
    end
    add(f, f .. "_sum" .. labels({client = g.name}, {"client"}) .. " " .. num(h:sum()))
    add(f, f .. "_count" .. labels({client = g.name}, {"client"}) .. " " .. h:count())
  end
  for _, g in ipairs(client_groups()) do
    local calls = {}
    for _, c in ipairs(g.list) do
      for method, by in pairs(c.timing.calls) do
        for status, n in pairs(by) do
          local k = method .. "\0" .. tostring(status)
          calls[k] = (calls[k] or 0) + n
        end
      end
    end
    local keys = {}
    for k in pairs(calls) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local method, status = k:match("^(.-)%z(.*)$")
      add("pacer_requests_total", "pacer_requests_total" .. labels({client = g.name, method = method, status = status},
        {"client", "method", "status"}) .. " " .. calls[k])
    end
    local cl = labels({client = g.name}, {"client"})
    add("pacer_retries_total", "pacer_retries_total" .. cl .. " " .. sum(g, function(c) return c.retries end))
    add("pacer_throttled_total", "pacer_throttled_total" .. cl .. " " .. sum(g, function(c) return c.throttled end))
    histogram("pacer_request_duration_seconds", g, merged(g, "latency"))
    histogram("pacer_limiter_wait_seconds", g, merged(g, "limiter"))
    histogram("pacer_send_lateness_seconds", g, merged(g, "lateness"))
    for _, phase in ipairs{"limiter", "slot", "retry", "server"} do
      add("pacer_time_seconds_total", "pacer_time_seconds_total" .. labels({client = g.name, phase = phase},
        {"client", "phase"}) .. " " .. num(sum(g, function(c) return c.timing.time[phase] end)))
    end
    local c = g.clients[1]
    if c then
      local inflight = 0
      for _, x in ipairs(g.clients) do inflight = inflight + x.inflight end
      add("pacer_inflight", "pacer_inflight" .. cl .. " " .. inflight)
      local rate = c:rate()
      if rate and rate < math.huge then add("pacer_rate", "pacer_rate" .. cl .. " " .. num(rate)) end
      local q = c:quota()
      if q then
        local ql = labels({client = g.name, policy = q.policy or ""}, {"client", "policy"})
        if q.remaining then add("pacer_quota_remaining", "pacer_quota_remaining" .. ql .. " " .. num(q.remaining)) end
        if q.limit then add("pacer_quota_limit", "pacer_quota_limit" .. ql .. " " .. num(q.limit)) end
      end
      if c.breaker then
        add("pacer_circuit_open", "pacer_circuit_open" .. cl .. " " .. (c.breaker.state == "open" and 1 or 0))
      end
      if c.keys then -- by id (key#1), never by value
        for _, k in ipairs(c.keys.keys) do
          local kl = labels({client = g.name, key = k.id}, {"client", "key"})
          add("pacer_key_requests_total", "pacer_key_requests_total" .. kl .. " " .. (k.sent or 0))
          add("pacer_key_retired", "pacer_key_retired" .. kl .. " " .. (k.retired and 1 or 0))
        end
      end
    end
  end
  for f, owners in pairs(gauges.families) do -- an error in one drops its samples, not the scrape
    local lines = {}
    for _, fn in pairs(owners) do
      local ok, samples = pcall(fn)
      if ok then
        for _, s in ipairs(samples) do
          local order = {}
          for k in pairs(s[1]) do order[#order + 1] = k end
          table.sort(order)
          lines[#lines + 1] = f .. labels(s[1], order) .. " " .. num(s[2])
        end
      else
        log.warn("/metrics: %s: %s", f, tostring(samples))
      end
    end
    table.sort(lines)
    for _, l in ipairs(lines) do add(f, l) end
  end
  local out = {}
  for _, f in ipairs(ORDER) do
    if #fam[f] > 0 then
      out[#out + 1] = "# HELP " .. f .. " " .. HELP[f][2]
      out[#out + 1] = "# TYPE " .. f .. " " .. HELP[f][1]
      for _, l in ipairs(fam[f]) do out[#out + 1] = l end
    end
  end
  out[#out + 1] = ""
  return table.concat(out, "\n")
end

local TEXT = {["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"}

-- pacer.metrics{host = "127.0.0.1", port = 9464} -> the listener (srv.url, srv:close())
function M.serve(o)
  o = opts.check("pacer.metrics", o or {}, {host = "string", port = "integer"})
  local ok, srv = pcall(listener.serve, {host = o.host or "127.0.0.1", port = o.port or 9464, routes = {
    ["GET /metrics"] = function() return 200, M.render(), TEXT end,
  }})
  if not ok then opts.raise("%s", (tostring(srv):gsub("^.-pacer%.serve: ", "pacer.metrics: "))) end
  log.info("metrics at %s/metrics", srv.url)
  return srv
end

return M
