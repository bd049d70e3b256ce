-- spec/serve/framing_spec.lua: the listener refuses lenient framing with 400, as RFC 9112
-- asks, instead of guessing (issue #15, item 4): a space before the colon, header names
-- with spaces, obs-fold, bare LF line ends. None of these reaches a handler, and none
-- hangs the connection until the idle timeout. Raw bytes go through a small Python
-- client (spec/serve/hostile/hostile.py raw), run in the background so that our own
-- server, in this process, keeps serving.
local H = dofile("spec/support/helpers.lua")

local CLIENT = "python3 spec/serve/hostile/hostile.py"

-- Sends raw bytes on one connection; returns {status=, elapsed=, closed=, response=}.
local function raw(port, bytes, timeout)
  timeout = timeout or 4
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
  local out = H.sh(string.format("%s raw %d %s %g", CLIENT, port, path, timeout), timeout + 3)
  os.remove(path)
  local r = assert(pacer.json.decode(out), "no answer from the client: " .. out)
  r.status = tonumber(r.response:match("^HTTP/1%.1 (%d%d%d)"))
  return r
end

describe("pacer.serve framing (RFC 9112)", function()
  local srv
  local hits = {}
  setup(function()
    srv = pacer.serve{idle_timeout = 30, routes = {
      ["* /echo"] = function(req) hits[#hits + 1] = req.path return 200, {body = req.body} end,
      ["* /smuggled"] = function(req) hits[#hits + 1] = req.path return 200, "smuggled" end,
    }}
  end)
  teardown(function() srv.close() end)

  local function refused(bytes, why)
    local before = #hits
    local r = raw(srv.port, bytes)
    assert.are.equal(400, r.status, why .. ": " .. r.response)
    assert.is_true(r.closed, why .. ": the connection stays open")
    assert.is_true(r.elapsed < 2, why .. ": took " .. r.elapsed .. " s")
    assert.are.equal(before, #hits, why .. ": a handler ran")
    return r
  end

  it("refuses a space before the colon (Content-Length : 5), and nothing is smuggled", function()
    local r = refused("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello"
      .. "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", "Content-Length : 5")
    assert.matches('{"error":"invalid character in a header name"}', r.response, 1, true)
    refused("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "Transfer-Encoding : chunked")
  end)

  it("refuses header names with spaces", function()
    refused("GET /echo HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", "Bad Name")
  end)

  it("refuses obs-fold, in Transfer-Encoding and elsewhere", function()
    local r = refused("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity,\r\n chunked\r\n\r\n"
      .. "5\r\nhello\r\n0\r\n\r\n", "folded Transfer-Encoding")
    assert.matches('{"error":"obsolete line folding in a header"}', r.response, 1, true)
    refused("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "Transfer-Encoding folded from an empty value")
    refused("GET /echo HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n b\r\n\r\n", "folded X-Long")
  end)

  it("answers a bare-LF chunked body with 400 at once instead of hanging to the idle timeout", function()
    -- http_parser takes "hello\r\n" as part of the chunk extension and waits for 5 more bytes
    local r = refused("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. "5;ext\nhello\r\n0\r\n\r\n", "bare LF after a chunk extension")
    assert.matches('{"error":"bare LF in the request framing"}', r.response, 1, true)
    refused("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\n",
      "bare LF after the last chunk")
    refused("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\n\r\n",
      "bare LF in a trailer")
  end)

  it("refuses bare LF line ends in the request line and headers", function()
    refused("GET /echo HTTP/1.1\nHost: x\r\n\r\n", "request line")
    refused("GET /echo HTTP/1.1\r\nHost: x\n\r\n", "header line")
    refused("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\n\nhi", "end of headers")
  end)

  it("still takes well-framed requests: chunked with an extension and trailers, CR and LF in a body", function()
    local r = raw(srv.port, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      .. "3;ext=1\r\na\nb\r\n2\r\n\r\n\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert.are.equal(200, r.status, r.response)
    assert.matches('{"body":"a\\nb\\r\\n"}', r.response, 1, true)
    r = raw(srv.port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\n\n \n")
    assert.are.equal(200, r.status, r.response)
  end)
end)
