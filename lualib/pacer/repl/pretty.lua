-- pacer.repl.pretty: how the REPL shows values: responses as status, key headers, quota and
-- a truncated body; tables nested with sorted keys, bounded in depth and length.
local cjson = require "cjson"
local response = require "pacer.http.response"
local url = require "pacer.base.url"

local M = {}

local BODY_MAX = 1500
local KEY_HEADERS = {"content-type", "content-length", "retry-after", "etag", "last-modified",
  "cache-control", "location", "ratelimit", "ratelimit-policy", "ratelimit-limit",
  "ratelimit-remaining", "ratelimit-reset", "x-ratelimit-limit", "x-ratelimit-remaining",
  "x-ratelimit-reset"}

local function is_ident(k) return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil end

local function sort_keys(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function scalar(v)
  if type(v) == "string" then return string.format("%q", v):gsub("\\\n", "\\n") end
  if v == cjson.null then return "null" end
  -- JSON numbers decode as floats: show 250, not 250.0
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
    return string.format("%d", v)
  end
  return tostring(v)
end

function M.table(t, indent, depth, seen)
  indent, depth, seen = indent or "", depth or 0, seen or {}
  if seen[t] then return "<cycle>" end
  if depth >= 4 then return "{...}" end
  seen[t] = true
  local keys, n = {}, #t
  for k in pairs(t) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, sort_keys)
  local parts, inner = {}, indent .. "  "
  local shown = 0
  local function item(s)
    shown = shown + 1
    if shown <= 50 then parts[#parts + 1] = inner .. s end
  end
  local function show(v)
    if type(v) == "table" and getmetatable(v) ~= response.Response then return M.table(v, inner, depth + 1, seen) end
    if getmetatable(v) == response.Response then return tostring(v) end
    return scalar(v)
  end
  for i = 1, n do item(show(t[i])) end
  for _, k in ipairs(keys) do -- a field whose name looks secret (x-auth-token, api_key) shows as ***
    local v = type(k) == "string" and url.secret_name(k) and t[k] ~= nil and type(t[k]) ~= "table" and "***"
      or show(t[k])
    item((is_ident(k) and k or ("[" .. scalar(k) .. "]")) .. " = " .. v)
  end
  seen[t] = nil
  if shown == 0 then return "{}" end
  if shown > 50 then parts[#parts + 1] = inner .. string.format("... (%d more)", shown - 50) end
  return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end

function M.response(res)
  local out = {string.format("HTTP %d  %s %s  (%.0f ms%s%s)", res.status, res.method, url.redact(res.url),
    (res.elapsed or 0) * 1000, res.attempts and res.attempts > 1 and (", " .. res.attempts .. " attempts") or "",
    res.cached and ", from cache" or "")}
  for _, h in ipairs(KEY_HEADERS) do
    local v = rawget(res.headers, h)
    if v then out[#out + 1] = h .. ": " .. v end
  end
  local q = res.quota
  if q then
    out[#out + 1] = string.format("quota: %s of %s left%s%s", tostring(q.remaining or "?"), tostring(q.limit or "?"),
      q.reset and string.format(", resets in %gs", q.reset) or "", q.policy and (" (" .. q.policy .. ")") or "")
  end
  local body = res.body or ""
  local ok, decoded = pcall(cjson.decode, body)
  local shown = ok and type(decoded) == "table" and M.table(decoded) or body
  if #shown > BODY_MAX then
    shown = shown:sub(1, BODY_MAX) .. string.format("\n... (body is %d bytes)", #body)
  end
  out[#out + 1] = ""
  out[#out + 1] = shown
  return table.concat(out, "\n")
end

-- show(...) -> the text the REPL prints for these values
function M.show(...)
  local parts = {}
  local n = select("#", ...)

  for i = 1, n do
    local v = select(i, ...)
    local mt = getmetatable(v)
    if mt == response.Response then parts[i] = M.response(v)
    elseif type(v) == "table" and type(mt) == "table" and mt.__name then parts[i] = tostring(v) -- an object: one line
    elseif type(v) == "table" then parts[i] = M.table(v)
    elseif type(v) == "string" then parts[i] = v
    else parts[i] = scalar(v) end
  end
  return table.concat(parts, "\t")
end

return M
