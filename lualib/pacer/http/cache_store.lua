-- pacer.http.cache_store: where a client's HTTP cache keeps its entries beyond memory, for the
-- next run or for other processes: a SQLite file (`store = "cache.db"`) or Redis
-- (`store = "redis://127.0.0.1:6379"`). Both keep JSON entries with the wall-clock time
-- they stay fresh until and the time they may be dropped.
local cjson = require "cjson"
local task = require "pacer.c.task"
local redis_conn = require "pacer.redis.conn"
local opts = require "pacer.base.options"

local M = {}

local Sqlite, Redis = {}, {}
Sqlite.__index, Redis.__index = Sqlite, Redis

local function sqlite(path)
  local ok, db = pcall(require("pacer.c.sqlite"), path)
  if not ok then opts.raise("pacer.client.cache: %s", db) end
  db:exec([[CREATE TABLE IF NOT EXISTS pacer_http_cache (key TEXT PRIMARY KEY, entry TEXT NOT NULL,
    fresh_until REAL NOT NULL, reclaim_at REAL NOT NULL)]])
  db:exec("DELETE FROM pacer_http_cache WHERE reclaim_at < ?", task.wall())
  return setmetatable({db = db}, Sqlite)
end

-- s:get(key) -> entry, fresh_until, reclaim_at | nil
function Sqlite:get(key)
  local row = self.db:exec("SELECT entry, fresh_until, reclaim_at FROM pacer_http_cache WHERE key = ?", key)[1]
  if not row then return nil end
  return cjson.decode(row.entry), row.fresh_until, row.reclaim_at
end

function Sqlite:put(key, entry, fresh_until, reclaim_at)
  self.db:exec("INSERT OR REPLACE INTO pacer_http_cache (key, entry, fresh_until, reclaim_at) VALUES (?, ?, ?, ?)",
    key, cjson.encode(entry), fresh_until, reclaim_at)
end

-- In Redis each entry expires by itself at reclaim_at; while Redis is unreachable the
-- memory cache carries on alone (one warning per outage).
local function redis(url)
  local host, port = redis_conn.parse_url(url, "pacer.client.cache")
  return setmetatable({conn = redis_conn.new(host, port, "the HTTP cache")}, Redis)
end

function Redis:get(key)
  local r, err = self.conn:call("GET", "pacer:http:" .. key)
  local s = self.conn:check(r, err, "using memory only meanwhile")
  if not s then return nil end
  local row = cjson.decode(s)
  return row.entry, row.fresh_until, row.reclaim_at
end

function Redis:put(key, entry, fresh_until, reclaim_at)
  local ms = math.max(1, math.ceil((reclaim_at - task.wall()) * 1000))
  local r, err = self.conn:call("SET", "pacer:http:" .. key,
    cjson.encode{entry = entry, fresh_until = fresh_until, reclaim_at = reclaim_at}, "PX", ms)
  self.conn:check(r, err, "using memory only meanwhile")
end

function M.open(store)
  if store:find("^redis://") then return redis(store) end
  return sqlite(store)
end

return M
