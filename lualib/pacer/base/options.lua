-- pacer.base.options: checking of option tables, so misuse raises a message that names the
-- function, the option and what it accepts, at the user's line (not ours).
local parse_duration = require("pacer.c.corelib").parse_duration

local M = {}

-- The first stack level outside lualib/pacer: where the user called us.
local function user_level()
  for level = 3, 40 do
    local info = debug.getinfo(level, "S")
    if not info then return 1 end
    if not info.source:find("^@lualib/pacer/") and not info.source:find("/pacer/[%w_/]+%.lua$")
       and info.what ~= "C" then
      return level - 1
    end
  end
  return 1
end

function M.raise(fmt, ...)
  error(string.format(fmt, ...), user_level())
end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return table.concat(ks, ", ")
end

-- Seconds from a duration option, or a raise naming the function and the option.
local function seconds(where, name, v)
  local ok, secs = pcall(parse_duration, v)
  if not ok then M.raise("%s: option '%s': %s", where, name, secs) end
  return secs
end

local function accepts(kind, v)
  local tv = type(v)
  if kind == "duration" or kind == "rate" then return tv == "number" or tv == "string" end
  if kind == "integer" then return math.type(v) == "integer" end
  if kind == "callable" then return tv == "function" or (getmetatable(v) or {}).__call ~= nil end
  return kind == "any" or tv == kind
end

local function describe(kind)
  return kind == "duration" and "a duration (seconds or \"250ms\")"
    or kind == "rate" and "a rate (\"10/s\" or a number)"
    or kind == "integer" and "an integer" or ("a " .. kind)
end

-- Checks the option table t against spec {name = "string" | "number" | "integer" |
-- "duration" | "rate" | "callable" | "any" | {"kind", ...}} and returns a copy of it,
-- normalized: durations in seconds. Unknown names and wrong kinds raise at the user's
-- line. later = names accepted by the API but not yet built.
function M.check(where, t, spec, later)
  if type(t) ~= "table" then
    M.raise("%s: expected a table of options, got %s", where, type(t))
  end
  local out = {}
  for k, v in pairs(t) do
    local want = spec[k]
    if want == nil then
      if later and later[k] then
        M.raise("%s: option '%s' is not available in this version of pacer", where, tostring(k))
      end
      M.raise("%s: unknown option '%s' (known: %s)", where, tostring(k), sorted_keys(spec))
    end
    local kinds = type(want) == "table" and want or {want}
    local kind
    for _, w in ipairs(kinds) do
      if accepts(w, v) then kind = w break end
    end
    if not kind then
      local words = {}
      for i, w in ipairs(kinds) do words[i] = describe(w) end
      local list = #words > 2 and table.concat(words, ", ", 1, #words - 1) .. " or " .. words[#words]
        or table.concat(words, " or ")
      M.raise("%s: option '%s' must be %s, got %s", where, k, list, type(v))
    end
    out[k] = kind == "duration" and seconds(where, k, v) or v
  end
  return out
end

-- A duration option as seconds, or a raise naming the function and the option.
M.duration = seconds

return M
