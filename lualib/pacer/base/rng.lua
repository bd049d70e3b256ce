-- pacer.base.rng: a seedable random source (splitmix64), so jitter can be replayed exactly in
-- tests: pacer.random(42)() -> a float in [0, 1).
local M = {}

function M.new(seed)
  local state = math.tointeger(seed) or math.floor((seed or os.time()) * 1000)
  return function()
    state = state + 0x9E3779B97F4A7C15
    local z = state
    z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ~ (z >> 27)) * 0x94D049BB133111EB
    z = z ~ (z >> 31)
    return (z >> 11) * (1.0 / 9007199254740992.0) -- top 53 bits
  end
end

return M
