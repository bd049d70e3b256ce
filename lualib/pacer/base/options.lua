-- pacer.opts: checking of option tables, so misuse raises a message that names the
-- function, the option and what it accepts, at the user's line (not ours).
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

-- spec: {name = "string" | "number" | ... | "duration" | "rate" | {"number", "string"}}
-- later = names accepted by the API but not yet built.
function M.check(where, t, spec, later)
  if type(t) ~= "table" then
    M.raise("%s: expected a table of options, got %s", where, type(t))
  end
  for k, v in pairs(t) do
    local want = spec[k]
    if want == nil then
      if later and later[k] then
        M.raise("%s: option '%s' is not available in this version of pacer", where, tostring(k))
      end
      M.raise("%s: unknown option '%s' (known: %s)", where, tostring(k), sorted_keys(spec))
    end
    if want ~= "any" then
      local ok = false
      local kinds = type(want) == "table" and want or nil
      if not kinds then
        -- the common case, one accepted kind, without building a table
        local tv = type(v)
        ok = tv == want or ((want == "duration" or want == "rate") and (tv == "number" or tv == "string"))
          or (want == "integer" and math.type(v) == "integer")
          or (want == "callable" and (tv == "function" or (getmetatable(v) or {}).__call ~= nil))
        kinds = {want}
      end
      for _, kind in ipairs(ok and {} or kinds) do
        if kind == "duration" then
          ok = ok or type(v) == "number" or type(v) == "string"
        elseif kind == "rate" then
          ok = ok or type(v) == "number" or type(v) == "string"
        elseif kind == "integer" then
          ok = ok or math.type(v) == "integer"
        elseif kind == "callable" then
          ok = ok or type(v) == "function" or (getmetatable(v) or {}).__call ~= nil
        else
          ok = ok or type(v) == kind
        end
      end
      if not ok then
        local words = {}
        for _, kind in ipairs(kinds) do
          words[#words + 1] = kind == "duration" and "a duration (seconds or \"250ms\")"
            or kind == "rate" and "a rate (\"10/s\" or a number)"
            or kind == "integer" and "an integer" or ("a " .. kind)
        end
        M.raise("%s: option '%s' must be %s, got %s", where, k, table.concat(words, " or "), type(v))
      end
    end
  end
  return t
end

-- A duration option as seconds, or a raise naming the function and the option.
function M.duration(where, name, v)
  local ok, secs = pcall(require("pacer.c.corelib").parse_duration, v)
  if not ok then M.raise("%s: option '%s': %s", where, name, secs) end
  return secs
end

return M
