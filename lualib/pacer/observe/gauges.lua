-- pacer.observe.gauges: gauges other modules offer /metrics (observe/metrics.lua reads
-- them at each scrape): queues their length, jobs their items by outcome. Kept here, not
-- in metrics.lua, so that offering one costs nothing when no one scrapes.
local M = {}

-- family -> {owner -> fn}; an owner that is collected takes its gauge with it
M.families = {pacer_queue_items = setmetatable({}, {__mode = "k"}),
  pacer_job_items = setmetatable({}, {__mode = "k"})}

-- register(family, owner, fn): fn() -> {{{label = value, ...}, number}, ...}
function M.register(family, owner, fn)
  assert(M.families[family], family)
  M.families[family][owner] = fn
end

local queues = 0

-- A queue's length as pacer_queue_items{queue = name or "queue#N"}; returns q.
function M.queue(q, name)
  queues = queues + 1
  local label = name or ("queue#" .. queues)
  M.register("pacer_queue_items", q, function()
    local ok, n = pcall(q.len, q)
    return ok and {{{queue = label}, n}} or {}
  end)
  return q
end

return M
