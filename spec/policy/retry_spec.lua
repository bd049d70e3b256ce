-- spec/policy/retry_spec.lua: the default retry policy, Retry-After, giving up, idempotency
-- and the backoff strategies; attempts are counted server-side (pacer.serve on 127.0.0.1).
local H = dofile("spec/support/helpers.lua")

local FAST = {base = 0.01, cap = 0.05}

local message = H.message

local function with(t, extra)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

-- A server whose routes answer from a script: route(path, {answer1, answer2, ...}) where
-- an answer is {status, headers} or a function(req) -> status, body, headers; once the
-- script is used up every request gets 200 {"attempt": n}. srv.log[path] records every
-- attempt: {t=, method=, key=(Idempotency-Key), body=}.
local function scripted()
  local scripts, log = {}, {}
  local srv = pacer.serve{routes = {["* /*"] = function(req)
    local l = log[req.path] or {}
    log[req.path] = l
    l[#l + 1] = {t = pacer.now(), method = req.method, key = req.headers["idempotency-key"], body = req.body}
    local a = (scripts[req.path] or {})[#l]
    if type(a) == "function" then return a(req) end
    if a then return a[1], {error = "scripted", attempt = #l}, a[2] end
    return 200, {attempt = #l}
  end}}
  srv.log = log
  function srv.script(path, answers)
    scripts[path] = answers
    log[path] = {}
    return srv.url .. path
  end
  function srv.count(path) return #(log[path] or {}) end
  return srv
end

describe("default retry", function()
  local srv
  setup(function() srv = scripted() end)
  teardown(function() srv.close() end)

  it("retries 503 twice then returns the 200 (3 attempts, 2 retries)", function()
    srv.script("/flaky", {{503}, {503}})
    local api = pacer.client{base_url = srv.url, retry = FAST}
    local res, err = api:get("/flaky")
    assert.is_nil(err)
    assert.are.equal(200, res.status)
    assert.are.equal(3, res.attempts)
    assert.are.equal(3, res:json().attempt)
    assert.are.equal(3, srv.count("/flaky"))
    local s = api:stats()
    assert.are.equal(2, s.retries)
    assert.are.equal(3, s.requests)
    assert.are.equal(1, s.ok)
    assert.are.equal(0, s.failed)
    assert.are.same({[503] = 2, [200] = 1}, s.by_status)
  end)

  it("retries each of 429, 500, 502, 503, 504 by default, and not 400/404/501", function()
    for _, st in ipairs{429, 500, 502, 503, 504} do
      local u = srv.script("/s" .. st, {{st}})
      local res = assert(pacer.request{url = u, retry = FAST})
      assert.are.equal(200, res.status)
      assert.are.equal(2, srv.count("/s" .. st), "status " .. st)
    end
    for _, st in ipairs{400, 404, 501} do
      local u = srv.script("/n" .. st, {{st}})
      local res = assert(pacer.request{url = u, retry = FAST})
      assert.are.equal(st, res.status)
      assert.are.equal(1, res.attempts)
      assert.are.equal(1, srv.count("/n" .. st), "status " .. st)
    end
  end)

  it("pacer.request retries by default too", function()
    local u = srv.script("/plain", {{502}})
    local res = assert(pacer.request{url = u, retry = FAST})
    assert.are.equal(200, res.status)
    assert.are.equal(2, res.attempts)
  end)

  it("honours Retry-After in seconds on a 429", function()
    local u = srv.script("/ra", {{429, {["Retry-After"] = "1"}}})
    local api = pacer.client{retry = FAST}
    local t0 = pacer.now()
    local res = assert(api:get(u))
    local took = pacer.now() - t0
    assert.are.equal(200, res.status)
    assert.are.equal(2, res.attempts)
    local l = srv.log["/ra"]
    assert.are.equal(2, #l)
    assert.is_true(l[2].t - l[1].t >= 0.99, "gap " .. (l[2].t - l[1].t))
    assert.is_true(took >= 1 and took < 3, "took " .. took)
    assert.are.equal(1, api:stats().throttled)
  end)

  it("honours Retry-After as an HTTP-date", function()
    local when
    local u = srv.script("/radate", {function()
      when = math.floor(pacer.wall()) + 2
      return 503, "busy", {["Retry-After"] = os.date("!%a, %d %b %Y %H:%M:%S GMT", when)}
    end})
    local res = assert(pacer.request{url = u, retry = FAST})
    assert.are.equal(200, res.status)
    local l = srv.log["/radate"]
    assert.are.equal(2, #l)
    local gap = l[2].t - l[1].t
    -- the date has whole seconds: the wait is between 1 and 2 s, far above the backoff cap
    assert.is_true(gap >= 0.95 and gap < 3, "gap " .. gap)
  end)

  it("gives up at once when Retry-After is beyond max_time", function()
    local u = srv.script("/far", {{429, {["Retry-After"] = "120"}}})
    local t0 = pacer.now()
    local res, err = pacer.request{url = u, retry = with(FAST, {max_time = 5})}
    assert.is_nil(res)
    assert.is_true(pacer.now() - t0 < 1)
    assert.are.equal("gave_up", err.kind)
    assert.are.equal(1, err.attempts)
    assert.are.equal(429, err.status)
    assert.are.equal(429, err.last.status)
    assert.are.equal("Retry-After (120s) would pass max_time (5s)", err.reason)
    assert.are.equal("GET " .. u .. ": gave up after 1 attempt (last: HTTP 429): Retry-After (120s) would pass max_time (5s)",
      err.message)
    assert.are.equal(1, srv.count("/far"))
  end)

  it("gives up when Retry-After exceeds max_retry_after", function()
    local u = srv.script("/far2", {{503, {["Retry-After"] = "10"}}})
    local res, err = pacer.request{url = u, retry = with(FAST, {max_retry_after = 2})}
    assert.is_nil(res)
    assert.are.equal("gave_up", err.kind)
    assert.are.equal("Retry-After 10 exceeds max_retry_after (2s)", err.reason)
    assert.are.equal(1, srv.count("/far2"))
  end)

  it("ignores Retry-After when retry_after = false", function()
    local u = srv.script("/ign", {{429, {["Retry-After"] = "120"}}})
    local t0 = pacer.now()
    local res = assert(pacer.request{url = u, retry = with(FAST, {retry_after = false, max_time = 5})})
    assert.are.equal(200, res.status)
    assert.is_true(pacer.now() - t0 < 1)
  end)

  it("gives up after max_tries with err.attempts", function()
    local u = srv.script("/down", {{503}, {503}, {503}, {503}, {503}, {503}})
    local res, err = pacer.request{url = u, retry = with(FAST, {max_tries = 3})}
    assert.is_nil(res)
    assert.are.equal("gave_up", err.kind)
    assert.are.equal(3, err.attempts)
    assert.are.equal(503, err.status)
    assert.are.equal("max_tries (3) reached", err.reason)
    assert.are.equal("GET " .. u .. ": gave up after 3 attempts (last: HTTP 503): max_tries (3) reached", err.message)
    assert.are.equal(3, srv.count("/down"))
  end)

  it("uses the default max_tries of 6", function()
    local answers = {}
    for i = 1, 10 do answers[i] = {500} end
    local u = srv.script("/six", answers)
    local res, err = pacer.request{url = u, retry = FAST}
    assert.is_nil(res)
    assert.are.equal(6, err.attempts)
    assert.are.equal(6, srv.count("/six"))
  end)

  it("retries only the statuses in `on`", function()
    local u = srv.script("/on", {{503}})
    local res = assert(pacer.request{url = u, retry = with(FAST, {on = {500}})})
    assert.are.equal(503, res.status)
    assert.are.equal(1, srv.count("/on"))
  end)

  it("does not retry a POST without Idempotency-Key on 503", function()
    srv.script("/post503", {{503}})
    local api = pacer.client{base_url = srv.url, retry = FAST}
    local res, err = api:post("/post503", {json = {a = 1}})
    assert.is_nil(err)
    assert.are.equal(503, res.status)
    assert.are.equal(1, res.attempts)
    assert.are.equal(1, srv.count("/post503"))
    assert.is_nil(srv.log["/post503"][1].key)
    assert.are.equal(0, api:stats().retries)
  end)

  it("does retry a POST without Idempotency-Key on 429", function()
    srv.script("/post429", {{429}})
    local api = pacer.client{base_url = srv.url, retry = FAST}
    local res = assert(api:post("/post429", {json = {a = 1}}))
    assert.are.equal(200, res.status)
    assert.are.equal(2, res.attempts)
    assert.are.equal(2, srv.count("/post429"))
    assert.are.equal(1, api:stats().throttled)
  end)

  it("retries a POST with idempotency = true, carrying the same Idempotency-Key", function()
    srv.script("/idem", {{503}, {503}})
    local api = pacer.client{base_url = srv.url, idempotency = true, retry = FAST}
    local res = assert(api:post("/idem", {json = {to = "+15550100"}}))
    assert.are.equal(200, res.status)
    assert.are.equal(3, res.attempts)
    local l = srv.log["/idem"]
    assert.are.equal(3, #l)
    assert.is_string(l[1].key)
    assert.is_truthy(l[1].key:match("^%x+$"))
    assert.are.equal(32, #l[1].key)
    assert.are.equal(l[1].key, l[2].key)
    assert.are.equal(l[1].key, l[3].key)
    -- another logical request gets another key
    srv.script("/idem2", {})
    assert(api:post("/idem2", {json = {to = "+15550100"}}))
    assert.are_not.equal(l[1].key, srv.log["/idem2"][1].key)
  end)

  it("idempotency = true leaves GET without a key", function()
    srv.script("/idemget", {})
    local api = pacer.client{base_url = srv.url, idempotency = true, retry = FAST}
    assert(api:get("/idemget"))
    assert.is_nil(srv.log["/idemget"][1].key)
  end)

  it("an explicit idempotency_key makes a POST retryable and is sent on every attempt", function()
    srv.script("/idemkey", {{500}})
    local res = assert(pacer.request{method = "POST", url = srv.url .. "/idemkey", body = "x",
      idempotency_key = "order-42", retry = FAST})
    assert.are.equal(200, res.status)
    local l = srv.log["/idemkey"]
    assert.are.equal(2, #l)
    assert.are.equal("order-42", l[1].key)
    assert.are.equal("order-42", l[2].key)
  end)

  it("retries a POST on connection refused (nothing was sent)", function()
    local port = H.free_port()
    local api = pacer.client{base_url = "http://127.0.0.1:" .. port, retry = with(FAST, {max_tries = 3})}
    local res, err = api:post("/x", {json = {a = 1}})
    assert.is_nil(res)
    assert.are.equal("connect", err.kind)
    assert.are.equal(3, err.attempts)
    assert.are.equal("max_tries (3) reached", err.gave_up)
    assert.are.equal(2, api:stats().retries)
    assert.are.equal(1, api:stats().failed)
  end)

  it("retries a GET that timed out", function()
    srv.script("/slowonce", {function() pacer.sleep(1) return 200, "late" end})
    local res = assert(pacer.request{url = srv.url .. "/slowonce", timeout = 0.2, retry = FAST})
    assert.are.equal(200, res.status)
    assert.are.equal(2, res.attempts)
  end)

  it("does not retry a DNS failure", function()
    local res, err = pacer.request{url = "http://pacer-retry.invalid/", retry = FAST}
    assert.is_nil(res)
    assert.are.equal("dns", err.kind)
    assert.are.equal(1, err.attempts)
  end)

  it("retry = false gives a single attempt", function()
    srv.script("/once", {{503}})
    local res = assert(pacer.request{url = srv.url .. "/once", retry = false})
    assert.are.equal(503, res.status)
    assert.are.equal(1, res.attempts)
    assert.are.equal(1, srv.count("/once"))
    local api = pacer.client{base_url = srv.url, retry = false}
    srv.script("/once2", {{429}})
    assert.are.equal(429, api:get("/once2").status)
    assert.are.equal(1, srv.count("/once2"))
    local _, err = pacer.request{url = "http://127.0.0.1:" .. H.free_port() .. "/", retry = false}
    assert.are.equal("connect", err.kind)
    assert.are.equal(1, err.attempts)
  end)

  it("a per-request retry overrides the client's", function()
    srv.script("/override", {{503}})
    local api = pacer.client{base_url = srv.url, retry = FAST}
    assert.are.equal(503, api:get("/override", {retry = false}).status)
    assert.are.equal(1, srv.count("/override"))
  end)

  it("calls on_retry and on_giveup with attempt numbers", function()
    srv.script("/hooks", {{503}, {503}, {503}, {503}})
    local retries, giveups = {}, {}
    local res, err = pacer.request{url = srv.url .. "/hooks", retry = with(FAST, {max_tries = 3,
      on_retry = function(info)
        retries[#retries + 1] = info.attempt
        assert.are.equal(503, info.response.status)
        assert.is_true(info.delay >= 0 and info.delay <= 0.05)
      end,
      on_giveup = function(info)
        giveups[#giveups + 1] = {attempt = info.attempt, reason = info.reason, status = info.response.status}
      end,
    })}
    assert.is_nil(res)
    assert.are.equal("gave_up", err.kind)
    assert.are.same({1, 2}, retries)
    assert.are.same({{attempt = 3, reason = "max_tries (3) reached", status = 503}}, giveups)
  end)

  it("calls on_success after a retried success, not on_giveup", function()
    srv.script("/hooks2", {{500}})
    local seen = {}
    assert(pacer.request{url = srv.url .. "/hooks2", retry = with(FAST, {
      on_retry = function(i) seen[#seen + 1] = "retry " .. i.attempt end,
      on_success = function(i) seen[#seen + 1] = "success " .. i.attempt end,
      on_giveup = function(i) seen[#seen + 1] = "giveup " .. i.attempt end,
    })})
    assert.are.same({"retry 1", "success 2"}, seen)
  end)

  it("raises on an unknown retry option or backoff name", function()
    assert.are.equal("pacer.request.retry: unknown backoff 'expon' (known: constant, linear, fibonacci, expo, decorrelated)",
      message(function() return pacer.request{url = srv.url, retry = {backoff = "expon"}} end))
    assert.are.equal("pacer.client.retry: unknown backoff 'nope' (known: constant, linear, fibonacci, expo, decorrelated)",
      message(function() return pacer.client{retry = {backoff = "nope"}} end))
    assert.are.equal("pacer.client.retry: max_tries must be >= 1, got 0",
      message(function() return pacer.client{retry = {max_tries = 0}} end))
    assert.are.equal("pacer.client.retry: backoff must be a name or a table with a delay(self, attempt, ctx) method",
      message(function() return pacer.client{retry = {backoff = {}}} end))
    assert.are.equal("pacer.client.retry: unknown option 'max_tires' (known: backoff, base, cap, factor, jitter, "
      .. "max_retry_after, max_time, max_tries, on, on_giveup, on_retry, on_success, random, retry_after, "
      .. "retry_after_jitter, seed, unsafe)",
      message(function() return pacer.client{retry = {max_tires = 3}} end))
    assert.are.equal("pacer.request.retry: 'on' entries must be status codes, error kinds (network, timeout, "
      .. "connect, closed, dns, tls, protocol) or functions, got bogus",
      message(function() return pacer.request{url = srv.url, retry = {on = {"bogus"}}} end))
  end)

  it("uses a custom backoff object", function()
    srv.script("/custom", {{503}, {503}})
    local asked = {}
    local bo = {delay = function(_, attempt) asked[#asked + 1] = attempt return 0.2 end}
    local t0 = pacer.now()
    local res = assert(pacer.request{url = srv.url .. "/custom", retry = {backoff = bo}})
    assert.are.equal(200, res.status)
    assert.are.same({1, 2}, asked)
    assert.is_true(pacer.now() - t0 >= 0.39)
  end)
end)

describe("pacer.backoff", function()
  it("expo without jitter: 1, 2, 4, 8 ... capped", function()
    local b = pacer.backoff.expo{base = 1, factor = 2, cap = 60, jitter = "none"}
    assert.are.same({1, 2, 4, 8, 16, 32, 60, 60}, {b:delay(1), b:delay(2), b:delay(3), b:delay(4),
      b:delay(5), b:delay(6), b:delay(7), b:delay(20)})
    local b3 = pacer.backoff.expo{base = 0.5, factor = 3, cap = 10}
    assert.are.same({0.5, 1.5, 4.5, 10}, {b3:delay(1), b3:delay(2), b3:delay(3), b3:delay(4)})
  end)

  it("full jitter: U(0, d) from the given random function", function()
    local state = 12345
    local last
    local function random() -- a small LCG, seeded: reproducible
      state = (state * 1103515245 + 12345) % 2147483648
      last = state / 2147483648
      return last
    end
    local b = pacer.backoff.expo{base = 1, factor = 2, cap = 60, jitter = "full", random = random}
    local distinct = {}
    for n = 1, 10 do
      local d = math.min(60, 2 ^ (n - 1))
      local got = b:delay(n)
      assert.is_true(got >= 0 and got <= d, "attempt " .. n .. ": " .. got)
      assert.are.equal(d * last, got)
      distinct[got] = true
    end
    local k = 0
    for _ in pairs(distinct) do k = k + 1 end
    assert.are.equal(10, k)
  end)

  it("full jitter hits both ends with random() = 0 and 1", function()
    local r = 0
    local b = pacer.backoff.expo{base = 1, factor = 2, cap = 60, jitter = "full", random = function() return r end}
    assert.are.equal(0, b:delay(3))
    r = 1
    assert.are.equal(4, b:delay(3))
  end)

  it("equal jitter: d/2 + U(0, d/2)", function()
    local b = pacer.backoff.expo{base = 1, factor = 2, jitter = "equal", random = function() return 0.5 end}
    assert.are.equal(6, b:delay(4)) -- 8/2 + 8/2 * 0.5
  end)

  it("constant, linear and fibonacci", function()
    local c = pacer.backoff.constant{delay = 3}
    assert.are.same({3, 3, 3}, {c:delay(1), c:delay(2), c:delay(9)})
    local l = pacer.backoff.linear{step = 2}
    assert.are.same({2, 4, 6}, {l:delay(1), l:delay(2), l:delay(3)})
    local f = pacer.backoff.fibonacci{}
    assert.are.same({1, 1, 2, 3, 5, 8}, {f:delay(1), f:delay(2), f:delay(3), f:delay(4), f:delay(5), f:delay(6)})
  end)

  it("decorrelated stays within [base, cap]", function()
    local b = pacer.backoff.decorrelated{base = 1, cap = 10, random = function() return 0.999 end}
    local prev
    for n = 1, 8 do
      local d = b:delay(n, {previous = prev})
      assert.is_true(d >= 1 and d <= 10, "attempt " .. n .. ": " .. d)
      prev = d
    end
    assert.are.equal(10, prev)
  end)

  it("the retry policy builds expo with the given base, factor, cap and jitter", function()
    local srv = scripted()
    srv.script("/pol", {{503}, {503}, {503}})
    local delays = {}
    assert(pacer.request{url = srv.url .. "/pol", retry = {base = 0.01, factor = 3, cap = 0.05, jitter = "none",
      on_retry = function(i) delays[#delays + 1] = i.delay end}})
    srv.close()
    assert.are.equal(3, #delays)
    assert.is_true(math.abs(delays[1] - 0.01) < 1e-12)
    assert.is_true(math.abs(delays[2] - 0.03) < 1e-12)
    assert.are.equal(0.05, delays[3])
  end)

  it("raises on an unknown jitter", function()
    assert.are.equal("pacer.backoff.expo: jitter must be \"full\", \"equal\" or \"none\", got \"half\"",
      message(function() return pacer.backoff.expo{jitter = "half"} end))
  end)
end)
