-- pacer: the public Lua API (see README). C objects come from pacer.c.*; policies and
-- helpers from the Lua modules beside this file.
local corelib = require "pacer.c.corelib"
local task = require "pacer.c.task"
local http = require "pacer.c.http"
local new_limiter = require "pacer.c.limiter"
local opts = require "pacer.opts"

local pacer = {
  version = corelib.version,
  spawn = task.spawn,
  sleep = task.sleep,
  now = task.now,
  wall = task.wall,
  current = task.current,
  parse_rate = corelib.parse_rate,
  parse_duration = corelib.parse_duration,
  parse_retry_after = corelib.parse_retry_after,
  parse_quota = corelib.parse_quota,
  json = require "cjson",
  backoff = require "pacer.backoff",
  inflight = http.inflight,
}

function pacer.limiter(o)
  if type(o) == "table" and o.redis ~= nil then return require("pacer.redis").limiter(o) end
  local state, key
  if type(o) == "table" and o.state ~= nil then -- state = "pacer.db", key = "name"
    state, key = o.state, o.key
    if type(state) ~= "string" then opts.raise("pacer.limiter: option 'state' must be a file name, got %s", type(state)) end
    if type(key) ~= "string" then opts.raise("pacer.limiter: a persisted limiter needs a 'key' naming it") end
    o = {rate = o.rate, rules = o.rules, burst = o.burst}
  end
  local ok, lim = pcall(new_limiter, o)
  if not ok then opts.raise("%s", lim) end
  if state then return require("pacer.state").wrap(lim, state, key) end
  return lim
end

pacer.request = require("pacer.request").request
pacer.client = require("pacer.client").new
pacer.serve = require("pacer.serve").serve
pacer.semaphore = require("pacer.sync").semaphore
pacer.progress = require("pacer.progress").start
pacer.cache = require("pacer.cache").new
pacer.queue = require("pacer.queue").new
pacer.batch = require("pacer.batch").new
pacer.alert = require "pacer.alert"
pacer.every = require("pacer.schedule").every
pacer.at = require("pacer.schedule").at
pacer.random = require("pacer.rng").new
pacer.webhook = require "pacer.webhook"
function pacer.mock(o) return require("pacer.mock").start(o) end -- loaded on first use
function pacer.stats() return require("pacer.stats").copy(require("pacer.stats").run) end

-- pacer.each(list, fn, {concurrency = 16}): fn(item, index) for every item with at most
-- `concurrency` running at once. Returns {ok=, value=|err=} per item, in list order.
function pacer.each(list, fn, o)
  if type(list) ~= "table" then opts.raise("pacer.each: expected a list, got %s", type(list)) end
  if type(fn) ~= "function" then opts.raise("pacer.each: expected a function, got %s", type(fn)) end
  o = opts.check("pacer.each", o or {}, {concurrency = "integer", progress = "boolean", label = "string"})
  local n = #list
  local conc = o.concurrency or 16
  if conc < 1 then opts.raise("pacer.each: 'concurrency' must be >= 1, got %d", conc) end
  local bar = o.progress ~= false and pacer.progress{total = n, label = o.label}
  local results, next_i = {}, 0
  local function worker()
    while true do
      next_i = next_i + 1
      local i = next_i
      if i > n then return end
      local ok, v = pcall(fn, list[i], i)
      results[i] = ok and {ok = true, value = v} or {ok = false, err = v}
      if bar then bar:advance(ok) end
    end
  end
  local workers = {}
  for w = 1, math.min(conc, n) do workers[w] = task.spawn(worker) end
  for _, w in ipairs(workers) do w:wait() end
  if bar then bar:finish() end
  return results
end

return pacer
