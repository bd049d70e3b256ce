-- TLS against nginx with a self-signed certificate made for the test: verification is on
-- by default and fails with a clear kind and message; verify=false talks, over HTTP/2.
local H = dofile("spec/support/helpers.lua")

describe("TLS", function()
  local ng
  setup(function() ng = H.tls_nginx("ssl http2") end)
  teardown(function() if ng then ng.stop() end end)

  it("refuses a self-signed certificate by default, naming the problem", function()
    local res, err = pacer.request{url = ng.url .. "/small.txt", retry = false}
    assert.is_nil(res)
    assert.are.equal("tls", err.kind)
    assert.matches("SSL certificate problem: self%-signed certificate", err.message)
    assert.is_false(err.sent)
  end)

  it("does not retry a TLS failure under the default policy", function()
    local api = pacer.client{base_url = ng.url}
    local res, err = api:get("/small.txt")
    assert.is_nil(res)
    assert.are.equal("tls", err.kind)
    assert.are.equal(1, err.attempts)
    assert.are.equal(0, api:stats().retries)
  end)

  it("talks HTTP/2 when verification is turned off", function()
    local res = assert(pacer.request{url = ng.url .. "/small.txt", verify = false, retry = false})
    assert.are.equal(200, res.status)
    assert.are.equal("hello from nginx\n", res.body)
    assert.are.equal("2", res.http_version)
  end)
end)
