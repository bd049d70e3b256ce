-- pacer.cli.mock: `pacer mock [--port P] [--rate R] ...`, the mock API in the foreground.
local pacer = require "pacer"

local USAGE = [[
usage: pacer mock [--host H] [--port P] [--rate R] [--burst N] [--mode gcra|fixed]
                  [--fail P] [--fail-status S] [--drop P] [--latency D] [--key K]
  --rate R     limit, e.g. 5/s, 50/min, 100/30s (default 50/s)
  --burst N    requests allowed back to back (default: the whole limit)
  --mode M     gcra (smooth, default) or fixed (fixed windows)
  --fail P     probability 0..1 of an injected 500/503
  --fail-status S  the injected statuses, e.g. 503 or 500,503 (default 500,503)
  --drop P     probability 0..1 of a connection dropped mid-answer
  --latency D  added latency, e.g. 50ms
  --key K      require X-Auth-Token: K
  --no-headers send no RateLimit-* headers (429 and Retry-After only)
]]

local FLAGS = {
  ["--host"] = "host", ["--port"] = "port", ["--rate"] = "rate", ["--burst"] = "burst",
  ["--mode"] = "mode", ["--fail"] = "fail", ["--drop"] = "drop", ["--latency"] = "latency",
  ["--key"] = "key", ["--fail-status"] = "fail_status",
}
local NUMERIC = {port = "integer", burst = "integer", fail = "number", drop = "number"}

-- bad usage: a message and exit status 2, no traceback
local function usage_error(msg)
  io.stderr:write("pacer mock: ", msg, "\n", USAGE)
  return 2
end

return function(...)
  local args = {...}
  local o = {port = 8080}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then
      io.stdout:write(USAGE)
      return
    end
    if a == "--no-headers" then
      o.headers = false
      i = i + 1
      goto next
    end
    local flag, value = a:match("^(%-%-[%w-]+)=(.*)$")
    flag = flag or a
    local name = FLAGS[flag]
    if not name then return usage_error("unknown option '" .. a .. "'") end
    if not value then
      i = i + 1
      value = args[i]
      if value == nil then return usage_error("option " .. flag .. " needs a value") end
    end
    if NUMERIC[name] then
      local n = tonumber(value)
      if not n or (NUMERIC[name] == "integer" and math.type(n) ~= "integer") then
        return usage_error(string.format("%s expects %s, got '%s'", flag,
          NUMERIC[name] == "integer" and "an integer" or "a number", value))
      end
      value = n
    elseif name == "fail_status" then
      local list = {}
      for code in value:gmatch("[^,]+") do
        local n = math.tointeger(tonumber(code))
        if not n or n < 100 or n > 599 then
          return usage_error(string.format("--fail-status expects HTTP statuses like 503 or 500,503, got '%s'", value))
        end
        list[#list + 1] = n
      end
      value = list
    end
    o[name] = value
    i = i + 1
    ::next::
  end
  local ok, mock = pcall(pacer.mock, o)
  if not ok then
    local msg = tostring(mock):gsub("^[^\n]-:%d+: ", "")
    -- the world's refusal (the port is taken) is one line, not a usage error
    local port = msg:match("^pacer%.serve: port (%d+) is in use")
    if port then
      io.stderr:write("pacer mock: port ", port, msg:match(" is in use %b()"), "\n")
      return 1
    end
    return usage_error(msg)
  end
  io.stdout:write(string.format("pacer mock: listening on %s (rate %s, %s%s%s)\n", mock.url,
    o.rate or "50/s", mock.mode, o.fail and (", fail " .. o.fail) or "", o.drop and (", drop " .. o.drop) or ""))
  io.stdout:flush()
  while true do pacer.sleep(3600) end
end
