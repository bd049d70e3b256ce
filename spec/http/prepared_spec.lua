-- spec/http/prepared_spec.lua: what prepare() remembers (good URLs, good header names)
-- never lets an unchecked URL or header through, on 127.0.0.1.
local http = require "pacer.c.http"

describe("a URL parsed once", function()
  local srv
  setup(function()
    srv = pacer.serve{routes = {
      ["GET /ok"] = function() return 200, "ok", {["Content-Type"] = "text/plain"} end,
      ["GET /bad"] = function() return 302, "", {Location = "http://[bad/x"} end,
    }}
  end)
  teardown(function() srv.close() end)

  it("pacer.c.http skips its check only for the very URL that was checked", function()
    local good = srv.url .. "/ok"
    local s, e = http.request{url = "http://[bad", url_checked = good}
    assert.is_nil(s)
    assert.are.equal("url", e.kind)
    -- a checked flag inherited through __index (as a wire table has) is no pass either
    s, e = http.request(setmetatable({url = "http://[bad"}, {__index = {url_checked = good}}))
    assert.is_nil(s)
    assert.are.equal("url", e.kind)
    assert.are.equal(200, (http.request{url = good, url_checked = good}))
  end)

  it("a redirect's URL is checked, though the request's own was remembered", function()
    local api = pacer.client{base_url = srv.url, follow = true, retry = false}
    for _ = 1, 3 do assert.are.equal(200, assert(api:get("/ok")).status) end
    local res, err = api:get("/bad")
    assert.is_nil(res)
    assert.are.equal("url", err.kind)
  end)

  it("a remembered good URL with a bad query, or a NUL, still raises", function()
    local api = pacer.client{base_url = srv.url, retry = false}
    assert(api:get("/ok"))
    assert.has_error(function() api:get("/ok\0x") end)
    assert.has_error(function() api:get("/ok", {query = "a b"}) end)
  end)
end)

describe("a header name checked once", function()
  it("a bad name or value is refused after good ones were remembered", function()
    local srv = pacer.serve{routes = {["GET /ok"] = function() return 200, "ok" end}}
    local api = pacer.client{base_url = srv.url, retry = false}
    for _ = 1, 3 do assert(api:get("/ok", {headers = {["X-Good"] = "1"}})) end
    assert.has_error(function() api:get("/ok", {headers = {["X Bad"] = "1"}}) end)
    assert.has_error(function() api:get("/ok", {headers = {["X-Good"] = "a\r\nInjected: 1"}}) end)
    srv.close()
  end)
end)
