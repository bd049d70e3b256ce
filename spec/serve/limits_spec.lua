-- spec/serve/limits_spec.lua: what a hostile client cannot do to pacer.serve (issue #15,
-- items 1-3): exhaust its file descriptors into a busy loop and a log flood, keep a
-- request open by sending its body slowly, or grow its memory by pipelining requests and
-- never reading the answers. The clients are spec/serve/hostile/hostile.py; where CPU,
-- memory or stderr are measured, the listener runs in a process of its own
-- (spec/serve/hostile/server.lua), under `ulimit -n 256` where file descriptors are the
-- point. Every client is bounded in count and time.
local H = dofile("spec/support/helpers.lua")

local CLIENT = "python3 spec/serve/hostile/hostile.py"

-- Connections the kernel has established to `port` on 127.0.0.1 (/proc/net/tcp, state 01).
local function established(port)
  local n = 0
  for line in io.lines("/proc/net/tcp") do
    local lport, st = line:match("^%s*%d+: %x+:(%x+) %x+:%x+ (%x%x)")
    if lport and tonumber(lport, 16) == port and st == "01" then n = n + 1 end
  end
  return n
end

local function json_of(out)
  local ok, v = pcall(pacer.json.decode, out)
  assert(ok and type(v) == "table", "the client printed no result: " .. tostring(out))
  return v
end

-- Starts spec/serve/hostile/server.lua in a process of its own; o.ulimit caps its file
-- descriptors, o.options are pacer.serve options. Returns {port=, pid=, stderr=, stop=}.
local function listener(o)
  o = o or {}
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  local info = dir .. "/info"
  local cmd = string.format("%s spec/serve/hostile/server.lua %s %s", H.q(H.PACER), info,
    o.options and H.q(pacer.json.encode(o.options)) or "")
  if o.ulimit then cmd = string.format("ulimit -n %d && exec %s", o.ulimit, cmd) end
  -- stderr through head: a flood of warnings (the old listener wrote ~45 MB/s) stays bounded
  os.execute(string.format("(sh -c %s 2>&1 | head -c 1000000 >%s/stderr) </dev/null >/dev/null 2>&1 &", H.q(cmd), dir))
  local text
  for _ = 1, 100 do
    text = H.read_file(info)
    if text then break end
    pacer.sleep(0.05)
  end
  assert(text, "the listener did not start: " .. (H.read_file(dir .. "/stderr") or ""))
  local port, pid = text:match("^(%d+) (%d+)")
  local l = {port = tonumber(port), pid = tonumber(pid)}
  function l.stderr() return H.read_file(dir .. "/stderr") or "" end
  function l.stop()
    local f = io.open(info .. ".stop", "w")
    f:close()
    for _ = 1, 60 do -- it checks every 0.1 s
      if not os.execute(string.format("kill -0 %d 2>/dev/null", l.pid)) then break end
      pacer.sleep(0.05)
    end
    os.execute(string.format("kill -9 %d 2>/dev/null", l.pid))
    local err = l.stderr()
    os.execute("rm -rf " .. dir)
    return err
  end
  return l
end

local function lines_matching(text, pattern)
  local n = 0
  for line in text:gmatch("[^\n]+") do
    if line:find(pattern, 1, true) then n = n + 1 end
  end
  return n
end

