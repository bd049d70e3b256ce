-- spec/http/proxy_spec.lua: the proxy variables of the environment, as curl reads them:
-- http_proxy sends a request through the proxy, no_proxy exempts a host, and with none
-- set requests go straight to their host. The script is its own proxy: a listener on the
-- port the variable names, which records the request targets it is sent.
local H = dofile("spec/support/helpers.lua")

-- 127.0.0.2:9 (loopback, discard port, nothing listens): reached only through the proxy
local SCRIPT = [[
local seen = {}
local srv = pacer.serve{port = tonumber(os.getenv("PROXY_PORT")), handler = function(req)
  seen[#seen + 1] = req.path
  return 200, "via the proxy"
end}
local res, err = pacer.request{url = "http://127.0.0.2:9/x", retry = false, timeout = 5}
print(res and res.body or ("error: " .. err.kind), "targets: " .. table.concat(seen, " "))
srv.close()
]]

local function run(env)
  local port = H.free_port()
  return H.run_pacer({"-q", H.script(SCRIPT)},
    {env = string.format("env -u http_proxy -u all_proxy -u no_proxy PROXY_PORT=%d %s", port, env:gsub("PORT", port))})
end

describe("proxy variables", function()
  teardown(H.remove_scripts)

  it("http_proxy: the request goes to the proxy, in absolute form", function()
    local r = run("http_proxy=http://127.0.0.1:PORT")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("via the proxy\ttargets: http://127.0.0.2:9/x\n", r.stdout, 1, true)
  end)

  it("no_proxy names the host: it is reached directly (and refuses)", function()
    local r = run("http_proxy=http://127.0.0.1:PORT no_proxy=127.0.0.2")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("error: connect\ttargets: \n", r.stdout, 1, true)
  end)

  it("no proxy variable: straight to the host", function()
    local r = run("")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("error: connect\ttargets: \n", r.stdout, 1, true)
  end)
end)
