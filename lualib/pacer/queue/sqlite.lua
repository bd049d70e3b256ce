-- pacer.queue.sqlite: the queue kept in SQLite (pacer.queue{durable = "jobs.db"}). A push is
-- on disk when it returns; pop() leases an item; ack() removes it, fail() hands it back
-- with its attempt count, or to the dead letters after max_attempts. A lease whose
-- process died (kill -9, power cut) goes back to the queue when the file is next
-- opened. Every item carries an idempotency key made at push, the same on every
-- attempt and after a restart: send it as Idempotency-Key and a resend is harmless.
local proc = require "pacer.c.proc"
local cjson = require "cjson"
local open = require "pacer.c.sqlite"
local task = require "pacer.c.task"
local opts = require "pacer.base.options"
local base = require "pacer.queue.base"

local M = {}

local Queue = base.class("sqlite")

local SCHEMA = {
  [[CREATE TABLE IF NOT EXISTS pacer_queue (
      id INTEGER PRIMARY KEY, queue TEXT NOT NULL, priority REAL NOT NULL, payload TEXT NOT NULL,
      idem TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT 'ready',
      owner INTEGER, error TEXT, updated REAL)]],
  [[CREATE INDEX IF NOT EXISTS pacer_queue_next ON pacer_queue (queue, state, priority, id)]],
}

-- {durable = path, name = "default", max_attempts = 3, poll = "250ms", lease = "5m", store_timeout = "30s"}
function M.new(o)
  local ok, db = pcall(open, o.durable)
  if not ok then opts.raise("pacer.queue: %s", db) end
  for _, sql in ipairs(SCHEMA) do db:exec(sql) end
  local self = base.make(Queue, {db = db, name = o.name or "default", max_attempts = o.max_attempts or 3,
    poll = opts.duration("pacer.queue", "poll", o.poll or 0.25),
    lease = opts.duration("pacer.queue", "lease", o.lease or 300), pid = proc.pid(),
    store_timeout = base.store_timeout("pacer.queue", o.store_timeout)})
  -- leases held by processes that are gone go back to the queue
  for _, row in ipairs(db:exec("SELECT DISTINCT owner FROM pacer_queue WHERE queue = ? AND state = 'leased'",
      self.name)) do
    if row.owner == self.pid or not proc.pid_alive(row.owner) then
      db:exec("UPDATE pacer_queue SET state = 'ready', owner = NULL WHERE queue = ? AND state = 'leased' AND owner = ?",
        self.name, row.owner)
    end
  end
  return self
end

function Queue:insert(payload, priority, idem)
  self.db:exec("INSERT INTO pacer_queue (queue, priority, payload, idem, updated) VALUES (?, ?, ?, ?, ?)",
    self.name, priority, payload, idem, task.wall())
end

-- Leases the next item: item, priority, job | nil when there is none now.
function Queue:try_pop()
  for _ = 1, 100 do -- another process may take the row between our SELECT and UPDATE
    -- ready items (one index lookup), else leases past their time (a worker that hangs
    -- or vanished unseen)
    local now = task.wall()
    local row = self.db:exec([[SELECT id, payload, priority, attempts, idem, state, updated FROM pacer_queue
      WHERE queue = ? AND state = 'ready' ORDER BY priority, id LIMIT 1]], self.name)[1]
      or self.db:exec([[SELECT id, payload, priority, attempts, idem, state, updated FROM pacer_queue
      WHERE queue = ? AND state = 'leased' AND updated < ? ORDER BY priority, id LIMIT 1]], self.name,
      now - self.lease)[1]
    if not row then return nil end
    self.db:exec("UPDATE pacer_queue SET state = 'leased', owner = ?, attempts = attempts + 1, updated = ? "
      .. "WHERE id = ? AND state = ? AND updated = ?", self.pid, now, row.id, row.state, row.updated)
    if self.db:changes() == 1 then
      return cjson.decode(row.payload), row.priority,
        {id = row.id, attempts = row.attempts + 1, idempotency_key = row.idem}
    end
  end
end

-- Starts job's lease again (q:work does so while its handler runs): nobody takes it
-- for a dead worker's.
function Queue:renew(job)
  self.db:exec("UPDATE pacer_queue SET updated = ? WHERE id = ? AND state = 'leased' AND owner = ?", task.wall(),
    job.id, self.pid)
end

function Queue:ack(job)
  self.db:exec("DELETE FROM pacer_queue WHERE id = ?", job.id)
end

-- Hands the item back (or to the dead letters once it has had max_attempts).
function Queue:fail(job, err)
  local dead = job.attempts >= self.max_attempts
  self.db:exec("UPDATE pacer_queue SET state = ?, owner = NULL, error = ?, updated = ? WHERE id = ?",
    dead and "dead" or "ready", tostring(err), task.wall(), job.id)
end

function Queue:len()
  return self.db:exec("SELECT COUNT(*) AS n FROM pacer_queue WHERE queue = ? AND state IN ('ready', 'leased')",
    self.name)[1].n
end

function Queue:dead()
  local out = {}
  for i, row in ipairs(self.db:exec([[SELECT payload, error, attempts FROM pacer_queue
      WHERE queue = ? AND state = 'dead' ORDER BY id]], self.name)) do
    out[i] = {item = cjson.decode(row.payload), err = row.error, attempts = row.attempts}
  end
  return out
end

function Queue:stats()
  local s = {ready = 0, leased = 0, dead = 0}
  for _, row in ipairs(self.db:exec("SELECT state, COUNT(*) AS n FROM pacer_queue WHERE queue = ? GROUP BY state",
      self.name)) do
    s[row.state] = row.n
  end
  s.len, s.closed = s.ready + s.leased, self.closed
  return s
end

function Queue:close_db() self.db:close() end

return M
