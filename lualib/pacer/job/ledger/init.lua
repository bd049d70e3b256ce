-- pacer.job.ledger: the one place that picks where a job keeps its items:
--   "x.ledger.db"        an SQLite file (ledger/sqlite.lua): one process at a time
--   "redis://HOST:PORT"  Redis (ledger/redis.lua): any number of processes on any hosts
-- An item is one input row: seq (its place in the input, from 1), key, line, row (JSON),
-- state, attempts (times it was started), failures (times its handler raised), reason
-- or result (JSON). States: pending -> leased -> done | failed | pending again (a retry,
-- or its process died); invalid and duplicate are final from the load.
-- Every backend implements:
--   meta() -> {loaded=, job_id=, hash=, size=, mtime=, source=, total=, run_*=} | nil
--   set_meta(t)                       fields of the meta record
--   begin_load() -> true: this process loads (an unfinished load is wiped), false: it
--                  is loaded (by another process, which this one may have waited for)
--   add(items)                        a batch of {seq, key, line, state, reason, row}
--                                     in input order; a pending item whose key an
--                                     earlier one has becomes duplicate
--   finish_load(meta)                 the load is complete (meta is kept with it)
--   recover()                         leases of processes that are gone -> pending
--   retry_failed()                    failed -> pending, failures back to 0
--   take(n) -> items, others          up to n pending items leased to this process
--                                     ({seq, key, line, row, attempts, failures});
--                                     others: items leased by other live processes
--   finish(list)                      outcomes {item, state = "done"|"failed"|"pending",
--                                     result = json | reason = text}; a lease another
--                                     process took over is left alone
--   renew(items)  release(items)      keep leases alive; hand them back unstarted
--   counts() -> {total=, pending=, leased=, done=, failed=, invalid=, duplicate=}
--   outcomes(after, n) -> records     up to n items with seq > after, in seq order
--   close()
local opts = require "pacer.base.options"

local M = {}

-- The backend for `where` (a path or a redis:// URL), for the job called `name`.
function M.open(where, name, o)
  if where:match("^redis://") then return require("pacer.job.ledger.redis").open(where, name, o) end
  if where:match("^%a+://") then
    opts.raise("pacer.job: 'ledger' must be an SQLite file or redis://HOST:PORT, got %q", where)
  end
  return require("pacer.job.ledger.sqlite").open(where, name, o)
end

-- The backends' meta records hold strings; these fields are numbers.
M.NUMERIC = {total = true, size = true, mtime = true, run_started = true, run_updated = true,
  run_items = true, run_elapsed = true, run_pid = true, loaded = true}

return M
