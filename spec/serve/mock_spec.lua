-- spec/serve/mock_spec.lua: pacer.mock{}: the rate-limited fake API on 127.0.0.1 (limits,
-- quota headers, endpoints, auth, injected failures, idempotent replay, its record).
local json = pacer.json

local H = dofile("spec/support/helpers.lua")
local message = H.message

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

-- n requests at once (no pacing, no retry); returns the responses in order
local function burst(url, n, o)
  local res = pacer.each(range(n), function()
    local r = {url = url, retry = false}
    for k, v in pairs(o or {}) do r[k] = v end
    return assert(pacer.request(r))
  end, {concurrency = n, progress = false})
  local out = {}
  for i, r in ipairs(res) do
    assert.is_true(r.ok, tostring(r.err))
    out[i] = r.value
  end
  return out
end

local function send(url, to, msg, o)
  local r = {method = "POST", url = url .. "/v2/sms/send", json = {to = to, message = msg}, retry = false}
  for k, v in pairs(o or {}) do r[k] = v end
  return pacer.request(r)
end

describe("pacer.mock limits", function()
  it("sends RateLimit-Limit/Remaining/Reset on every answer", function()
    local mock = pacer.mock{rate = "5/s"}
    local remaining = {}
    for i, path in ipairs{"/v2/numbers", "/v2/billing/usage", "/v2/nope"} do
      local res = assert(pacer.request{url = mock.url .. path, retry = false})
      assert.are.equal("5", res.headers["RateLimit-Limit"])
      remaining[i] = tonumber(res.headers["RateLimit-Remaining"])
      local reset = tonumber(res.headers["RateLimit-Reset"])
      assert.is_true(reset ~= nil and reset >= 0 and reset <= 1, "reset " .. tostring(res.headers["RateLimit-Reset"]))
      assert.are.equal(5, res.quota.limit)
    end
    local res = assert(send(mock.url, "bad", "x"))
    assert.are.equal(422, res.status)
    assert.are.equal("5", res.headers["ratelimit-limit"])
    mock:close()
    assert.are.same({4, 3, 2}, remaining)
  end)

  it("answers 429 with Retry-After over the limit (an unpaced burst)", function()
    local mock = pacer.mock{rate = "5/s"}
    local res = burst(mock.url .. "/v2/numbers", 8)
    local by = {}
    for _, r in ipairs(res) do
      by[r.status] = (by[r.status] or 0) + 1
      if r.status == 429 then
        local ra = tonumber(r.headers["Retry-After"])
        assert.is_true(ra ~= nil and ra >= 1 and ra <= 2, "Retry-After " .. tostring(r.headers["Retry-After"]))
        assert.are.equal("0", r.headers["RateLimit-Remaining"])
        assert.are.same({error = "rate limit exceeded"}, r:json())
      end
    end
    assert.are.same({[200] = 5, [429] = 3}, by)
    assert.are.equal(3, mock:count{status = 429})
    assert.are.equal(5, mock:count{status = 200})
    mock:close()
  end)

  it("refills at the declared rate (gcra)", function()
    local mock = pacer.mock{rate = "10/s", burst = 1}
    local a = burst(mock.url .. "/v2/numbers", 2)
    local st = {a[1].status, a[2].status}
    table.sort(st)
    assert.are.same({200, 429}, st)
    pacer.sleep(0.12)
    assert.are.equal(200, assert(pacer.request{url = mock.url .. "/v2/numbers", retry = false}).status)
    mock:close()
  end)

  it("mode = 'fixed' counts per window and opens again when the window resets", function()
    local mock = pacer.mock{rate = "3/s", mode = "fixed"}
    assert.are.equal("fixed", mock.mode)
    local res = {}
    for i = 1, 5 do res[i] = assert(pacer.request{url = mock.url .. "/v2/numbers", retry = false}) end
    local st, rem = {}, {}
    for i, r in ipairs(res) do st[i], rem[i] = r.status, r.headers["ratelimit-remaining"] end
    assert.are.same({200, 200, 200, 429, 429}, st)
    assert.are.same({"2", "1", "0", "0", "0"}, rem)
    assert.are.equal("1", res[4].headers["retry-after"])
    -- every answer in the window reports the same reset: the end of the window
    local reset = tonumber(res[5].headers["ratelimit-reset"])
    assert.are.equal(1, reset)
    pacer.sleep(1.05)
    local r = assert(pacer.request{url = mock.url .. "/v2/numbers", retry = false})
    assert.are.equal(200, r.status)
    assert.are.equal("2", r.headers["ratelimit-remaining"])
    mock:close()
  end)

  it("a fixed retry_after is sent as given", function()
    local mock = pacer.mock{rate = "1/s", retry_after = "7"}
    burst(mock.url .. "/v2/numbers", 1)
    local r = burst(mock.url .. "/v2/numbers", 1)[1]
    mock:close()
    assert.are.equal(429, r.status)
    assert.are.equal("7", r.headers["retry-after"])
  end)

  it("raises on bad options", function()
    assert.are.equal("pacer.mock: mode must be \"gcra\" or \"fixed\", got \"sliding\"",
      message(function() return pacer.mock{mode = "sliding"} end))
    assert.are.equal("pacer.mock: 'fail' must be between 0 and 1, got 2",
      message(function() return pacer.mock{fail = 2} end))
    assert.are.equal("pacer.mock: 'drop' must be between 0 and 1, got -0.5",
      message(function() return pacer.mock{drop = -0.5} end))
    assert.are.equal("pacer.mock: option 'rate' must be a rate (\"10/s\" or a number), got table",
      message(function() return pacer.mock{rate = {}} end))
    local m = message(function() return pacer.mock{rte = "1/s"} end)
    assert.are.equal("pacer.mock: unknown option 'rte' (known: burst, drop, fail, fail_status, headers, host, key, latency, "
      .. "max_batch, mode, numbers, port, rate, retry_after)", m)
  end)
end)

