-- pacer.job.input.jsonl: one JSON object a line (JSON Lines / NDJSON); blank lines are
-- not rows; a line that is not a JSON object is a bad row with its line and why.
local cjson = require "cjson"

local M = {}

function M.wrap(r, name)
  local self = {name = name, kind = "file"}
  function self.next()
    local fields, line, why = r:next()
    if fields == nil then return nil end
    if fields == false then return false, line, why end
    local ok, row = pcall(cjson.decode, fields[1])
    if not ok then return false, line, "invalid JSON: " .. tostring(row):gsub("^Expected", "expected") end
    if type(row) ~= "table" then return false, line, "expected a JSON object, got " .. type(row) end
    return row, line
  end
  function self.hash() return r:hash() end
  function self.close() r:close() end
  return self
end

return M
