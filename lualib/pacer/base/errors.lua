-- pacer.base.errors: the tables returned as `err` ({kind=, message=, ...}) print as their
-- message, so assert(api:get(...)) and tostring(err) say what went wrong.
local M = {}

local Error = {__tostring = function(e) return tostring(e.message or e.kind) end}

function M.new(t) return setmetatable(t, Error) end
function M.is(v) return getmetatable(v) == Error end

return M
