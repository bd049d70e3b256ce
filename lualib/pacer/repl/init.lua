-- pacer.repl: the interactive prompt, in the manner of lua.c: `return <line>` is tried
-- first, incomplete chunks keep reading, values are pretty-printed. Each statement runs
-- as its own task on the loop; Ctrl-C stops waiting for it (it goes on in the
-- background), Ctrl-D exits. History in ~/.pacer_history; Tab completes names.
local crepl = require "pacer.c.repl"
local pretty = require "pacer.repl.pretty"
local task = require "pacer.c.task"
local context = require "pacer.base.context"

local M = {}

-- methods of pacer objects that are the attempt loop's hooks, not for users
local HIDDEN = {pace = true, before_attempt = true, after_attempt = true, gave_up = true, event = true,
  achieved = true, rate = true, new = true}

local KEYWORDS = {"and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto",
  "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"}

-- Candidates for `text` ("pacer.re", "api:ge", "pri"): fields of the table the prefix
-- names, methods through __index tables, globals and keywords.
function M.complete(text)
  local base, sep, partial = text:match("^(.-)([%.:])([%w_]*)$")
  local scope, prefix
  if base then
    scope = _G
    for name in base:gmatch("[^%.:]+") do
      if type(scope) ~= "table" and type(scope) ~= "userdata" then return {} end
      local ok, v = pcall(function() return scope[name] end)
      if not ok then return {} end
      scope = v
    end
    prefix = base .. sep
  else
    scope, partial, prefix = _G, text, ""
  end
  local seen, out = {}, {}
  local function add(k, v)
    -- public names only: not _private, not metamethods
    if type(k) == "string" and k:match("^%a[%w_]*$") and k:sub(1, #partial) == partial and not seen[k]
       and (sep ~= ":" or not HIDDEN[k]) then
      if sep == ":" and type(v) ~= "function" then return end
      seen[k] = true
      out[#out + 1] = prefix .. k
    end
  end
  local t, guard = scope, 0
  while t ~= nil and guard < 5 do
    if type(t) == "table" then for k, v in pairs(t) do add(k, v) end end
    local mt = getmetatable(t)
    t = type(mt) == "table" and type(mt.__index) == "table" and mt.__index or nil
    guard = guard + 1
  end
  if not base then for _, k in ipairs(KEYWORDS) do add(k) end end
  table.sort(out)
  return out
end

local function history_path()
  local home = os.getenv("HOME")
  return home and (home .. "/.pacer_history") or nil
end

-- Compiles a line, reading more while the chunk is incomplete. Returns fn or nil, err;
-- nil, nil at end of input; false after Ctrl-C (the pending chunk is dropped).
local function read_chunk()
  local line = crepl.readline("> ")
  if line == nil then return nil, nil end
  if line == false then return false end
  local buffer = line
  local function compile()
    local f, e1 = load("return " .. buffer, "=stdin", "t") -- an expression prints its value
    if f then return f end
    local g, e2 = load(buffer, "=stdin", "t")
    if g then return g end
    -- incomplete either way ("1 +", "{1,", "function f()"): read on
    return nil, e2, e1:find("<eof>$") or e2:find("<eof>$")
  end
  local fn, err, incomplete = compile()
  while not fn and incomplete do
    local more = crepl.readline(">> ")
    if more == nil then break end
    if more == false then return false end -- Ctrl-C at ">>": start over
    buffer = buffer .. "\n" .. more
    fn, err, incomplete = compile()
  end
  if buffer:find("%S") then crepl.add_history(buffer) end
  return fn, err, buffer
end

local current = 0 -- which statement the prompt waits for

local function run(fn)
  current = current + 1
  local id = current
  task.spawn(function()
    context.set("priority", context.REPL_PRIORITY) -- typed at the prompt: ahead of background work
    local r = table.pack(xpcall(fn, debug.traceback))
    if id == current then crepl.statement_done(r) end
  end)
  return crepl.wait_statement()
end

-- main(chunk, ...): runs the script chunk (if any), then the prompt.
function M.main(chunk, ...)
  if chunk then
    local ok, err = xpcall(chunk, debug.traceback, ...)
    if not ok then io.stderr:write("pacer: ", tostring(err), "\n") end
  end
  crepl.set_completer(M.complete)
  local hist = history_path()
  if hist then crepl.read_history(hist) end
  io.stdout:write(string.format("pacer %s (Lua 5.4): requests run on the loop; Ctrl-C stops waiting, Ctrl-D exits\n",
    pacer.version))
  while true do
    local fn, err, src = read_chunk()
    if fn == nil and err == nil then break end
    if fn == false then -- Ctrl-C at the prompt: a fresh one
      goto continue
    elseif not fn then
      io.stdout:write(err, "\n")
    elseif src:find("%S") then
      local r = run(fn)
      if r == "interrupted" then
        io.stdout:write("interrupted (the statement goes on in the background)\n")
      elseif r[1] then
        if r.n > 1 then io.stdout:write(pretty.show(table.unpack(r, 2, r.n)), "\n") end -- as lua does
      else
        io.stdout:write(tostring(r[2]), "\n")
      end
    end
    io.stdout:flush()
    ::continue::
  end
  io.stdout:write("\n")
  if hist then crepl.write_history(hist) end
end

return M
