-- spec/serve/hostile/server.lua INFO [OPTIONS_JSON]: a pacer.serve listener for the
-- hostile-client specs, in a process of its own (so that its CPU, memory and stderr can
-- be measured, and it can run under `ulimit -n`). Writes "PORT PID" to INFO, then runs
-- until INFO.stop exists or 60 s pass.
local info, json = arg[1], arg[2]
local o = json and pacer.json.decode(json) or {}
for k, v in pairs(o) do o[k] = math.tointeger(v) or v end -- JSON numbers come back as floats
o.routes = {
  ["GET /"] = function() return 200, "ok" end,
  ["GET /big"] = function() return 200, string.rep("b", 16 * 1024) end,
  ["GET /slow"] = function() pacer.sleep(2) return 200, "slow" end,
  ["POST /upload"] = function(req) return 200, {n = #req.body} end,
}
local srv = pacer.serve(o)
local f = assert(io.open(info .. ".tmp", "w"))
f:write(srv.port, " ", require("pacer.c.proc").pid(), "\n")
f:close()
os.rename(info .. ".tmp", info)
local deadline = pacer.now() + 60
while pacer.now() < deadline do
  local stop = io.open(info .. ".stop")
  if stop then stop:close() break end
  pacer.sleep(0.1)
end
srv.close()
