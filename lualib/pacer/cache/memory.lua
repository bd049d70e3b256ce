-- pacer.cache.memory: the C cache (runtime/mod/cache.c) plus what is policy: single-flight fetch,
-- negative caching of loader errors (in a cache of their own, so get() never sees
-- them), stale-while-revalidate refreshes.
local new_cache = require "pacer.c.cache"
local task = require "pacer.c.task"
local opts = require "pacer.base.options"
local log = require "pacer.base.log"

local M = {}

local methods = getmetatable(new_cache{}).__index
-- cache -> {negative = a cache of loader errors (or nil), inflight = {key -> waiters}}
local state = setmetatable({}, {__mode = "k"})

-- Runs the loader once for key and hands its result to every task that joined (the
-- waiters list may exist already: a background refresh claims the key before it runs).
local function load(self, key, loader, ttl)
  local st = state[self]
  local waiters = st.inflight[key] or {}
  st.inflight[key] = waiters
  local ok, v, err = pcall(loader, key)
  st.inflight[key] = nil
  local a, b
  if ok and v ~= nil then
    pcall(self.set, self, key, v, ttl) -- a bad ttl must not strand the waiters
    a = v
  else
    b = ok and (err or "loader returned nil") or v
    if st.negative then st.negative:set(key, b) end
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
  local kt = type(key)
  if kt ~= "string" and kt ~= "number" then
    opts.raise("cache:fetch: key must be a string or a number, got %s", kt)
  end
  local st = state[self]
  local v, freshness = self:lookup(key)
  if freshness == "fresh" then
    self:count(true)
    return v
  end
  local waiters = st.inflight[key]
  if freshness == "stale" then -- serve the old value; refresh once, in the background
    self:count(true)
    if not waiters then
      st.inflight[key] = {} -- claimed now, so the next stale read does not start another
      task.spawn(function()
        local _, err = load(self, key, loader, ttl)
        if err then log.warn("cache: background refresh of %q failed: %s", tostring(key), tostring(err)) end
      end)
    end
    return v
  end
  if st.negative then
    local e = st.negative:get(key)
    if e ~= nil then
      self:count(false)
      return nil, e
    end
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
  local negative
  if o.negative_ttl ~= nil then
    if o.negative_ttl <= 0 then opts.raise("pacer.cache: 'negative_ttl' must be greater than 0") end
    negative = new_cache{ttl = o.negative_ttl, max_entries = o.max_entries, clock = o.clock}
  end
  state[c] = {negative = negative, inflight = {}}
  return c
end

return M
