-- pacer.cache: the one place that picks a cache's backend.
--   memory (default)  the C cache (runtime/mod/cache.c) with single-flight fetch (cache/memory.lua)
--   redis = url       shared by processes on several hosts, fails open (cache/redis.lua)
-- Every backend implements: get(k) -> v|nil, set(k, v [, ttl]), delete(k),
-- fetch(k, loader [, ttl]) -> v | nil, err (one loader per key at a time), stats(),
-- clear(); keys are strings or numbers, values anything the backend can store.
local M = {}

function M.new(o)
  if type(o) == "table" and o.redis ~= nil then return require("pacer.cache.redis").new(o) end
  return require("pacer.cache.memory").new(o)
end

return M
