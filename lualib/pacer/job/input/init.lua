-- pacer.job.input: the one place that picks how a job's input is read, by what it is:
--   "x.csv"              CSV with a header row (input/csv.lua)
--   "x.jsonl", ".ndjson" one JSON object a line (input/jsonl.lua)
--   "-"                  standard input, CSV or JSONL by its first byte (or format =)
--   a Lua list           its elements, in order
--   an iterator function called until it returns nil
-- Every reader is read once, front to back, with flat memory, and gives records
--   row, line          (line: the input's own line, or the element's number)
--   false, line, why   (a row that does not parse: it becomes an `invalid` item)
-- plus hash() -> a fingerprint of everything read (SHA-256 for files and stdin) and
-- name (for messages: "numbers.csv"). stat() gives a file's size and mtime, or nil.
local cinput = require "pacer.c.input"
local crypto = require "pacer.c.crypto"
local cjson = require "cjson"
local opts = require "pacer.base.options"

local M = {}

local FORMATS = {csv = "pacer.job.input.csv", jsonl = "pacer.job.input.jsonl"}

-- The format of a path by its name: "csv" | "jsonl" | nil.
function M.format_of(path)
  local ext = tostring(path):lower():match("%.(%w+)$")
  if ext == "csv" then return "csv" end
  if ext == "jsonl" or ext == "ndjson" then return "jsonl" end
end

-- A reader over a list or an iterator: the rows as given; the fingerprint chains an
-- HMAC-SHA256 over each row's JSON (a row that is not JSON is an invalid item).
local function values(next_value, name)
  local n, h = 0, "0"
  return {name = name, kind = "values",
    next = function()
      local v = next_value()
      if v == nil then return nil end
      n = n + 1
      local ok, enc = pcall(cjson.encode, v)
      h = crypto.hmac_sha256(h, ok and enc or "?")
      if not ok then return false, n, "not storable as JSON: " .. enc end
      return v, n
    end,
    hash = function() return h end,
    close = function() end}
end

-- The reader of o.input (already checked to be a string, table or function).
-- format: "csv" | "jsonl" | nil (by the name; for "-", by the first byte).
function M.open(input, format)
  if type(input) == "table" then
    local i = 0
    return values(function() i = i + 1 return input[i] end, "input")
  end
  if type(input) == "function" then return values(input, "input") end
  format = format or M.format_of(input)
  if input ~= "-" and not format then
    opts.raise("pacer.job: cannot tell the format of %q: name it .csv, .jsonl or .ndjson, or give format = "
      .. "\"csv\" | \"jsonl\"", input)
  end
  local r, err = cinput.open(input, format == "csv" and "csv" or format == "jsonl" and "lines" or "auto")
  if not r then opts.raise("pacer.job: %s", err) end
  format = format or (r:mode() == "lines" and "jsonl" or "csv")
  local name = input == "-" and "stdin" or input
  return require(FORMATS[format]).wrap(r, name)
end

-- A file's size and modification time, or nil (stdin, lists, iterators).
function M.stat(input)
  if type(input) ~= "string" or input == "-" then return nil end
  return cinput.stat(input)
end

M.hash_file = cinput.hash_file

return M
