-- pacer.job.ledger.sqlite: a job's items in an SQLite file (WAL), the protocol of
-- ledger/init.lua. One process uses a ledger at a time (its pid is kept in the meta
-- record; a dead one's leases go back to pending when the next opens it). Outcomes are
-- committed in small groups (at most 64, or before the next take, or by the job's
-- heartbeat): a process killed in between runs those few again, under the same key.
local open = require "pacer.c.sqlite"
local proc = require "pacer.c.proc"
local opts = require "pacer.base.options"
local ledger = require "pacer.job.ledger"

local M = {}

local Ledger = {}
Ledger.__index = Ledger

local SCHEMA = {
  "CREATE TABLE IF NOT EXISTS job_meta (k TEXT PRIMARY KEY, v TEXT)",
  [[CREATE TABLE IF NOT EXISTS job_items (seq INTEGER PRIMARY KEY, key TEXT, ukey TEXT, line INTEGER,
      state TEXT NOT NULL, row TEXT, attempts INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
      reason TEXT, result TEXT, owner INTEGER)]],
  "CREATE INDEX IF NOT EXISTS job_items_state ON job_items (state, seq)",
  "CREATE UNIQUE INDEX IF NOT EXISTS job_items_ukey ON job_items (ukey)", -- first rows with a key
}

local FLUSH_AT = 64

-- o.inspect: only to read (pacer job status/export), while a run may hold it.
function M.open(path, name, o)
  local ok, db = pcall(open, path)
  if not ok then opts.raise("pacer.job: ledger %s", db) end
  for _, sql in ipairs(SCHEMA) do db:exec(sql) end
  local self = setmetatable({db = db, path = path, name = name, pid = proc.pid(), unflushed = {}}, Ledger)
  if o and o.inspect then
    self.pid = -1 -- owns nothing: close() leaves the runner's pid alone
    return self
  end
  local owner = tonumber((self:meta() or {}).pid)
  if owner and owner ~= self.pid and proc.pid_alive(owner) then
    db:close()
    opts.raise("pacer.job: ledger %s is in use by process %d (one process per SQLite ledger; "
      .. "use a redis:// ledger for several)", path, owner)
  end
  self:set_meta{pid = self.pid}
  return self
end

function Ledger:meta()
  local rows = self.db:exec("SELECT k, v FROM job_meta")
  if #rows == 0 then return nil end
  local m = {}
  for _, r in ipairs(rows) do m[r.k] = ledger.NUMERIC[r.k] and tonumber(r.v) or r.v end
  return m
end

function Ledger:set_meta(t)
  self.db:exec("BEGIN IMMEDIATE")
  for k, v in pairs(t) do self.db:exec("INSERT OR REPLACE INTO job_meta (k, v) VALUES (?, ?)", k, tostring(v)) end
  self.db:exec("COMMIT")
end

function Ledger:begin_load()
  local m = self:meta() or {}
  if m.loaded == 1 then return false end
  self.db:exec("DELETE FROM job_items") -- a load that died half way starts again
  self.db:exec("BEGIN IMMEDIATE")
  return true
end

-- Rows are added in one open transaction, committed every call (a batch).
function Ledger:add(items)
  local db = self.db
  for _, it in ipairs(items) do
    local ukey = it.state == "pending" and it.key or nil
    db:exec("INSERT OR IGNORE INTO job_items (seq, key, ukey, line, state, reason, row) VALUES (?, ?, ?, ?, ?, ?, ?)",
      it.seq, it.key, ukey, it.line, it.state, it.reason, it.row)
    if ukey and db:changes() == 0 then -- an earlier row has this key
      local first = db:exec("SELECT line FROM job_items WHERE ukey = ?", ukey)[1]
      db:exec("INSERT INTO job_items (seq, key, line, state, reason, row) VALUES (?, ?, ?, 'duplicate', ?, ?)",
        it.seq, it.key, it.line, string.format("duplicate of line %d", first and first.line or 0), it.row)
    end
  end
  db:exec("COMMIT")
  db:exec("BEGIN IMMEDIATE")
end

function Ledger:finish_load(meta)
  meta.loaded = 1
  for k, v in pairs(meta) do self.db:exec("INSERT OR REPLACE INTO job_meta (k, v) VALUES (?, ?)", k, tostring(v)) end
  self.db:exec("COMMIT")
end

function Ledger:recover()
  for _, r in ipairs(self.db:exec("SELECT DISTINCT owner FROM job_items WHERE state = 'leased'")) do
    if r.owner == self.pid or not proc.pid_alive(r.owner) then
      self.db:exec("UPDATE job_items SET state = 'pending', owner = NULL WHERE state = 'leased' AND owner = ?", r.owner)
    end
  end
end

function Ledger:retry_failed()
  self.db:exec("UPDATE job_items SET state = 'pending', failures = 0 WHERE state = 'failed'")
end

function Ledger:take(n)
  self:flush()
  local rows = self.db:exec([[UPDATE job_items SET state = 'leased', owner = ?, attempts = attempts + 1
    WHERE seq IN (SELECT seq FROM job_items WHERE state = 'pending' ORDER BY seq LIMIT ?)
    RETURNING seq, key, line, row, attempts, failures]], self.pid, n)
  table.sort(rows, function(a, b) return a.seq < b.seq end)
  return rows, 0
end

function Ledger:finish(list)
  local u = self.unflushed
  for _, o in ipairs(list) do u[#u + 1] = o end
  if #u >= FLUSH_AT then self:flush() end
end

-- Commits the outcomes kept back so far, in one transaction.
function Ledger:flush()
  local u = self.unflushed
  if #u == 0 then return end
  self.unflushed = {}
  local db = self.db
  db:exec("BEGIN IMMEDIATE")
  for _, o in ipairs(u) do
    if o.state == "done" then
      db:exec("UPDATE job_items SET state = 'done', result = ?, reason = NULL, owner = NULL WHERE seq = ?",
        o.result, o.item.seq)
    else -- failed, or pending again for another attempt
      db:exec("UPDATE job_items SET state = ?, reason = ?, failures = failures + 1, owner = NULL WHERE seq = ?",
        o.state, o.reason, o.item.seq)
    end
  end
  db:exec("COMMIT")
end

function Ledger:renew() self:flush() end

function Ledger:release(items)
  self:flush()
  for _, it in ipairs(items) do
    self.db:exec("UPDATE job_items SET state = 'pending', owner = NULL, attempts = attempts - 1 "
      .. "WHERE seq = ? AND state = 'leased'", it.seq)
  end
end

function Ledger:counts()
  self:flush()
  local c = {total = 0, pending = 0, leased = 0, done = 0, failed = 0, invalid = 0, duplicate = 0}
  for _, r in ipairs(self.db:exec("SELECT state, COUNT(*) AS n FROM job_items GROUP BY state")) do
    c[r.state] = r.n
    c.total = c.total + r.n
  end
  return c
end

function Ledger:outcomes(after, n)
  self:flush()
  return self.db:exec([[SELECT seq, key, line, state, attempts, reason, result FROM job_items
    WHERE seq > ? ORDER BY seq LIMIT ?]], after, n)
end

function Ledger:close()
  if not self.db then return end
  pcall(function()
    self:flush()
    self.db:exec("DELETE FROM job_meta WHERE k = 'pid' AND v = ?", tostring(self.pid))
  end)
  self.db:close()
  self.db = nil
end


return M