describe("pacer.mock endpoints", function()
  local mock
  setup(function() mock = pacer.mock{rate = "1000/s", numbers = 250} end)
  teardown(function() mock:close() end)

  it("POST /v2/sms/send: 200 with an id", function()
    local res = assert(send(mock.url, "+15550100", "hello"))
    assert.are.equal(200, res.status)
    local body = res:json()
    assert.is_truthy(body.id:match("^SM%d%d%d%d%d%d%d%d$"))
    assert.are.equal("+15550100", body.to)
    assert.are.equal("queued", body.status)
    local res2 = assert(send(mock.url, "+15550101", "again"))
    assert.are_not.equal(body.id, res2:json().id)
  end)

  it("POST /v2/sms/send: 422 for bad input, 400 for a body that is not an object", function()
    local res = assert(send(mock.url, "5550100", "x"))
    assert.are.equal(422, res.status)
    assert.are.same({error = "'to' must be a phone number like +15550100"}, res:json())
    res = assert(send(mock.url, "+15550100", ""))
    assert.are.equal(422, res.status)
    assert.are.same({error = "'message' is required"}, res:json())
    res = assert(pacer.request{method = "POST", url = mock.url .. "/v2/sms/send", body = "nope",
      headers = {["Content-Type"] = "text/plain"}, retry = false})
    assert.are.equal(400, res.status)
    assert.are.same({error = "body must be a JSON object"}, res:json())
  end)

  it("POST /v2/sms/batch: a result per item, errors in place", function()
    local res = assert(pacer.request{method = "POST", url = mock.url .. "/v2/sms/batch", retry = false,
      json = {messages = {{to = "+15550001", message = "a"}, {to = "bad", message = "b"}, {to = "+15550003", message = ""}}}})
    assert.are.equal(200, res.status)
    local r = res:json().results
    assert.are.equal(3, #r)
    assert.are.equal("+15550001", r[1].to)
    assert.is_truthy(r[1].id:match("^SM%d+$"))
    assert.are.same({index = 2, error = "'to' must be a phone number like +15550100"}, r[2])
    assert.are.same({index = 3, error = "'message' is required"}, r[3])
  end)

  it("POST /v2/sms/batch: 400 without messages, 413 over max_batch", function()
    local res = assert(pacer.request{method = "POST", url = mock.url .. "/v2/sms/batch", json = {}, retry = false})
    assert.are.equal(400, res.status)
    local m = pacer.mock{rate = "1000/s", max_batch = 2}
    res = assert(pacer.request{method = "POST", url = m.url .. "/v2/sms/batch", retry = false,
      json = {messages = {{to = "+1", message = "a"}, {to = "+2", message = "b"}, {to = "+3", message = "c"}}}})
    m:close()
    assert.are.equal(413, res.status)
    assert.are.same({error = "at most 2 messages per batch"}, res:json())
  end)

  it("GET /v2/numbers pages through all numbers", function()
    local all, pages = {}, 0
    for page = 1, 10 do
      local res = assert(pacer.request{url = mock.url .. "/v2/numbers", query = {page = page, per_page = 100}, retry = false})
      local body = res:json()
      assert.are.equal(page, body.page)
      assert.are.equal(100, body.per_page)
      assert.are.equal(250, body.total)
      if #body.numbers == 0 then break end
      pages = pages + 1
      for _, n in ipairs(body.numbers) do
        assert.is_nil(all[n.number], "duplicate " .. n.number)
        all[n.number] = true
        assert.are.same({"sms"}, n.capabilities)
      end
    end
    local k = 0
    for _ in pairs(all) do k = k + 1 end
    assert.are.equal(3, pages)
    assert.are.equal(250, k)
    assert.is_true(all["+15550000001"] and all["+15550000250"])
  end)

  it("GET /v2/numbers caps per_page at 100 and defaults to 50", function()
    local body = assert(pacer.request{url = mock.url .. "/v2/numbers", retry = false}):json()
    assert.are.equal(1, body.page)
    assert.are.equal(50, #body.numbers)
    body = assert(pacer.request{url = mock.url .. "/v2/numbers?per_page=500", retry = false}):json()
    assert.are.equal(100, body.per_page)
    assert.are.equal(100, #body.numbers)
  end)

  it("GET /v2/billing/usage counts sent messages and requests", function()
    local m = pacer.mock{rate = "1000/s"}
    assert(send(m.url, "+15550100", "a"))
    assert(send(m.url, "+15550100", "b"))
    assert(send(m.url, "nope", "c"))
    local res = assert(pacer.request{url = m.url .. "/v2/billing/usage", retry = false})
    m:close()
    -- requests: those recorded before this one
    assert.are.same({sms_sent = 2, requests = 3}, res:json())
  end)

  it("answers 404 to an unknown endpoint", function()
    local res = assert(pacer.request{url = mock.url .. "/v3/x", retry = false})
    assert.are.equal(404, res.status)
    assert.are.same({error = "no route for GET /v3/x"}, res:json())
  end)
end)

describe("pacer.mock auth, failures and replay", function()
  it("key = ...: 401 without or with a wrong X-Auth-Token, 200 with the right one", function()
    local mock = pacer.mock{key = "k_secret"}
    local res = assert(pacer.request{url = mock.url .. "/v2/numbers", retry = false})
    assert.are.equal(401, res.status)
    assert.are.same({error = "missing or invalid X-Auth-Token"}, res:json())
    res = assert(pacer.request{url = mock.url .. "/v2/numbers", headers = {["X-Auth-Token"] = "k_wrong"}, retry = false})
    assert.are.equal(401, res.status)
    local api = pacer.client{base_url = mock.url .. "/v2", headers = {["X-Auth-Token"] = "k_secret"}, retry = false}
    assert.are.equal(200, api:get("/numbers").status)
    assert.are.equal(2, mock:count{status = 401})
    mock:close()
  end)

  it("fail = 1 answers 500 or 503 (injected) every time", function()
    local mock = pacer.mock{fail = 1}
    for _ = 1, 10 do
      local res = assert(send(mock.url, "+15550100", "x"))
      assert.is_true(res.status == 500 or res.status == 503, "status " .. res.status)
      assert.are.same({error = "injected failure"}, res:json())
    end
    assert.are.equal(10, mock:count{injected = true})
    local usage = assert(pacer.request{url = mock.url .. "/v2/billing/usage", retry = false})
    mock:close()
    assert.are_not.equal(200, usage.status) -- the failure hits every endpoint
  end)

  it("fail_status picks the injected status", function()
    local mock = pacer.mock{fail = 1, fail_status = {502}}
    local res = assert(pacer.request{url = mock.url .. "/v2/numbers", retry = false})
    mock:close()
    assert.are.equal(502, res.status)
  end)

  it("fail = 1 with the default retry gives up after max_tries", function()
    local mock = pacer.mock{fail = 1}
    local res, err = pacer.request{url = mock.url .. "/v2/numbers", retry = {max_tries = 3, base = 0.01, cap = 0.02}}
    mock:close()
    assert.is_nil(res)
    assert.are.equal("gave_up", err.kind)
    assert.are.equal(3, err.attempts)
  end)

  it("drop = 1 loses the connection mid-answer: client error kind 'closed'", function()
    local mock = pacer.mock{drop = 1}
    local res, err = send(mock.url, "+15550100", "x")
    assert.is_nil(res)
    assert.are.equal("closed", err.kind)
    assert.is_true(err.sent)
    -- the message was processed before the answer was lost
    assert.are.equal(1, mock:count{path = "/v2/sms/send", dropped = true})
    mock:close()
  end)

  it("drop = 1: a POST without a key is not resent, one with a key is and gets the replay", function()
    local mock = pacer.mock{drop = 1}
    local res, err = send(mock.url, "+15550100", "no key", {retry = {base = 0.01, cap = 0.02}})
    assert.is_nil(res)
    assert.are.equal("closed", err.kind)
    assert.are.equal(1, err.attempts)
    local api = pacer.client{base_url = mock.url .. "/v2", idempotency = true, retry = {base = 0.01, cap = 0.02}}
    res = assert(api:post("/sms/send", {json = {to = "+15550100", message = "with key"}}))
    assert.are.equal(200, res.status)
    assert.are.equal(2, res.attempts)
    assert.are.equal("true", res.headers["Idempotent-Replayed"])
    -- each logical request was processed once (and its answer dropped); the resend was a replay
    assert.are.equal(2, mock:count{path = "/v2/sms/send", dropped = true})
    assert.are.equal(1, mock:count{path = "/v2/sms/send", replayed = true})
    assert.are.equal(3, mock:count{path = "/v2/sms/send"})
    mock:close()
  end)

  it("replays an Idempotency-Key: same answer, Idempotent-Replayed, counted once", function()
    local mock = pacer.mock{rate = "1000/s"}
    local h = {["Idempotency-Key"] = "key-123"}
    local a = assert(send(mock.url, "+15550100", "once", {headers = h}))
    local b = assert(send(mock.url, "+15550100", "once", {headers = h}))
    assert.are.equal(200, a.status)
    assert.are.equal(200, b.status)
    assert.is_nil(a.headers["idempotent-replayed"])
    assert.are.equal("true", b.headers["Idempotent-Replayed"])
    assert.are.same(a:json(), b:json())
    assert.are.equal(1, mock:count{path = "/v2/sms/send", replayed = true})
    assert.are.equal(2, mock:count{path = "/v2/sms/send", idempotency_key = "key-123"})
    -- another key is another message
    local c = assert(send(mock.url, "+15550100", "once", {headers = {["Idempotency-Key"] = "key-456"}}))
    assert.are_not.equal(a:json().id, c:json().id)
    local usage = assert(pacer.request{url = mock.url .. "/v2/billing/usage", retry = false}):json()
    mock:close()
    assert.are.equal(2, usage.sms_sent)
  end)

  it("replays a 4xx answer for the same key too", function()
    local mock = pacer.mock{rate = "1000/s"}
    local h = {["Idempotency-Key"] = "bad-1"}
    local a = assert(send(mock.url, "oops", "x", {headers = h}))
    local b = assert(send(mock.url, "oops", "x", {headers = h}))
    mock:close()
    assert.are.equal(422, a.status)
    assert.are.equal(422, b.status)
    assert.are.equal("true", b.headers["idempotent-replayed"])
  end)

  it("latency delays every answer", function()
    local mock = pacer.mock{latency = "200ms"}
    local res = assert(pacer.request{url = mock.url .. "/v2/numbers", retry = false})
    mock:close()
    assert.is_true(res.elapsed >= 0.19, "elapsed " .. res.elapsed)
  end)

  it("records every request in mock.requests", function()
    local mock = pacer.mock{rate = "2/s", key = "k"}
    local t0 = pacer.now()
    local api = pacer.client{base_url = mock.url .. "/v2", headers = {["X-Auth-Token"] = "k"}, retry = false}
    api:post("/sms/send", {json = {to = "+15550100", message = "r1"}, idempotency_key = "ik"})
    api:get("/numbers")
    api:get("/numbers") -- over 2/s: 429
    pacer.request{url = mock.url .. "/v2/numbers", retry = false} -- no key: 401
    local r = mock.requests
    mock:close()
    assert.are.equal(4, #r)
    for i, want in ipairs{{"POST", "/v2/sms/send", 200}, {"GET", "/v2/numbers", 200}, {"GET", "/v2/numbers", 429},
                          {"GET", "/v2/numbers", 401}} do
      assert.are.equal(i, r[i].seq)
      assert.are.same(want, {r[i].method, r[i].path, r[i].status})
      assert.is_true(r[i].t >= t0 and r[i].t <= pacer.now())
    end
    assert.are.equal("ik", r[1].idempotency_key)
    assert.are.same({to = "+15550100", message = "r1"}, json.decode(r[1].body))
    assert.is_nil(r[2].idempotency_key)
  end)
end)

describe("pacer.mock end to end", function()
  it("a client declared at the mock's rate gets no 429 and each message arrives exactly once", function()
    local mock = pacer.mock{rate = "50/s"}
    local api = pacer.client{base_url = mock.url .. "/v2", rate = "50/s", concurrency = 8, idempotency = true,
      retry = {max_tries = 3, base = 0.05, cap = 0.2}}
    local list = {}
    for i = 1, 100 do list[i] = string.format("message %03d", i) end
    local t0 = pacer.now()
    local results = pacer.each(list, function(msg)
      local res, err = api:post("/sms/send", {json = {to = "+15550100", message = msg}})
      assert(res, err and err.message)
      return res.status
    end, {concurrency = 8, progress = false})
    local took = pacer.now() - t0
    for i, r in ipairs(results) do
      assert.is_true(r.ok, tostring(r.err))
      assert.are.equal(200, r.value, "item " .. i)
    end
    local s = api:stats()
    assert.are.equal(0, s.throttled)
    assert.are.equal(0, s.retries)
    assert.are.equal(100, s.ok)
    assert.are.equal(0, mock:count{status = 429})
    assert.are.equal(100, mock:count{path = "/v2/sms/send", status = 200})
    local seen = {}
    for _, r in ipairs(mock.requests) do
      local m = json.decode(r.body).message
      seen[m] = (seen[m] or 0) + 1
    end
    for _, msg in ipairs(list) do assert.are.equal(1, seen[msg], msg) end
    local usage = assert(pacer.request{url = mock.url .. "/v2/billing/usage", retry = false}):json()
    mock:close()
    assert.are.equal(100, usage.sms_sent)
    -- paced at 50/s with a burst of 1: about 2 s, not a burst
    assert.is_true(took >= 1.9 and took < 6, "took " .. took)
  end)
end)

describe("pacer mock on the command line", function()
  it("a port in use is one clear line and exit 1, not the usage text", function()
    local srv = pacer.serve{port = 0, routes = {}}
    local out, code = H.sh(string.format("%s mock --port %d 2>&1", H.q(H.PACER), srv.port), 20)
    srv:close()
    assert.are.equal(1, code)
    assert.are.equal(string.format("pacer mock: port %d is in use (Address already in use)\n", srv.port), out)
  end)

  it("pacer.serve on a port in use says so", function()
    local srv = pacer.serve{port = 0, routes = {}}
    local msg = H.message(function() pacer.serve{port = srv.port, routes = {}} end)
    srv:close()
    assert.are.equal(string.format("pacer.serve: port %d is in use (Address already in use)", srv.port), msg)
  end)

  it("GET /_mock/requests is a JSON list, [] when nothing was received", function()
    local m = pacer.mock{}
    local res = assert(pacer.request{url = m.url .. "/_mock/requests", retry = false})
    assert.are.equal("[]", res.body)
    assert(pacer.request{url = m.url .. "/v2/numbers", retry = false})
    local rec = assert(pacer.request{url = m.url .. "/_mock/requests", retry = false}):json()
    m:close()
    assert.are.equal(1, #rec)
    assert.are.equal("/v2/numbers", rec[1].path)
  end)
end)
