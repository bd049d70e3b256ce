-- pacer.cache: the C cache (runtime/cache.c) plus what is policy: single-flight fetch,
-- negative caching of loader errors, stale-while-revalidate refreshes.
local new_cache = require "pacer.c.cache"
local task = require "pacer.c.task"
local opts = require "pacer.opts"
local log = require "pacer.log"

local M = {}

local methods = getmetatable(new_cache{}).__index
local state = setmetatable({}, {__mode = "k"}) -- cache -> {negative_ttl=, inflight = {key -> waiters}}
local Negative = {} -- a cached loader error

local function answer(v)
  if getmetatable(v) == Negative then return nil, v.err end
  return v
end

-- Runs the loader once for key and hands its result to every task that joined.
local function load(self, key, loader, ttl)
  local st = state[self]
  local waiters = {}
  st.inflight[key] = waiters
  local ok, v, err = pcall(loader, key)
  st.inflight[key] = nil
  local a, b
  if ok and v ~= nil then
    self:set(key, v, ttl)
    a = v
  else
    b = ok and (err or "loader returned nil") or v
    if st.negative_ttl then self:set(key, setmetatable({err = b}, Negative), st.negative_ttl) end
  end
  for _, t in ipairs(waiters) do task.wake(t, a, b) end
  return a, b
end

-- c:fetch(key, loader [, ttl]) -> value | nil, err. On a miss, loader(key) runs once
-- however many tasks ask at the same time; all get its value or its error.
function methods:fetch(key, loader, ttl)
  if type(loader) ~= "function" then
    opts.raise("cache:fetch: loader must be a function, got %s", type(loader))
  end
  local st = state[self]
  local v, freshness = self:lookup(key)
  if freshness == "fresh" then
    self:count(true)
    return answer(v)
  end
  local waiters = st.inflight[key]
  if freshness == "stale" then -- serve the old value; refresh once, in the background
    self:count(true)
    if not waiters then
      task.spawn(function()
        local _, err = load(self, key, loader, ttl)
        if err then log.warn("cache: background refresh of %q failed: %s", tostring(key), tostring(err)) end
      end)
    end
    return answer(v)
  end
  self:count(false)
  if waiters then
    waiters[#waiters + 1] = task.current() or opts.raise("cache:fetch: must be called from a task")
    return task.suspend()
  end
  return load(self, key, loader, ttl)
end

local SPEC = {ttl = "duration", max_entries = "integer", max_bytes = "integer",
  stale_while_revalidate = "duration", negative_ttl = "duration", clock = "function"}

-- pacer.cache{ttl=, max_entries=10000, max_bytes=64 MiB, stale_while_revalidate=,
--             negative_ttl=, clock=fn}
function M.new(o)
  o = opts.check("pacer.cache", o or {}, SPEC)
  local ok, c = pcall(new_cache, o)
  if not ok then opts.raise("%s", c) end
  state[c] = {negative_ttl = o.negative_ttl, inflight = {}}
  return c
end

return M
