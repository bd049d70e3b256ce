-- pacer.limiter: the one place that picks a limiter's backend.
--   memory (default)  the C GCRA limiter (runtime/mod/limiter.c), exact, in-process
--   state = "f.db"    the same, its schedule kept in SQLite across runs (limiter/sqlite.lua)
--   redis = url       one quota shared by processes on several hosts (limiter/redis.lua)
-- Every backend implements: acquire([n [, {priority =, max_wait =}]]) -> seconds waited
-- (yields; n units of every rule, a request's cost) or nil, {kind = "deadline"} when the
-- slot is further off than max_wait (nothing taken); try_acquire([n]) -> ok, wait;
-- max_cost() -> the largest n (the smallest burst); state() -> {rate=, ...}; set_rate(r).
-- Misuse (a cost above the burst) raises at the caller's line.
local new_limiter = require "pacer.c.limiter"
local opts = require "pacer.base.options"

local M = {}

-- The C limiter from {rate=|rules=, burst=}, or a raise in `where`'s name.
function M.memory(spec, where)
  local ok, lim = pcall(new_limiter, spec)
  if not ok then
    if where then lim = lim:gsub("^pacer%.limiter", where) end
    opts.raise("%s", lim)
  end
  return lim
end

function M.new(o)
  if type(o) == "table" and o.redis ~= nil then return require("pacer.limiter.redis").limiter(o) end
  if type(o) == "table" and o.state ~= nil then -- state = "pacer.db", key = "name"
    local state, key = o.state, o.key
    if type(state) ~= "string" then
      opts.raise("pacer.limiter: option 'state' must be a file name, got %s", type(state))
    end
    if type(key) ~= "string" then opts.raise("pacer.limiter: a persisted limiter needs a 'key' naming it") end
    return require("pacer.limiter.sqlite").wrap(M.memory{rate = o.rate, rules = o.rules, burst = o.burst}, state, key)
  end
  return M.memory(o)
end

return M
