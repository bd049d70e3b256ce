-- pacer.limiter.sqlite: a limiter's schedule kept in SQLite (state = "pacer.db"), so a script
-- restarted at once does not burst past what the previous run used. The debt of each
-- rule is saved at most every 200 ms and at exit, and taken back on open, less the
-- time that passed in between.
local open = require "pacer.c.sqlite"
local cjson = require "cjson"
local task = require "pacer.c.task"
local opts = require "pacer.base.options"

local M = {}

local Persisted = {}
Persisted.__index = Persisted

local dbs = {} -- path -> db, one handle per file
local live = {} -- for the save at exit: held strongly, or a limiter the script no longer
-- references (a local of a finished main chunk) could be collected before exit, unsaved

local function db_for(path)
  if not dbs[path] then
    local ok, db = pcall(open, path)
    if not ok then opts.raise("state: %s", db) end
    db:exec("CREATE TABLE IF NOT EXISTS pacer_limiter (key TEXT PRIMARY KEY, debts TEXT NOT NULL, wall REAL NOT NULL)")
    dbs[path] = db
  end
  return dbs[path]
end

-- Wraps limiter `lim` so its schedule lives in `path` under `key`.
function M.wrap(lim, path, key)
  local self = setmetatable({lim = lim, db = db_for(path), key = key, saved = -math.huge}, Persisted)
  local row = self.db:exec("SELECT debts, wall FROM pacer_limiter WHERE key = ?", key)[1]
  if row then
    local passed = task.wall() - row.wall
    local debts = cjson.decode(row.debts)
    for i, d in ipairs(debts) do debts[i] = d - passed end
    lim:restore(debts)
  end
  live[self] = true
  return self
end

function Persisted:save()
  self.saved = task.now()
  self.db:exec("INSERT OR REPLACE INTO pacer_limiter (key, debts, wall) VALUES (?, ?, ?)", self.key,
    cjson.encode(self.lim:debts()), task.wall())
end

function Persisted:acquire(n, o)
  local w, err = self.lim:acquire(n, o)
  if w and task.now() - self.saved >= 0.2 then self:save() end
  return w, err
end

function Persisted:try_acquire(n)
  local ok, w = self.lim:try_acquire(n)
  if ok and task.now() - self.saved >= 0.2 then self:save() end
  return ok, w
end

function Persisted:set_rate(...) return self.lim:set_rate(...) end
function Persisted:max_cost() return self.lim:max_cost() end
function Persisted:state() return self.lim:state() end
function Persisted:debts() return self.lim:debts() end

-- at exit: every persisted limiter writes its last schedule
function M.save_all()
  for p in pairs(live) do pcall(p.save, p) end
end

return M
