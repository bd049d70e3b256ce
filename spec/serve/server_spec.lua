-- spec/serve/server_spec.lua: pacer.serve: routing, JSON answers, handler errors, keep-alive,
-- limits (413/431/400/408), close, the loopback default and one task per request.
-- Raw bytes go through bash's /dev/tcp and curl, run in the background (our own server
-- lives in this process, so a blocking os.execute would stall it).
local H = dofile("spec/support/helpers.lua")

local message = H.message

local sh = H.sh

-- Sends `raw` bytes to 127.0.0.1:port over one TCP connection and returns what came back.
local function raw_tcp(port, raw, limit)
  limit = limit or 3
  local f = os.tmpname()
  local fh = assert(io.open(f, "wb"))
  fh:write(raw)
  fh:close()
  local out = sh(string.format("timeout %d bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d; cat %s >&3; cat <&3'",
    limit, port, f), limit + 2)
  os.remove(f)
  return out
end

local function status_of(raw) return tonumber(raw:match("^HTTP/1%.1 (%d+)")) end

describe("pacer.serve", function()
  local srv, inflight, max_inflight
  local seen = {}
  setup(function()
    inflight, max_inflight = 0, 0
    srv = pacer.serve{max_body = 100, max_header_bytes = 512, max_headers = 20, header_timeout = 1, routes = {
      ["GET /a"] = function() return 200, "get a", {["Content-Type"] = "text/plain"} end,
      ["POST /a"] = function(req) return 201, "post a " .. req.body end,
      ["* /any"] = function(req) return 200, {method = req.method} end,
      ["* /files/*"] = function(req) return 200, {route = "files", path = req.path} end,
      ["GET /files/deep/*"] = function(req) return 200, {route = "deep", path = req.path} end,
      ["GET /table"] = function(req) return 200, {list = {1, 2, 3}, q = req.query} end,
      ["GET /custom"] = function() return 202, {a = 1}, {["Content-Type"] = "application/vnd.x+json", ["X-Extra"] = "yes"} end,
      ["GET /boom"] = function() error("handler exploded") end,
      ["GET /badheader"] = function() return 200, "x", {["X-A"] = "a\r\nb"} end,
      ["GET /badstatus"] = function() return 99, "x" end,
      ["GET /silent"] = function() end,
      ["POST /echo"] = function(req)
        seen[#seen + 1] = req.path
        local body, err = req:json()
        return 200, {body = body, err = err, raw = req.body, n = #req.body}
      end,
      ["GET /self"] = function(_, h) h:respond(203, {["X-Self"] = "1"}, "answered myself") end,
      ["GET /drop"] = function(_, h) h:drop() end,
      ["GET /sleep"] = function()
        inflight = inflight + 1
        if inflight > max_inflight then max_inflight = inflight end
        pacer.sleep(0.2)
        inflight = inflight - 1
        return 200, {slept = 0.2}
      end,
    }}
  end)
  teardown(function() srv.close() end)

  local function get(path, o)
    o = o or {}
    o.url = srv.url .. path
    o.retry = false
    return pacer.request(o)
  end

  it("exposes port, url and host", function()
    assert.are.equal("integer", math.type(srv.port))
    assert.is_true(srv.port > 0 and srv.port < 65536)
    assert.are.equal("127.0.0.1", srv.host)
    assert.are.equal("http://127.0.0.1:" .. srv.port, srv.url)
  end)

  it("routes by exact METHOD and path", function()
    local r1 = assert(get("/a"))
    assert.are.equal(200, r1.status)
    assert.are.equal("get a", r1.body)
    assert.are.equal("text/plain", r1.headers["content-type"])
    local r2 = assert(get("/a", {method = "POST", body = "x", headers = {["Content-Type"] = "text/plain"}}))
    assert.are.equal(201, r2.status)
    assert.are.equal("post a x", r2.body)
  end)

  it("answers 404 with a JSON error for an unknown path or method", function()
    local r = assert(get("/nope"))
    assert.are.equal(404, r.status)
    assert.are.same({error = "no route for GET /nope"}, r:json())
    assert.are.equal("application/json", r.headers["content-type"])
    r = assert(get("/a", {method = "DELETE"}))
    assert.are.equal(404, r.status)
    assert.are.same({error = "no route for DELETE /a"}, r:json())
    -- an exact route does not match deeper paths
    assert.are.equal(404, get("/a/b").status)
  end)

  it("'* /path' matches any method", function()
    for _, m in ipairs{"GET", "POST", "PUT", "DELETE", "PATCH"} do
      local r = assert(get("/any", {method = m}))
      assert.are.equal(200, r.status)
      assert.are.equal(m, r:json().method)
    end
  end)

  it("'* /prefix/*' matches below the prefix; the longest prefix wins", function()
    local r = assert(get("/files/x/y.txt?z=1"))
    assert.are.same({route = "files", path = "/files/x/y.txt"}, r:json())
    r = assert(get("/files/deep/er"))
    assert.are.same({route = "deep", path = "/files/deep/er"}, r:json())
    -- "GET /files/deep/*" is for GET only: a POST falls back to "* /files/*"
    r = assert(get("/files/deep/er", {method = "POST", body = "", headers = {["Content-Type"] = "text/plain"}}))
    assert.are.same({route = "files", path = "/files/deep/er"}, r:json())
    assert.are.equal(404, get("/filesx").status)
  end)

  it("sends a table as JSON with Content-Type application/json; parses the query", function()
    local r = assert(get("/table?a=1&b=x%20y&b=2"))
    assert.are.equal(200, r.status)
    assert.are.equal("application/json", r.headers["content-type"])
    assert.are.same({list = {1, 2, 3}, q = {a = "1", b = {"x y", "2"}}}, r:json())
  end)

  it("keeps a Content-Type and extra headers a route gives", function()
    local r = assert(get("/custom"))
    assert.are.equal(202, r.status)
    assert.are.equal("application/vnd.x+json", r.headers["content-type"])
    assert.are.equal("yes", r.headers["x-extra"])
    assert.are.same({a = 1}, r:json())
  end)

  it("req:json() decodes a JSON body and reports a bad one", function()
    local r = assert(get("/echo", {method = "POST", json = {x = {1, 2}}}))
    assert.are.same({x = {1, 2}}, r:json().body)
    r = assert(get("/echo", {method = "POST", body = "{nope", headers = {["Content-Type"] = "text/plain"}}))
    local got = r:json()
    assert.is_nil(got.body)
    assert.are.equal("request body is not valid JSON", got.err)
    assert.are.equal("{nope", got.raw)
  end)

  it("lets a route answer through its second argument", function()
    local r = assert(get("/self"))
    assert.are.equal(203, r.status)
    assert.are.equal("1", r.headers["x-self"])
    assert.are.equal("answered myself", r.body)
  end)

  it("h:drop() closes the connection: the client sees kind 'closed'", function()
    local r, err = get("/drop")
    assert.is_nil(r)
    assert.are.equal("closed", err.kind)
  end)

  it("answers 500 when a handler raises, and keeps serving", function()
    local r = assert(get("/boom"))
    assert.are.equal(500, r.status)
    assert.are.same({error = "internal error"}, r:json())
    r = assert(get("/a"))
    assert.are.equal(200, r.status)
    assert.are.equal(500, get("/boom").status)
    assert.are.equal(200, get("/table").status)
  end)

  it("answers 500 at once when a route returns a bad header, a bad status or nothing", function()
    for _, path in ipairs{"/badheader", "/badstatus", "/silent"} do
      local t0 = pacer.now()
      local r = assert(get(path, {timeout = 5}))
      assert.are.equal(500, r.status, path)
      assert.are.same({error = "internal error"}, r:json())
      assert.is_true(pacer.now() - t0 < 1, path .. " took too long")
    end
  end)

  it("keeps the connection alive across requests (pacer.request reuses it)", function()
    local first = assert(get("/a"))
    assert.are.equal(200, first.status)
    for _ = 1, 4 do
      local r = assert(get("/a"))
      assert.are.equal(200, r.status)
      assert.is_true(r.reused)
    end
  end)

  it("answers several pipelined requests on one TCP connection, in order", function()
    local out = raw_tcp(srv.port, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      .. "GET /any HTTP/1.1\r\nHost: x\r\n\r\n"
      .. "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    local statuses = {}
    for st in out:gmatch("HTTP/1%.1 (%d+)") do statuses[#statuses + 1] = tonumber(st) end
    assert.are.same({200, 200, 404}, statuses)
    local conns = {}
    for c in out:gmatch("Connection: (%a[%a-]*)") do conns[#conns + 1] = c end
    assert.are.same({"keep-alive", "keep-alive", "close"}, conns)
    assert.is_truthy(out:find("get a", 1, true))
  end)

  it("curl sees one connection for several requests", function()
    local u = srv.url .. "/a"
    local out, rc = sh(string.format("curl -s -w '%%{http_code} %%{num_connects}\\n' -o /dev/null %s -o /dev/null %s -o /dev/null %s",
      u, u, u), 5)
    assert.are.equal(0, rc)
    assert.are.equal("200 1\n200 0\n200 0\n", out)
  end)

  it("answers 413 to a Content-Length body over max_body, and never parses the body as a request", function()
    local smuggled = "GET /a HTTP/1.1\r\nHost: x\r\nX-Pad: " .. string.rep("p", 80) .. "\r\n\r\n" -- 116 bytes
    local before = #seen
    local r = assert(get("/echo", {method = "POST", body = smuggled, headers = {["Content-Type"] = "text/plain"}}))
    assert.are.equal(413, r.status)
    assert.are.same({error = "request body too large"}, r:json())
    pacer.sleep(0.1)
    assert.are.equal(before, #seen) -- no handler ran, for the POST or a smuggled GET
  end)

  it("takes a body of exactly max_body", function()
    local r = assert(get("/echo", {method = "POST", body = string.rep("a", 100), headers = {["Content-Type"] = "text/plain"}}))
    assert.are.equal(200, r.status)
    assert.are.equal(100, r:json().n)
  end)

  it("answers 413 to a chunked body over max_body", function()
    local r = assert(get("/echo", {method = "POST", body = string.rep("b", 150),
      headers = {["Content-Type"] = "text/plain", ["Transfer-Encoding"] = "chunked"}}))
    assert.are.equal(413, r.status)
    assert.are.same({error = "request body too large"}, r:json())
    assert.are.equal("close", r.headers["connection"])
    r = assert(get("/echo", {method = "POST", body = string.rep("b", 60),
      headers = {["Content-Type"] = "text/plain", ["Transfer-Encoding"] = "chunked"}}))
    assert.are.equal(200, r.status)
    assert.are.equal(string.rep("b", 60), r:json().raw)
  end)

  it("answers 431 to headers over max_header_bytes", function()
    local r = assert(get("/a", {headers = {["X-Big"] = string.rep("h", 600)}}))
    assert.are.equal(431, r.status)
    assert.are.same({error = "request headers too large"}, r:json())
    r = assert(get("/a", {headers = {["X-Big"] = string.rep("h", 100)}}))
    assert.are.equal(200, r.status)
  end)

  it("answers 431 to more headers than max_headers", function()
    local hs = {}
    for i = 1, 25 do hs["X-H" .. i] = "v" end
    local r = assert(get("/a", {headers = hs}))
    assert.are.equal(431, r.status)
  end)

  it("answers 400 to a malformed request (raw bytes) and closes", function()
    local out = raw_tcp(srv.port, "GARBAGE\r\n\r\n")
    assert.are.equal(400, status_of(out))
    assert.is_truthy(out:find("Connection: close\r\n", 1, true))
    assert.is_truthy(out:find("\r\n\r\n{\"error\":\"", 1, true))
    -- and the server still works
    assert.are.equal(200, get("/a").status)
  end)

  it("answers 400 to a method with a space (curl -X 'BAD METHOD')", function()
    local out, rc = sh(string.format("curl -s -o /dev/null -w '%%{http_code}' -X 'BAD METHOD' %s/a", srv.url), 5)
    assert.are.equal(0, rc)
    assert.are.equal("400", out)
  end)

  it("answers 408 when the headers do not arrive within header_timeout", function()
    local t0 = pacer.now()
    local out = raw_tcp(srv.port, "GET /a HTTP/1.1\r\nHost: x\r\n", 4)
    local took = pacer.now() - t0
    assert.are.equal(408, status_of(out))
    assert.is_true(took >= 0.9 and took < 3.5, "took " .. took)
  end)

  it("answers 400 to a NUL byte in a header (found by fuzzing)", function()
    local out = raw_tcp(srv.port, "GET /a HTTP/1.1\r\nHost: x\0y\r\n\r\n")
    assert.are.equal(400, status_of(out))
  end)

  it("drops the trailers of a chunked body instead of taking them as headers (found by fuzzing)", function()
    local out = raw_tcp(srv.port, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      .. "Connection: close\r\n\r\n2\r\n{}\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert.are.equal(200, status_of(out))
    assert.matches('"raw":"{}"', out, 1, true)
  end)

  it("takes header_timeout as a duration string, to the millisecond", function()
    local quick = pacer.serve{header_timeout = "400ms", routes = {["GET /a"] = function() return 200, "a" end}}
    local t0 = pacer.now()
    local out = raw_tcp(quick.port, "GET /a HTTP/1.1\r\nHost: x\r\n", 4)
    local took = pacer.now() - t0
    quick.close()
    assert.are.equal(408, status_of(out))
    assert.is_true(took >= 0.35 and took < 1.5, "took " .. took)
  end)

  it("runs each request in its own task: 10 requests sleeping 0.2 s finish together", function()
    local list = {}
    for i = 1, 10 do list[i] = i end
    local t0 = pacer.now()
    local results = pacer.each(list, function() return assert(get("/sleep")).status end, {concurrency = 10, progress = false})
    local took = pacer.now() - t0
    for i = 1, 10 do
      assert.is_true(results[i].ok, tostring(results[i].err))
      assert.are.equal(200, results[i].value)
    end
    assert.are.equal(10, max_inflight)
    assert.is_true(took < 1, "took " .. took)
  end)
end)

describe("pacer.serve lifecycle and options", function()
  it("binds to 127.0.0.1 by default", function()
    local srv = pacer.serve{routes = {["GET /"] = function() return 204 end}}
    local hex = string.format(":%04X ", srv.port)
    local found
    for line in io.lines("/proc/net/tcp") do
      local ip, port, state = line:match("^%s*%d+: (%x+):(%x+) %x+:%x+ (%x+)")
      if ip and string.format(":%04X ", tonumber(port, 16)) == hex and state == "0A" then found = ip end
    end
    srv.close()
    assert.are.equal("0100007F", found) -- 127.0.0.1, little-endian
  end)

  it("after srv:close() requests get err.kind == 'connect'", function()
    local srv = pacer.serve{routes = {["GET /"] = function() return 200, "up" end}}
    local url = srv.url .. "/"
    assert.are.equal("up", assert(pacer.request{url = url, retry = false}).body)
    srv.close()
    local res, err = pacer.request{url = url, retry = false}
    assert.is_nil(res)
    assert.are.equal("connect", err.kind)
  end)

  it("listens on a given port", function()
    local port = H.free_port()
    local srv = pacer.serve{port = port, routes = {["GET /p"] = function() return 200, "on " .. port end}}
    assert.are.equal(port, srv.port)
    local r = assert(pacer.request{url = "http://127.0.0.1:" .. port .. "/p", retry = false})
    srv.close()
    assert.are.equal("on " .. port, r.body)
  end)

  it("a handler = function gets every request", function()
    local srv = pacer.serve{handler = function(req) return 200, {path = req.path, method = req.method} end}
    local r = assert(pacer.request{url = srv.url .. "/any/thing", method = "DELETE", retry = false})
    srv.close()
    assert.are.same({path = "/any/thing", method = "DELETE"}, r:json())
  end)

  it("raises on bad options and bad route keys", function()
    assert.are.equal("pacer.serve: 'routes' or 'handler' is required", message(function() return pacer.serve{} end))
    assert.are.equal("pacer.serve: unknown option 'prot' (known: body_timeout, handler, header_timeout, host, "
      .. "idle_timeout, max_body, max_connections, max_header_bytes, max_headers, port, routes)",
      message(function() return pacer.serve{prot = 1, routes = {}} end))
    assert.are.equal("pacer.serve: route \"GET\" must look like \"GET /path\"",
      message(function() return pacer.serve{routes = {GET = function() end}} end))
    assert.are.equal("pacer.serve: option 'port' must be an integer, got string",
      message(function() return pacer.serve{port = "80", routes = {}} end))
  end)

  it("raises when the port is taken", function()
    local a = pacer.serve{routes = {["GET /"] = function() return 204 end}}
    local msg = message(function() return pacer.serve{port = a.port, routes = {}} end)
    a.close()
    assert.are.equal(string.format("pacer.serve: port %d is in use (Address already in use)", a.port), msg)
  end)
end)
