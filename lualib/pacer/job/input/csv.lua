-- pacer.job.input.csv: a CSV file as rows {field = value}: the header row names the
-- fields; a record with another number of fields, or one the C reader could not parse
-- (runtime/core/csv.c), is a bad row with its line and why.
local M = {}

function M.wrap(r, name)
  local header, width
  local self = {name = name, kind = "file"}
  function self.next()
    for _ = 1, math.huge do -- until a record that is not the header
      local fields, line, why = r:next()
      if fields == nil then return nil end
      if fields == false then return false, line, why end
      if not header then
        header, width = fields, #fields
        local seen = {}
        for i, f in ipairs(header) do
          if f == "" then return false, line, string.format("the header's field %d has no name", i) end
          if seen[f] then return false, line, string.format("the header names %q twice", f) end
          seen[f] = true
        end
      elseif #fields ~= width then
        return false, line, string.format("expected %d field%s, got %d", width, width == 1 and "" or "s", #fields)
      else
        local row = {}
        for i = 1, width do row[header[i]] = fields[i] end
        return row, line
      end
    end
  end
  function self.header() return header end
  function self.hash() return r:hash() end
  function self.close() r:close() end
  return self
end

return M
