-- pacer: the public Lua API (see README). C objects come from pacer.c.*; policies and
-- helpers from the role folders beside this file (http/, policy/, limiter/, ...).
local corelib = require "pacer.c.corelib"
local task = require "pacer.c.task"
local http = require "pacer.c.http"
local opts = require "pacer.base.options"
local pool = require "pacer.run.pool"

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
  backoff = require "pacer.policy.backoff",
  inflight = http.inflight,
  redact = require("pacer.base.url").redact,
  secret_names = require("pacer.base.url").add_secret_names,
}

pacer.limiter = require("pacer.limiter").new

-- pacer.worker: which of `pacer --workers N` this process is ({id = 1, count = 1} without it)
local cmdline = package.loaded["pacer.c.cmdline"] or {}
pacer.worker = {id = cmdline.worker or 1, count = cmdline.workers or 1}

pacer.request = require("pacer.http.request").request
pacer.client = require("pacer.http.client").new
pacer.serve = require("pacer.serve.listener").serve
pacer.semaphore = require("pacer.base.semaphore").semaphore
pacer.progress = require("pacer.run.progress").start
pacer.cache = require("pacer.cache").new
pacer.queue = require("pacer.queue").new
pacer.job = require("pacer.job").new
pacer.batch = require("pacer.run.batch").new
pacer.alert = require "pacer.run.alert"
pacer.auth = require "pacer.auth"
pacer.every = require("pacer.run.schedule").every
pacer.at = require("pacer.run.schedule").at
pacer.random = require("pacer.base.rng").new
pacer.webhook = require "pacer.serve.webhook"
function pacer.mock(o) return require("pacer.serve.mock").start(o) end -- loaded on first use
function pacer.stats() return require("pacer.run.stats").copy(require("pacer.run.stats").run) end
function pacer.metrics(o) return require("pacer.observe.metrics").serve(o) end
pacer.threshold = require("pacer.observe.threshold").threshold

-- pacer.each(list, fn, {concurrency = 16, on_error = "report"}): fn(item, index) for
-- every item with at most `concurrency` running at once. Returns {ok=, value=|err=} per
-- item, in list order; failed items are reported as run/failures.lua says. Under
-- --workers each worker takes its share: the items whose index is its id modulo N (the
-- other indexes are absent from its results).
function pacer.each(list, fn, o)
  if type(list) ~= "table" then opts.raise("pacer.each: expected a list, got %s", type(list)) end
  if type(fn) ~= "function" then opts.raise("pacer.each: expected a function, got %s", type(fn)) end
  local failed
  failed, o = pool.collector("pacer.each", o, {concurrency = "integer", progress = "boolean", label = "string",
    on_error = "string"})
  local n = #list
  local conc = o.concurrency or 16
  if conc < 1 then opts.raise("pacer.each: 'concurrency' must be >= 1, got %d", conc) end
  local id, step = pacer.worker.id, pacer.worker.count
  local share = n >= id and (n - id) // step + 1 or 0
  local bar = o.progress ~= false and pacer.progress{total = share, label = o.label}
  local results, next_i = {}, id - step
  pool.run(math.min(conc, share), function()
    next_i = next_i + step
    return next_i <= n and next_i or nil
  end, function(i)
    local ok, v = pcall(fn, list[i], i)
    results[i] = ok and {ok = true, value = v} or {ok = false, err = v}
    if not ok then failed:add(v) end
    if bar then bar:advance(ok) end
  end)
  if bar then bar:finish() end
  failed:finish(share)
  return results
end

return pacer