describe("pacer.serve under hostile clients", function()
  it("caps connections: under ulimit -n 256, 400 idle ones neither peg the CPU nor flood the log", function()
    local l = listener{ulimit = 256} -- max_connections defaults to 256 - 64 = 192
    local r = json_of(H.sh(string.format("%s flood %d %d 400 3", CLIENT, l.port, l.pid), 20))
    local err = l.stop()
    assert.are.equal(400, r.opened)
    assert.is_true(r.cpu < 0.25, string.format("the listener used %.0f%% of a CPU", r.cpu * 100))
    assert.is_true(#err < 1000, #err .. " bytes on stderr:\n" .. err:sub(1, 500))
    assert.are.equal(1, lines_matching(err, "192 connections open (max_connections): new ones wait until one closes"),
      err)
    assert.are.equal(200, r.status, "a new client was not served once the idle ones closed")
    assert.is_true(r.served_in < 5, "served after " .. r.served_in .. " s")
  end)

  it("pauses accepting when out of file descriptors (EMFILE) instead of spinning: one warning", function()
    local l = listener{ulimit = 256, options = {max_connections = 1000}} -- more than the process can open
    local r = json_of(H.sh(string.format("%s flood %d %d 400 3", CLIENT, l.port, l.pid), 20))
    local err = l.stop()
    assert.is_true(r.cpu < 0.25, string.format("the listener used %.0f%% of a CPU", r.cpu * 100))
    assert.is_true(#err < 1000, #err .. " bytes on stderr:\n" .. err:sub(1, 500))
    assert.are.equal(1, lines_matching(err, "cannot accept connections: Too many open files"), err)
    assert.are.equal(200, r.status, "a new client was not served once the idle ones closed")
    assert.is_true(r.served_in < 5, "served after " .. r.served_in .. " s")
  end)

  it("lets a client wait in the backlog at max_connections and serves it once a connection closes", function()
    local srv = pacer.serve{max_connections = 2, routes = {["GET /"] = function() return 200, "ok" end}}
    local t = pacer.spawn(function() -- two idle connections, held 1.5 s
      return H.sh(string.format("%s flood %d %d 2 1", CLIENT, srv.port, require("pacer.c.proc").pid()), 10)
    end)
    -- (until the kernel holds both: a slow start of python3 must not let ours in first)
    for _ = 1, 100 do
      if established(srv.port) >= 2 then break end
      pacer.sleep(0.05)
    end
    assert.are.equal(2, established(srv.port))
    pacer.sleep(0.1) -- (for the server to take them)
    local t0 = pacer.now()
    local res = assert(pacer.request{url = srv.url .. "/", retry = false, timeout = 5})
    local waited = pacer.now() - t0
    local _, out = t:wait()
    srv.close()
    assert.are.equal(200, res.status)
    assert.is_true(waited > 0.8, "served after " .. waited .. " s, before a connection closed")
    assert.are.equal(200, json_of(out).status)
  end)

  it("closes a slow body (1 byte a second) at body_timeout with 408", function()
    local srv = pacer.serve{body_timeout = 2.5, routes = {["POST /upload"] = function() return 200, "got it" end}}
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" .. string.rep("x", 100))
    f:close()
    local r = json_of(H.sh(string.format("%s drip %d %s 1 10", CLIENT, srv.port, path), 15))
    os.remove(path)
    srv.close()
    assert.are.equal("408", r.response:match("^HTTP/1%.1 (%d+)"), r.response)
    assert.matches('{"error":"request body not received in time"}', r.response, 1, true)
    assert.is_true(r.closed, "the connection stayed open")
    assert.is_true(r.elapsed > 2 and r.elapsed < 5, "closed after " .. r.elapsed .. " s")
    assert.is_true(r.body_bytes_sent < 10, r.body_bytes_sent .. " bytes of body went in")
  end)

  -- Pipelines `n` GETs of `path` for up to 4 s without reading; returns the client's
  -- result and how many MB the listener's resident memory grew meanwhile.
  local function pipeline(path, n)
    local l = listener{}
    local r = json_of(H.sh(string.format("%s pipeline %d %d %s 4 %d", CLIENT, l.port, l.pid, path, n), 20))
    l.stop()
    return r, (r.rss_max_kb - r.rss_before_kb) / 1024
  end

  it("stops reading a client that pipelines and never reads: memory stays bounded", function()
    -- 10,000 requests for 16 KiB each: 160 MB of answers if the listener kept reading
    local _, grew = pipeline("/big", 10000)
    assert.is_true(grew < 16, string.format("the listener grew by %.1f MB", grew))
  end)

  it("stops reading a connection while its answer is pending: pipelined input stays in the kernel", function()
    -- GET /slow takes 2 s; 600,000 requests behind it are 20 MB if the listener read them
    local r, grew = pipeline("/slow", 600000)
    assert.is_true(grew < 8, string.format("the listener grew by %.1f MB", grew))
    assert.is_true(r.queued_requests < 600000, "all of the input was taken")
  end)

  it("checks max_connections and body_timeout", function()
    local message = H.message
    assert.are.equal("pacer.serve: 'max_connections' must be positive",
      message(function() pacer.serve{max_connections = 0, handler = function() end} end))
    assert.are.equal("pacer.serve: option 'max_connections' must be an integer, got string",
      message(function() pacer.serve{max_connections = "2", handler = function() end} end))
    assert.are.equal("pacer.serve: 'body_timeout' must be positive",
      message(function() pacer.serve{body_timeout = 0, handler = function() end} end))
    local srv = pacer.serve{body_timeout = "1m", max_connections = 10, handler = function() return 204 end}
    assert.are.equal(204, assert(pacer.request{url = srv.url, retry = false}).status)
    srv.close()
  end)
end)
