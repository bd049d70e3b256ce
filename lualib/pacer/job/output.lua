-- pacer.job.output: the outcome file of a job, one line per input row in input order,
-- from its ledger: JSON lines (.jsonl / .ndjson) or CSV (.csv), each with key, line,
-- outcome (done | failed | invalid | duplicate | pending), attempts, and reason or result.
-- Written to a temporary file beside the target, then renamed: never half a file.
local cjson = require "cjson"
local opts = require "pacer.base.options"

local M = {}

local function format_of(path)
  local ext = tostring(path):lower():match("%.(%w+)$")
  return (ext == "jsonl" or ext == "ndjson") and "jsonl" or ext == "csv" and "csv" or nil
end

-- Raises unless `path` names a format we write.
function M.check(path)
  if not format_of(path) then
    opts.raise("pacer.job: output must end in .jsonl, .ndjson or .csv, got %q", tostring(path))
  end
end

local function outcome(r) return r.state == "leased" and "pending" or r.state end

local function json_line(r)
  local parts = {'{"key":', cjson.encode(r.key or cjson.null), ',"line":', tostring(r.line or 0), ',"outcome":"',
    outcome(r), '","attempts":', tostring(r.attempts or 0)}
  if r.state == "done" then
    parts[#parts + 1] = ',"result":' .. (r.result or "null")
  elseif r.reason then
    parts[#parts + 1] = ',"reason":' .. cjson.encode(r.reason)
  end
  parts[#parts + 1] = "}\n"
  return table.concat(parts)
end

local function csv_field(s)
  s = tostring(s or "")
  if s:find('[,"\r\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

local function csv_line(r)
  return table.concat({csv_field(r.key), tostring(r.line or 0), outcome(r), tostring(r.attempts or 0),
    csv_field(r.state ~= "done" and r.reason or ""), csv_field(r.state == "done" and r.result or "")}, ",") .. "\n"
end

-- Writes the outcomes of ledger L to path; returns the number of lines (rows) written.
function M.write(path, L)
  M.check(path)
  local csv = format_of(path) == "csv"
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "w")
  if not f then opts.raise("pacer.job: cannot write the outcomes: %s", err) end
  f:setvbuf("full", 1 << 16)
  if csv then f:write("key,line,outcome,attempts,reason,result\n") end
  local line = csv and csv_line or json_line
  local n, after = 0, 0
  for _ = 1, math.huge do
    local recs = L:outcomes(after, 2000)
    if #recs == 0 then break end
    for _, r in ipairs(recs) do f:write(line(r)) end
    n = n + #recs
    after = recs[#recs].seq
  end
  local ok, werr = f:close()
  if not ok then
    os.remove(tmp)
    opts.raise("pacer.job: cannot write the outcomes to %s: %s", path, tostring(werr))
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then opts.raise("pacer.job: cannot write the outcomes to %s: %s", path, tostring(rerr)) end
  return n
end

return M
