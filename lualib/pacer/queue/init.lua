-- pacer.queue: the one place that picks a queue's backend.
--   memory (default)   the C priority heap (runtime/mod/queue.c), capacity, retries (queue/memory.lua)
--   durable = "f.db"   kept in SQLite: leases, acks, dead letters, crash recovery (queue/sqlite.lua)
--   redis = url        kept in Redis, for workers on several hosts (queue/redis.lua)
-- Every backend implements: push(item [, priority]), pop() -> item, priority, job
-- (waits while empty; nil once closed and empty), try_pop(), len(), close(), stats(),
-- dead() -> {{item=, err=, attempts=}}, work(n, fn) -> {done=, failed=}. The durable
-- ones add ack(job), fail(job, err) and renew(job); their job carries attempts and idempotency_key.
local gauges = require "pacer.observe.gauges"
local opts = require "pacer.base.options"

local M = {}

local SPEC = {capacity = "integer", full = "string", max_attempts = "integer", retry_delay = "duration",
  durable = "string", name = "string", poll = "duration", lease = "duration", redis = "string",
  redis_timeout = "duration", store_timeout = "duration"}

function M.new(o)
  o = opts.check("pacer.queue", o or {}, SPEC)
  if o.redis then
    if o.durable or o.capacity or o.full or o.retry_delay then
      opts.raise("pacer.queue: a Redis queue takes redis, name, max_attempts, poll, lease, redis_timeout and "
        .. "store_timeout")
    end
    return gauges.queue(require("pacer.queue.redis").new(o), o.name)
  end
  if o.redis_timeout then opts.raise("pacer.queue: 'redis_timeout' goes with redis") end
  if o.durable then
    if o.capacity or o.full or o.retry_delay then
      opts.raise("pacer.queue: a durable queue takes durable, name, max_attempts, poll, lease and store_timeout")
    end
    return gauges.queue(require("pacer.queue.sqlite").new(o), o.name)
  end
  if o.name or o.poll or o.lease or o.store_timeout then
    opts.raise("pacer.queue: 'name', 'poll', 'lease' and 'store_timeout' go with durable or redis")
  end
  return gauges.queue(require("pacer.queue.memory").new(o))
end

return M
