-- pacer.cli.job: `pacer job status LEDGER` (counts by outcome, the last run's rate and
-- an ETA for what is left) and `pacer job export LEDGER -o FILE` (the outcome file).
-- LEDGER: an SQLite ledger file, or redis://HOST:PORT[/NAME] (NAME may be left out when
-- that Redis holds one job).
local task = require "pacer.c.task"
local proc = require "pacer.c.proc"
local family = require "pacer.job.ledger"
local output = require "pacer.job.output"

local USAGE = [[
usage: pacer job status LEDGER            counts by outcome, the last run's rate and ETA
       pacer job export LEDGER -o FILE    the outcome of every row, as .jsonl or .csv
  LEDGER  a job's SQLite ledger (numbers.csv.ledger.db) or redis://HOST:PORT[/NAME]
]]

local function usage_error(msg)
  io.stderr:write("pacer job: ", msg, "\n", USAGE)
  return 2
end

local function fail(msg)
  io.stderr:write("pacer job: ", msg, "\n")
  return 1
end

-- The ledger named on the command line, or nil, why.
local function open(where)
  local url, name = where:match("^(redis://[^/]+)/?(.*)$")
  if url then
    if name == "" then
      local names = require("pacer.job.ledger.redis").names(url)
      if #names == 0 then return nil, "no job in " .. url end
      if #names > 1 then
        return nil, string.format("%s holds several jobs: %s; name one: %s/NAME", url, table.concat(names, ", "), url)
      end
      name = names[1]
    end
    local L = family.open(url, name)
    if not L:meta() then
      L:close()
      return nil, string.format("no job '%s' in %s", name, url)
    end
    return L, name
  end
  local f = io.open(where, "rb")
  if not f then return nil, "cannot open " .. where end
  f:close()
  local ok, L = pcall(family.open, where, nil, {inspect = true})
  if not ok then return nil, (tostring(L):gsub("^[^\n]-:%d+: ", "")) end
  if not L:meta() then
    L:close()
    return nil, where .. " is not a job's ledger"
  end
  return L, L:meta().name or where
end

local function eta(s)
  if s ~= s or s == math.huge then return "--" end
  if s >= 3600 then return string.format("%dh%02dm", s // 3600, (s % 3600) // 60) end
  if s >= 60 then return string.format("%dm%02ds", s // 60, math.floor(s % 60)) end
  return string.format("%.0fs", math.ceil(s))
end

local function status(L, name, where)
  local m, c = L:meta(), L:counts()
  local out = {string.format("job '%s': %d items from %s (ledger %s)", name, c.total, m.source or "?", where),
    string.format("  done %d  failed %d  invalid %d  duplicate %d  pending %d", c.done, c.failed, c.invalid,
      c.duplicate, c.pending + c.leased)}
  if m.loaded ~= 1 then out[#out + 1] = "  the input is still being loaded" end
  if m.run_items then
    local rate = m.run_elapsed and m.run_elapsed > 0 and m.run_items / m.run_elapsed or 0
    local ago = task.wall() - (m.run_updated or 0)
    local live = m.run_pid and ago < 3 and proc.pid_alive(math.tointeger(m.run_pid)) -- heartbeats each second
    out[#out + 1] = string.format("  last run: %d items in %.1fs (%.1f/s), %s", m.run_items, m.run_elapsed or 0,
      rate, live and "running now" or string.format("ended %s ago", eta(ago)))
    local left = c.pending + c.leased
    if left > 0 then
      out[#out + 1] = string.format("  ETA for the %d left: %s at that rate", left, rate > 0 and eta(left / rate)
        or "--")
    end
  end
  io.stdout:write(table.concat(out, "\n"), "\n")
end

return function(verb, where, ...)
  local rest = {...}
  if verb == "-h" or verb == "--help" or verb == nil then
    io.stdout:write(USAGE)
    return verb == nil and 2 or 0
  end
  if verb ~= "status" and verb ~= "export" then return usage_error("unknown verb '" .. tostring(verb) .. "'") end
  if not where then return usage_error(verb .. " needs a LEDGER") end
  local out
  if verb == "export" then
    if rest[1] ~= "-o" or not rest[2] or rest[3] then return usage_error("export needs -o FILE") end
    out = rest[2]
    local ok, err = pcall(output.check, out)
    if not ok then return usage_error((tostring(err):gsub("^[^\n]-:%d+: ", ""):gsub("^pacer%.job: ", ""))) end
  elseif #rest > 0 then
    return usage_error("status takes only a LEDGER")
  end
  local L, name = open(where)
  if not L then return fail(name) end
  local ok, err = pcall(function()
    if verb == "status" then
      status(L, name, where)
    else
      local n = output.write(out, L)
      io.stdout:write(string.format("pacer job: %d outcomes of job '%s' written to %s\n", n, name, out))
    end
  end)
  L:close()
  if not ok then return fail((tostring(err):gsub("^[^\n]-:%d+: ", ""))) end
end
