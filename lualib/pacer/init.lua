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
-- --workers the workers hand the list out between them: a worker free for another
-- item takes the next one no worker has taken (pacer.c.share), so the faster takes
-- more; the indexes others took are absent from its results. Every worker must make
-- the same pacer.each calls in the same order (the k-th of each is one list). A call
-- made from inside an item is part of that item, which this worker took: all of it
-- runs here. Past the lists the workers can share, a list is split by index.
local each_calls = 0 -- under --workers: this worker's pacer.each calls so far
local in_item = setmetatable({}, {__mode = "k"}) -- tasks running a pacer.each item now

-- The next index of the list of n items (nil: none left): the workers' shared count
-- when there are several, else every index from `from`, `by` apart.
local function handout(n)
  local from, by = 1, 1
  local cur = task.current()
  if pacer.worker.count > 1 and not (cur and in_item[cur]) then
    each_calls = each_calls + 1
    local k, share = each_calls, require "pacer.c.share"
    local info = debug.getinfo(3, "Sl")
    local where = info and string.format("%s:%d", info.short_src, info.currentline or 0) or "?"
    local same, theirs = share.open(k, n, where)
    if same == false then
      opts.raise("pacer.each: call %d of this worker (%s, %d items) is not call %d of another worker (%s): " ..
        "under --workers every worker makes the same pacer.each calls, in the same order", k, where, n, k, theirs)
    elseif same then
      return function()
        local i = share.take(k)
        return i <= n and i or nil
      end
    end
    from, by = pacer.worker.id, pacer.worker.count
  end
  local i = from - by
  return function()
    i = i + by
    return i <= n and i or nil
  end
end

function pacer.each(list, fn, o)
  if type(list) ~= "table" then opts.raise("pacer.each: expected a list, got %s", type(list)) end
  if type(fn) ~= "function" then opts.raise("pacer.each: expected a function, got %s", type(fn)) end
  local failed
  failed, o = pool.collector("pacer.each", o, {concurrency = "integer", progress = "boolean", label = "string",
    on_error = "string"})
  local n = #list
  local conc = o.concurrency or 16
  if conc < 1 then opts.raise("pacer.each: 'concurrency' must be >= 1, got %d", conc) end
  local nexti = handout(n)
  -- a worker's share is known only at the end: its progress counts without a total
  local bar = o.progress ~= false and pacer.progress{total = pacer.worker.count == 1 and n or nil, label = o.label}
  local results, done = {}, 0
  pool.run(math.min(conc, n), nexti, function(i)
    local me = task.current()
    in_item[me] = true
    local ok, v = pcall(fn, list[i], i)
    in_item[me] = nil
    results[i] = ok and {ok = true, value = v} or {ok = false, err = v}
    done = done + 1
    if not ok then failed:add(v) end
    if bar then bar:advance(ok) end
  end)
  if bar then bar:finish() end
  failed:finish(done)
  return results
end

return pacer
