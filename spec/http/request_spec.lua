-- spec/http/request_spec.lua: pacer.request and pacer.client against pacer.serve, pacer.mock{}
-- and Debian's nginx, all on 127.0.0.1.
local H = dofile("spec/support/helpers.lua")
local json = pacer.json

-- error text without the "file:line: " prefix that opts.raise adds at the caller's line
local function message(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  return (tostring(err):gsub("^[^\n]-:%d+: ", "")), tostring(err)
end

-- a server that echoes what it received, plus a few fixed routes
local function echo_server()
  local hits = {}
  local srv = pacer.serve{routes = {
    ["* /*"] = function(req)
      hits[#hits + 1] = req.target
      return 200, {method = req.method, target = req.target, path = req.path, query = req.query,
        headers = req.headers, body = req.body}
    end,
    ["GET /text"] = function() return 200, "not json at all\n", {["Content-Type"] = "text/plain"} end,
    ["GET /redirect"] = function() return 302, "moved", {Location = "/landed?from=redirect"} end,
    ["GET /slow"] = function() pacer.sleep(2) return 200, "late" end,
    -- '{"sms": "sent"}' gzipped (Python's gzip.compress, mtime 0)
    ["GET /gz"] = function()
      return 200, "\31\139\8\0\0\0\0\0\2\3\171\86\42\206\45\86\178\82\80\42\78\205\43\81\170\5\0\147\213" ..
        "\242\121\15\0\0\0", {["Content-Type"] = "application/json", ["Content-Encoding"] = "gzip"}
    end,
  }}
  srv.hits = hits
  return srv
end

describe("pacer.request against pacer.serve", function()
  local srv
  setup(function() srv = echo_server() end)
  teardown(function() srv.close() end)

  it("encodes a query table (sorted, percent-encoded, repeated keys) and the server decodes it", function()
    local res = assert(pacer.request{url = srv.url .. "/search",
      query = {q = "a b&c=d", tag = {"x", "y"}, n = 5, ok = true, ["ü"] = "é/?"}, retry = false})
    assert.are.equal(200, res.status)
    local got = res:json()
    assert.are.equal("GET", got.method)
    assert.are.equal("/search?n=5&ok=true&q=a%20b%26c%3Dd&tag=x&tag=y&%C3%BC=%C3%A9%2F%3F", got.target)
    assert.are.equal("/search", got.path)
    assert.are.same({n = "5", ok = "true", q = "a b&c=d", tag = {"x", "y"}, ["ü"] = "é/?"}, got.query)
  end)

  it("appends a query to a URL that already has one, and keeps a string query as is", function()
    local res = assert(pacer.request{url = srv.url .. "/s?a=1", query = {b = 2}, retry = false})
    assert.are.equal("/s?a=1&b=2", res:json().target)
    res = assert(pacer.request{url = srv.url .. "/s", query = "raw=x%20y&z", retry = false})
    assert.are.equal("/s?raw=x%20y&z", res:json().target)
  end)

  it("sends the given headers, a default Accept and a pacer User-Agent", function()
    local res = assert(pacer.request{url = srv.url .. "/h", retry = false,
      headers = {["X-Custom"] = "value 1", ["X-Number"] = 42}})
    local h = res:json().headers
    assert.are.equal("value 1", h["x-custom"])
    assert.are.equal("42", h["x-number"])
    assert.are.equal("application/json, */*;q=0.5", h["accept"])
    assert.are.equal("pacer/" .. pacer.version, h["user-agent"])
    res = assert(pacer.request{url = srv.url .. "/h", retry = false, headers = {accept = "text/csv"}})
    assert.are.equal("text/csv", res:json().headers["accept"])
  end)

  it("offers the encodings libcurl decodes, and decodes a gzipped answer", function()
    local res = assert(pacer.request{url = srv.url .. "/h", retry = false})
    local offered = res:json().headers["accept-encoding"]
    assert.is_truthy(offered and offered:find("gzip", 1, true), offered)
    res = assert(pacer.request{url = srv.url .. "/gz", retry = false})
    assert.are.equal("gzip", res.headers["content-encoding"])
    assert.are.same({sms = "sent"}, res:json())
  end)

  it("a caller's User-Agent and Accept-Encoding replace pacer's (sent once)", function()
    local res = assert(pacer.request{url = srv.url .. "/h", retry = false,
      headers = {["user-agent"] = "sms-sync/2", ["Accept-Encoding"] = "identity"}})
    local h = res:json().headers
    assert.are.equal("sms-sync/2", h["user-agent"])
    assert.are.equal("identity", h["accept-encoding"])
  end)

  it("json = encodes the body and sets Content-Type: application/json", function()
    local res = assert(pacer.request{method = "POST", url = srv.url .. "/j", retry = false,
      json = {to = "+15550100", message = "hi", n = {1, 2}}})
    local got = res:json()
    assert.are.equal("POST", got.method)
    assert.are.equal("application/json", got.headers["content-type"])
    assert.are.same({to = "+15550100", message = "hi", n = {1, 2}}, json.decode(got.body))
    assert.are.equal(tostring(#got.body), got.headers["content-length"])
  end)

  it("json = keeps a Content-Type the caller gave", function()
    local res = assert(pacer.request{method = "POST", url = srv.url .. "/j", retry = false,
      headers = {["content-type"] = "application/vnd.api+json"}, json = {a = 1}})
    local got = res:json()
    assert.are.equal("application/vnd.api+json", got.headers["content-type"])
    assert.are.same({a = 1}, json.decode(got.body))
  end)

  it("form = url-encodes the fields and sets the form Content-Type", function()
    local res = assert(pacer.request{method = "PUT", url = srv.url .. "/f", retry = false,
      form = {b = "x y", a = 1, c = "&="}})
    local got = res:json()
    assert.are.equal("PUT", got.method)
    assert.are.equal("application/x-www-form-urlencoded", got.headers["content-type"])
    assert.are.equal("a=1&b=x%20y&c=%26%3D", got.body)
  end)

  it("body = without a Content-Type is sent as application/octet-stream", function()
    local res = assert(pacer.request{method = "POST", url = srv.url .. "/b", retry = false, body = "raw"})
    assert.are.equal("application/octet-stream", res:json().headers["content-type"])
  end)

  it("body = sends the raw bytes with the method given", function()
    local raw = "line 1\r\nline 2\0binary\255"
    local res = assert(pacer.request{method = "PATCH", url = srv.url .. "/b", retry = false,
      headers = {["Content-Type"] = "text/plain"}, body = raw})
    local got = res:json()
    assert.are.equal("PATCH", got.method)
    assert.are.equal("text/plain", got.headers["content-type"])
    assert.are.equal(raw, got.body)
  end)

  it("refuses two body kinds at once", function()
    assert.are.equal("pacer.request: give only one of 'json', 'form' and 'body'",
      message(function() return pacer.request{url = srv.url, json = {}, body = "x"} end))
    assert.are.equal("pacer.request: give only one of 'json', 'form' and 'body'",
      message(function() return pacer.request{url = srv.url, form = {a = 1}, body = "x"} end))
  end)

  it("gives case-insensitive response headers", function()
    local res = assert(pacer.request{url = srv.url .. "/text", retry = false})
    assert.are.equal("text/plain", res.headers["content-type"])
    assert.are.equal(res.headers["content-type"], res.headers["Content-Type"])
    assert.are.equal(res.headers["content-type"], res.headers["CONTENT-TYPE"])
    assert.are.equal("16", res.headers["Content-Length"])
    assert.is_nil(res.headers["X-Not-There"])
  end)

  it("res:json() decodes a JSON body", function()
    local res = assert(pacer.request{url = srv.url .. "/x?k=v", retry = false})
    local v = res:json()
    assert.are.equal("table", type(v))
    assert.are.equal("/x?k=v", v.target)
  end)

  it("res:json() on a non-JSON body raises a message naming the request and the body", function()
    local res = assert(pacer.request{url = srv.url .. "/text", retry = false})
    assert.are.equal(200, res.status)
    assert.are.equal("not json at all\n", res.body)
    local msg = message(function() local v = res:json() return v end)
    assert.are.equal(string.format("res:json(): the body of GET %s/text (HTTP 200, 16 bytes) is not valid JSON: "
      .. "Expected value but found invalid token at character 1; it starts \"not json at all?\"", srv.url), msg)
  end)

  it("reports elapsed (a number of seconds), attempts and the URL", function()
    local res = assert(pacer.request{url = srv.url .. "/e", retry = false})
    assert.are.equal("number", type(res.elapsed))
    assert.is_true(res.elapsed >= 0 and res.elapsed < 5)
    assert.are.equal(1, res.attempts)
    assert.are.equal("GET", res.method)
    assert.are.equal(srv.url .. "/e", res.url)
    assert.is_true(res:ok())
  end)

  it("reuses the connection for a second request to the same server", function()
    local s2 = echo_server()
    local a = assert(pacer.request{url = s2.url .. "/one", retry = false})
    local b = assert(pacer.request{url = s2.url .. "/two", retry = false})
    s2.close()
    assert.is_false(a.reused)
    assert.is_true(b.reused)
  end)

  it("keeps its connections through a lull: 4000 GETs, 16 at a time, open at most 16", function()
    -- (libcurl's own bound, 4 x the transfers on the multi at that moment, closed idle
    -- connections whenever few were in flight: 17-33 were opened)
    local ngx = H.nginx()
    local api = pacer.client{concurrency = 16, retry = false}
    local q = pacer.queue{}
    for i = 1, 4000 do q:push(i) end
    q:close()
    local fresh, ok = 0, 0
    q:work(16, function()
      local r = assert(api:get(ngx.url .. "/small.txt"))
      if r.status == 200 then ok = ok + 1 end
      if not r.reused then fresh = fresh + 1 end
    end)
    ngx.stop()
    assert.are.equal(4000, ok)
    assert.is_true(fresh >= 1 and fresh <= 16, fresh .. " connections opened")
  end)

  it("a request takes nothing from the one before it (its handle is reused)", function()
    local function get(path)
      return assert(pacer.request{url = srv.url .. path, retry = false})
    end
    -- one at a time: each takes the handle the one before gave back
    local before = {
      {method = "PATCH", headers = {["X-Only-Once"] = "1", ["Content-Type"] = "text/plain"}, body = "payload"},
      {method = "HEAD"}, {method = "DELETE"}, {method = "POST", json = {a = 1}}, {follow = true, path = "/redirect"},
    }
    for _, b in ipairs(before) do
      local opts = {url = srv.url .. (b.path or "/first"), retry = false}
      for k, v in pairs(b) do
        if k ~= "path" then opts[k] = v end
      end
      assert(pacer.request(opts))
      local got = get("/second"):json()
      assert.are.equal("GET", got.method, b.method)
      assert.are.equal("", got.body or "", b.method)
      assert.is_nil(got.headers["x-only-once"])
      assert.is_nil(got.headers["content-type"])
      local res = get("/redirect")
      assert.are.equal(302, res.status, "follow kept after " .. tostring(b.method or "follow"))
      assert.are.equal("moved", res.body) -- a HEAD before it did not leave NOBODY on
    end
  end)

  it("URLs to two servers in turn, between redirects, each reach their own host and path", function()
    -- the parsed URL handed to libcurl goes with each request, on handles it reuses
    local other = pacer.serve{routes = {["* /*"] = function(req) return 200, {other = req.target} end}}
    local urls = {srv.url .. "/a?x=1", other.url .. "/b", srv.url .. "/c/d?y=%20", other.url .. "/"}
    local seen = {}
    for round = 1, 3 do
      for _, u in ipairs(urls) do
        local got = assert(pacer.request{url = u, retry = false, follow = round == 2,
          query = round == 3 and {z = 3} or nil}):json()
        seen[#seen + 1] = got.target or ("other " .. got.other)
      end
      local landed = assert(pacer.request{url = srv.url .. "/redirect", follow = true, retry = false})
      seen[#seen + 1] = landed:json().target
    end
    other.close()
    assert.are.same({"/a?x=1", "other /b", "/c/d?y=%20", "other /", "/landed?from=redirect",
      "/a?x=1", "other /b", "/c/d?y=%20", "other /", "/landed?from=redirect",
      "/a?x=1&z=3", "other /b?z=3", "/c/d?y=%20&z=3", "other /?z=3", "/landed?from=redirect"}, seen)
  end)

  it("does not follow redirects unless follow = true", function()
    local res = assert(pacer.request{url = srv.url .. "/redirect", retry = false})
    assert.are.equal(302, res.status)
    assert.are.equal("/landed?from=redirect", res.headers["location"])
    assert.are.equal("moved", res.body)
    res = assert(pacer.request{url = srv.url .. "/redirect", retry = false, follow = true})
    assert.are.equal(200, res.status)
    assert.are.equal("/landed?from=redirect", res:json().target)
  end)

  it("times out: nil, err.kind == 'timeout', after about `timeout` seconds", function()
    local t0 = pacer.now()
    local res, err = pacer.request{url = srv.url .. "/slow", timeout = 0.3, retry = false}
    local took = pacer.now() - t0
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.are.equal(1, err.attempts)
    assert.are.equal("GET", err.method)
    assert.are.equal(srv.url .. "/slow", err.url)
    assert.are.equal("GET " .. srv.url .. "/slow: ", err.message:sub(1, #("GET " .. srv.url .. "/slow: ")))
    assert.is_true(took >= 0.25 and took < 1.5, "took " .. took)
  end)

  it("accepts a duration string for timeout", function()
    local res, err = pacer.request{url = srv.url .. "/slow", timeout = "200ms", retry = false}
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
  end)

  it("connection refused: nil, err.kind == 'connect'", function()
    local port = H.free_port()
    local res, err = pacer.request{url = "http://127.0.0.1:" .. port .. "/", retry = false}
    assert.is_nil(res)
    assert.are.equal("connect", err.kind)
    assert.are.equal(1, err.attempts)
    assert.is_false(err.sent)
    assert.are.equal("GET http://127.0.0.1:" .. port .. "/: ", err.message:sub(1, #("GET http://127.0.0.1:" .. port .. "/: ")))
  end)

  it("DNS failure for a .invalid name: nil, err.kind == 'dns'", function()
    local res, err = pacer.request{url = "http://pacer-spec.invalid/x", retry = false, timeout = 5}
    assert.is_nil(res)
    assert.are.equal("dns", err.kind)
    local prefix = "GET http://pacer-spec.invalid/x: "
    assert.are.equal(prefix, err.message:sub(1, #prefix))
    assert.is_false(err.sent)
  end)

  it("raises on a bad URL, naming it", function()
    assert.are.equal("pacer.request: invalid URL 'htp://x': Unsupported URL scheme",
      message(function() return pacer.request{url = "htp://x"} end))
    assert.are.equal("pacer.request: invalid URL 'not a url': Bad scheme",
      message(function() return pacer.request{url = "not a url"} end))
    assert.are.equal("pacer.request: invalid URL 'ftp://127.0.0.1/x': only http and https URLs are supported",
      message(function() return pacer.request{url = "ftp://127.0.0.1/x"} end))
  end)

  it("raises at the caller's line, not inside pacer", function()
    local _, full = message(function() return pacer.request{url = "htp://x"} end)
    assert.are.equal("spec/http/request_spec.lua:", full:sub(1, 27))
  end)

  it("raises on an unknown option, listing the known ones", function()
    assert.are.equal("pacer.request: unknown option 'tiemout' (known: auth, body, connect_timeout, cost, follow, "
      .. "form, headers, idempotency_key, json, limiter, max_body, max_wait, method, priority, query, retry, "
      .. "timeout, url, verify)",
      message(function() return pacer.request{url = srv.url, tiemout = 1} end))
  end)

  it("raises on an option of the wrong type, naming it", function()
    assert.are.equal("pacer.request: option 'timeout' must be a duration (seconds or \"250ms\"), got table",
      message(function() return pacer.request{url = srv.url, timeout = {}} end))
    assert.are.equal("pacer.request: option 'headers' must be a table, got string",
      message(function() return pacer.request{url = srv.url, headers = "X: y"} end))
    assert.are.equal("pacer.request: option 'timeout' must be greater than 0",
      message(function() return pacer.request{url = srv.url, timeout = 0} end))
    assert.are.equal("pacer.request: expected a table of options, got string",
      message(function() return pacer.request("http://127.0.0.1/") end))
    assert.are.equal("pacer.request: option 'url' is required",
      message(function() return pacer.request{method = "GET"} end))
  end)

  it("refuses header injection (CR/LF in a value, bad characters in a name) before sending", function()
    local before = #srv.hits
    assert.are.equal("pacer.request: header 'X-A' contains CR, LF or NUL (header injection?)",
      message(function() return pacer.request{url = srv.url .. "/inj", headers = {["X-A"] = "a\r\nX-B: b"}} end))
    assert.are.equal("pacer.request: header 'X-A' contains CR, LF or NUL (header injection?)",
      message(function() return pacer.request{url = srv.url .. "/inj", headers = {["X-A"] = "a\nb"}} end))
    assert.are.equal("pacer.request: invalid header name \"X A\" (header injection?)",
      message(function() return pacer.request{url = srv.url .. "/inj", headers = {["X A"] = "v"}} end))
    assert.are.equal("pacer.request: invalid header name \"X-B\\\nY\" (header injection?)",
      message(function() return pacer.request{url = srv.url .. "/inj", headers = {["X-B\nY"] = "v"}} end))
    assert.are.equal(before, #srv.hits)
  end)
end)

describe("pacer.request against pacer.mock{}", function()
  local mock
  setup(function() mock = pacer.mock{rate = "100/s"} end)
  teardown(function() mock:close() end)

  it("GETs a page with a query the mock understands", function()
    local res = assert(pacer.request{url = mock.url .. "/v2/numbers", query = {page = 2, per_page = 10}, retry = false})
    assert.are.equal(200, res.status)
    local body = res:json()
    assert.are.equal(2, body.page)
    assert.are.equal(10, body.per_page)
    assert.are.equal(10, #body.numbers)
    assert.are.equal("+15550000011", body.numbers[1].number)
    assert.are.equal("application/json", res.headers["Content-Type"])
  end)

  it("POSTs JSON and reads the quota headers into res.quota", function()
    local res = assert(pacer.request{method = "POST", url = mock.url .. "/v2/sms/send", retry = false,
      json = {to = "+15550100", message = "hi"}})
    assert.are.equal(200, res.status)
    assert.are.equal("+15550100", res:json().to)
    assert.are.equal(100, res.quota.limit)
    assert.are.equal("number", type(res.quota.remaining))
    assert.are.equal("number", type(res.quota.reset))
    local last = mock.requests[#mock.requests]
    assert.are.same({to = "+15550100", message = "hi"}, json.decode(last.body))
  end)
end)

describe("pacer.request against nginx", function()
  local ngx
  setup(function()
    ngx = H.nginx([[
      location = /echo { default_type text/plain; return 200 "$request_uri|$http_x_custom|$content_type"; }
      location = /old { return 302 /small.txt; }
    ]])
  end)
  teardown(function() if ngx then ngx.stop() end end)

  it("GETs a static file", function()
    local res = assert(pacer.request{url = ngx.url .. "/small.txt", retry = false})
    assert.are.equal(200, res.status)
    assert.are.equal("hello from nginx\n", res.body)
    assert.are.equal("text/plain", res.headers["Content-Type"])
    assert.are.equal(res.headers["content-type"], res.headers["Content-Type"])
    assert.are.equal("17", res.headers["content-length"])
    assert.are.equal("number", type(res.elapsed))
  end)

  it("sends the encoded query and the headers", function()
    local res = assert(pacer.request{url = ngx.url .. "/echo", query = {q = "a b", z = "é"},
      headers = {["X-Custom"] = "yes"}, retry = false})
    assert.are.equal("/echo?q=a%20b&z=%C3%A9|yes|", res.body)
  end)

  it("sends the Content-Type for json and form bodies", function()
    local res = assert(pacer.request{method = "POST", url = ngx.url .. "/echo", json = {a = 1}, retry = false})
    assert.are.equal("/echo||application/json", res.body)
    res = assert(pacer.request{method = "POST", url = ngx.url .. "/echo", form = {a = 1}, retry = false})
    assert.are.equal("/echo||application/x-www-form-urlencoded", res.body)
  end)

  it("reuses the keep-alive connection", function()
    local a = assert(pacer.request{url = ngx.url .. "/small.txt", retry = false})
    local b = assert(pacer.request{url = ngx.url .. "/small.txt", retry = false})
    assert.are.equal(200, a.status)
    assert.is_true(b.reused)
  end)

  it("does not follow a 302 unless follow = true", function()
    local res = assert(pacer.request{url = ngx.url .. "/old", retry = false})
    assert.are.equal(302, res.status)
    assert.are.equal(ngx.url .. "/small.txt", res.headers["location"])
    res = assert(pacer.request{url = ngx.url .. "/old", retry = false, follow = true})
    assert.are.equal(200, res.status)
    assert.are.equal("hello from nginx\n", res.body)
  end)

  it("returns a 404 as a response, not an error", function()
    local res, err = pacer.request{url = ngx.url .. "/missing", retry = false}
    assert.is_nil(err)
    assert.are.equal(404, res.status)
    assert.is_false(res:ok())
  end)
end)

describe("pacer.client", function()
  local srv
  setup(function() srv = echo_server() end)
  teardown(function() srv.close() end)

  it("joins base_url and the path, with or without slashes", function()
    local api = pacer.client{base_url = srv.url .. "/v2", retry = false}
    assert.are.equal("/v2/sms/send", api:get("/sms/send"):json().target)
    assert.are.equal("/v2/sms/send", api:get("sms/send"):json().target)
    local api2 = pacer.client{base_url = srv.url .. "/v2/", retry = false}
    assert.are.equal("/v2/numbers?page=3", api2:get("/numbers", {query = {page = 3}}):json().target)
    -- an absolute URL is used as given
    assert.are.equal("/other", api:get(srv.url .. "/other"):json().target)
  end)

  it("sends default headers; a request's own header wins, whatever its case", function()
    local api = pacer.client{base_url = srv.url, retry = false,
      headers = {["X-Auth-Token"] = "default", ["X-Team"] = "core"}}
    local h = api:get("/a"):json().headers
    assert.are.equal("default", h["x-auth-token"])
    assert.are.equal("core", h["x-team"])
    h = api:get("/a", {headers = {["x-auth-token"] = "mine"}}):json().headers
    assert.are.equal("mine", h["x-auth-token"])
    assert.are.equal("core", h["x-team"])
  end)

  it("has post/put/patch/delete and request{}", function()
    local api = pacer.client{base_url = srv.url, retry = false}
    assert.are.equal("POST", api:post("/p", {json = {a = 1}}):json().method)
    assert.are.equal("PUT", api:put("/p", {body = "x"}):json().method)
    assert.are.equal("PATCH", api:patch("/p", {body = "x"}):json().method)
    assert.are.equal("DELETE", api:delete("/p"):json().method)
    local got = api:request{method = "POST", path = "/r", json = {b = 2}}:json()
    assert.are.equal("POST", got.method)
    assert.are.equal("/r", got.target)
    assert.are.same({b = 2}, json.decode(got.body))
  end)

  it("raises on an unknown client option", function()
    assert.are.equal("pacer.client: unknown option 'bse_url' (known: adaptive, alerts, auth, base_url, breaker, "
      .. "burst, cache, concurrency, connect_timeout, cost, follow, groups, headers, idempotency, key_header, "
      .. "key_prefix, keys, limiter, max_body, max_wait, name, partition, priority, rate, retry, rules, state, target, "
      .. "timeout, verify, window)",
      message(function() return pacer.client{bse_url = srv.url} end))
  end)

  it("raises on options that contradict each other", function()
    assert.are.equal("pacer.client: 'target' goes with adaptive = true",
      message(function() return pacer.client{base_url = srv.url, target = 0.5} end))
    assert.are.equal("pacer.client: 'target' must be in (0, 1], got 2",
      message(function() return pacer.client{base_url = srv.url, adaptive = true, target = 2} end))
    assert.are.equal("pacer.client: give 'limiter' or 'rate'/'rules', not both",
      message(function() return pacer.client{limiter = pacer.limiter{rate = 1}, rate = "2/s"} end))
  end)

  it("raises on an unknown or mistyped per-request option", function()
    local api = pacer.client{base_url = srv.url}
    assert.are.equal("api:get: unknown option 'tiemout' (known: auth, body, connect_timeout, cost, follow, form, "
      .. "headers, idempotency_key, json, max_body, max_wait, priority, query, retry, timeout, verify)",
      message(function() return api:get("/x", {tiemout = 1}) end))
    assert.are.equal("api:post: option 'timeout' must be a duration (seconds or \"250ms\"), got table",
      message(function() return api:post("/x", {timeout = {}}) end))
    assert.are.equal("api:get: header 'X' contains CR, LF or NUL (header injection?)",
      message(function() return api:get("/x", {headers = {X = "a\rb"}}) end))
  end)

  it("raises on a bad concurrency or rate", function()
    assert.are.equal("pacer.client: 'concurrency' must be >= 1, got 0",
      message(function() return pacer.client{base_url = srv.url, concurrency = 0} end))
    assert.are.equal("pacer.client: option 'rate' must be a rate (\"10/s\" or a number), got table",
      message(function() return pacer.client{base_url = srv.url, rate = {}} end))
  end)
end)

describe("pacer.client stats and quota", function()
  local mock
  setup(function() mock = pacer.mock{rate = "10/s"} end)
  teardown(function() mock:close() end)

  it("api:stats() counts requests, outcomes, statuses and time spent pacing", function()
    local api = pacer.client{base_url = mock.url .. "/v2", rate = "20/s", retry = false}
    local s0 = api:stats()
    assert.are.same({requests = 0, ok = 0, failed = 0, retries = 0, throttled = 0, waited = 0},
      {requests = s0.requests, ok = s0.ok, failed = s0.failed, retries = s0.retries,
       throttled = s0.throttled, waited = s0.waited})
    assert.are.equal(200, api:get("/numbers").status)
    assert.are.equal(200, api:get("/billing/usage").status)
    assert.are.equal(404, api:get("/nope").status)
    local s = api:stats()
    assert.are.equal(3, s.requests)
    assert.are.equal(2, s.ok)
    assert.are.equal(1, s.failed)
    assert.are.equal(0, s.retries)
    assert.are.equal(0, s.throttled)
    assert.are.same({[200] = 2, [404] = 1}, s.by_status)
    -- 3 requests at 20/s with a burst of 1: two waits of ~50 ms
    assert.is_true(s.waited >= 0.08 and s.waited < 0.5, "waited " .. s.waited)
    -- a copy: changing it does not change the client's counters
    s.requests = 99
    assert.are.equal(3, api:stats().requests)
  end)

  it("api:stats() counts 429s as throttled", function()
    local m = pacer.mock{rate = "2/s"}
    local api = pacer.client{base_url = m.url .. "/v2", retry = false}
    local statuses = {}
    for i = 1, 3 do statuses[i] = api:get("/numbers").status end
    m:close()
    assert.are.same({200, 200, 429}, statuses)
    local s = api:stats()
    assert.are.equal(1, s.throttled)
    assert.are.equal(1, s.failed)
    assert.are.equal(2, s.ok)
    assert.are.same({[200] = 2, [429] = 1}, s.by_status)
  end)

  it("api:quota() is nil before any response and then the latest quota seen", function()
    local m2 = pacer.mock{rate = "10/s"} -- fresh: a known remaining count
    local api = pacer.client{base_url = m2.url .. "/v2", retry = false}
    assert.is_nil(api:quota())
    assert.are.equal(200, api:get("/numbers").status)
    local q = api:quota()
    assert.are.equal(10, q.limit)
    assert.are.equal(9, q.remaining)
    assert.is_true(q.reset > 0 and q.reset <= 1, "reset " .. tostring(q.reset))
    assert.is_true(math.abs(q.used - 0.1) < 1e-9, "used " .. tostring(q.used))
    assert.are.equal(200, api:get("/numbers").status)
    q = api:quota()
    assert.are.equal(8, q.remaining)
    assert.is_true(math.abs(q.used - 0.2) < 1e-9, "used " .. tostring(q.used))
    m2:close()
  end)
end)

describe("pacer.client attempt loop", function()
  local m
  setup(function() m = pacer.mock{rate = "1000/s"} end)
  teardown(function() m:close() end)

  it("requests waiting on a slow path group hold no concurrency slot", function()
    local api = pacer.client{base_url = m.url .. "/v2", concurrency = 2, retry = false,
      groups = {numbers = "1/s"}}
    local slow = {}
    for i = 1, 3 do slow[i] = pacer.spawn(function() return api:get("/numbers") end) end
    pacer.sleep(0.05) -- the first /numbers went; two wait 1 s and 2 s on their group
    local t0 = pacer.now()
    local res = assert(api:get("/billing/usage"))
    local took = pacer.now() - t0
    assert.are.equal(200, res.status)
    assert.is_true(took < 0.5, "an unlimited path waited " .. took .. " s behind the group")
    for _, t in ipairs(slow) do assert.are.equal(200, select(2, t:wait()).status) end
  end)

  it("a bad URL raises before it takes the limiter's slot", function()
    local lim = pacer.limiter{rate = "1/10s", burst = 1}
    local api = pacer.client{base_url = m.url .. "/v2", limiter = lim, retry = false}
    local ok, err = pcall(api.get, api, "/a b")
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("api:get: invalid URL", 1, true), tostring(err))
    assert.is_true((lim:try_acquire()), "the bad URL spent the only slot")
  end)
end)

describe("pacer.client idempotency", function()
  it("idempotency = function(req) makes keys that survive a restart: a rerun is replayed, not resent", function()
    local m = pacer.mock{}
    local script = H.script(string.format([[
local api = pacer.client{base_url = %q, retry = false,
  idempotency = function(req) return "sms-" .. req.json.to end}
for i = 1, 3 do assert(api:post("/sms/send", {json = {to = "+1555000" .. i, message = "hi"}})) end
]], m.url .. "/v2"))
    for _ = 1, 2 do
      local _, code = H.sh(string.format("%s -q %s", H.q(H.PACER), H.q(script)), 30)
      assert.are.equal(0, code)
    end
    os.remove(script)
    local keys, replayed = {}, 0
    for _, r in ipairs(m.requests) do
      keys[#keys + 1] = r.idempotency_key
      if r.replayed then replayed = replayed + 1 end
    end
    m:close()
    assert.are.same({"sms-+15550001", "sms-+15550002", "sms-+15550003",
      "sms-+15550001", "sms-+15550002", "sms-+15550003"}, keys)
    assert.are.equal(3, replayed) -- the second run's sends were answered from the first run's
  end)

  it("idempotency = true makes a new random key per logical request (not stable across runs)", function()
    local m = pacer.mock{}
    local api = pacer.client{base_url = m.url .. "/v2", idempotency = true, retry = false}
    api:post("/sms/send", {json = {to = "+15550001", message = "a"}})
    api:post("/sms/send", {json = {to = "+15550001", message = "a"}})
    local a, b = m.requests[1].idempotency_key, m.requests[2].idempotency_key
    m:close()
    assert.matches("^%x+$", a)
    assert.are_not.equal(a, b)
  end)

  it("refuses an idempotency function that returns no key, at the caller's line", function()
    local api = pacer.client{base_url = "http://127.0.0.1:9", idempotency = function() end}
    assert.are.equal("api:post: the idempotency function must return a non-empty string, got nil",
      H.message(function() return api:post("/x") end))
  end)
end)
