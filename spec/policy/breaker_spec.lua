-- spec/policy/breaker_spec.lua: the `breaker` option of pacer.client: after `failures`
-- consecutive failures (5xx or transport errors) the client sends nothing for `cooldown`,
-- then one probe; its answer closes the circuit or opens it again; requests that arrive
-- during the probe wait for it; 429 and other 4xx are not failures; the circuit_open
-- alert. A pacer.serve listener on 127.0.0.1 counts what reaches the server.
-- Runs inside the pacer host: ./build/pacer tools/busted.lua -o TAP spec/policy/breaker_spec.lua

local H = dofile("spec/support/helpers.lua")

local BREAKER = {failures = 3, cooldown = 0.5}

describe("pacer.client breaker", function()
  local srv
  local hits    -- times at which requests reached the server
  local answer  -- status the server answers with
  local delay   -- seconds the server takes to answer

  setup(function()
    srv = pacer.serve{routes = {["GET /x"] = function()
      hits[#hits + 1] = pacer.now()
      if delay > 0 then pacer.sleep(delay) end
      return answer, "status " .. answer
    end}}
  end)
  teardown(function() srv.close() end)
  before_each(function()
    hits, answer, delay = {}, 503, 0
  end)

  local function client(extra)
    local o = {base_url = srv.url, name = "svc", breaker = BREAKER, retry = false}
    for k, v in pairs(extra or {}) do o[k] = v end
    return pacer.client(o)
  end

  -- n requests that must each get an answer with status `want`
  local function get_n(api, n, want)
    for i = 1, n do
      local res, err = api:get("/x")
      assert(res, "request " .. i .. ": " .. tostring(err and err.message))
      assert.are.equal(want, res.status)
    end
  end

  it("opens after 3 consecutive 503s: nothing is sent for the cooldown, then one probe", function()
    local api = client()
    assert.are.equal("closed", api:stats().circuit)
    get_n(api, 2, 503)
    assert.are.equal("closed", api:stats().circuit)
    get_n(api, 1, 503)
    assert.are.equal("open", api:stats().circuit)
    local opened = pacer.now()
    local probe = pacer.spawn(function() return api:get("/x") end)
    pacer.sleep(0.3)
    assert.are.equal(3, #hits) -- held back while open
    local ok, res = probe:wait()
    assert(ok, tostring(res))
    assert.are.equal(503, res.status)
    assert.are.equal(4, #hits)
    local gap = hits[4] - opened
    assert.is_true(gap >= 0.49 and gap < 1, "the probe went out " .. gap .. " s after the circuit opened")
  end)

  it("a successful probe closes the circuit", function()
    local api = client()
    get_n(api, 3, 503)
    assert.are.equal("open", api:stats().circuit)
    answer = 200
    local t0 = pacer.now()
    get_n(api, 1, 200) -- the probe
    assert.is_true(pacer.now() - t0 >= 0.45, "the probe waited " .. (pacer.now() - t0))
    assert.are.equal("closed", api:stats().circuit)
    t0 = pacer.now()
    get_n(api, 3, 200)
    assert.is_true(pacer.now() - t0 < 0.3, "closed, yet 3 requests took " .. (pacer.now() - t0))
    assert.are.equal(7, #hits)
  end)

  it("a failed probe opens the circuit again for another cooldown", function()
    local api = client()
    get_n(api, 3, 503)
    local t0 = pacer.now()
    get_n(api, 1, 503) -- the probe fails
    local probe_at = pacer.now()
    assert.is_true(probe_at - t0 >= 0.45, "the probe waited " .. (probe_at - t0))
    assert.are.equal("open", api:stats().circuit)
    -- one failure was enough: the next request waits a whole cooldown again
    answer = 200
    get_n(api, 1, 200)
    local gap = hits[5] - hits[4]
    assert.is_true(gap >= 0.49 and gap < 1, "the second probe went out " .. gap .. " s after the first")
    assert.are.equal("closed", api:stats().circuit)
  end)

  it("requests arriving while the probe is out wait for its answer", function()
    local api = client()
    get_n(api, 3, 503)
    answer, delay = 200, 0.3
    pacer.sleep(0.55) -- past the cooldown: the first to go is the probe
    local tasks = {}
    for i = 1, 4 do
      tasks[i] = pacer.spawn(function() return api:get("/x") end)
    end
    pacer.sleep(0.15)
    assert.are.equal(4, #hits) -- only the probe reached the server
    assert.are.equal("half_open", api:stats().circuit)
    for i, t in ipairs(tasks) do
      local ok, res = t:wait()
      assert(ok, "task " .. i .. ": " .. tostring(res))
      assert.are.equal(200, res.status)
    end
    assert.are.equal(7, #hits)
    for i = 5, 7 do
      local after = hits[i] - hits[4]
      assert.is_true(after >= 0.29, "request " .. i .. " reached the server " .. after .. " s after the probe")
    end
    assert.are.equal("closed", api:stats().circuit)
  end)

  it("counts only consecutive failures", function()
    local api = client()
    get_n(api, 2, 503)
    answer = 200
    get_n(api, 1, 200)
    answer = 503
    get_n(api, 2, 503)
    assert.are.equal("closed", api:stats().circuit)
    get_n(api, 1, 503)
    assert.are.equal("open", api:stats().circuit)
  end)

  it("429 and other 4xx are not failures", function()
    local api = client()
    for _, st in ipairs{429, 404, 400, 401, 403, 429} do
      answer = st
      get_n(api, 1, st)
    end
    answer = 429
    get_n(api, 3, 429)
    assert.are.equal("closed", api:stats().circuit)
    -- and they break a run of failures
    answer = 503
    get_n(api, 2, 503)
    answer = 404
    get_n(api, 1, 404)
    answer = 500
    get_n(api, 2, 500)
    assert.are.equal("closed", api:stats().circuit)
    local t0 = pacer.now()
    answer = 200
    get_n(api, 1, 200)
    assert.is_true(pacer.now() - t0 < 0.3)
    assert.are.equal(15, #hits)
  end)

  it("fires the circuit_open alert", function()
    local calls = {}
    local api = client{alerts = {pacer.alert.on("circuit_open", function(info) calls[#calls + 1] = info end)}}
    get_n(api, 2, 503)
    pacer.sleep(0.05)
    assert.are.equal(0, #calls)
    get_n(api, 1, 503)
    for _ = 1, 20 do -- the action runs in its own task (bounded: 1 s)
      if #calls > 0 then break end
      pacer.sleep(0.05)
    end
    assert.are.equal(1, #calls)
    assert.are.equal("svc: circuit open after 3 failures, pausing 0.5s", calls[1].message)
    assert.are.equal("circuit_open", calls[1].event)
    assert.are.equal("svc", calls[1].client)
  end)

  it("retries are attempts too: they open the circuit, and later ones wait out the cooldown", function()
    local api = client{retry = {base = 0.01, cap = 0.02, max_tries = 5}}
    local t0 = pacer.now()
    local res, err = api:get("/x")
    assert.is_nil(res)
    assert.are.equal("gave_up", err.kind)
    assert.are.equal(5, err.attempts)
    assert.are.equal(5, #hits)
    -- attempts 4 and 5 were probes, each after a cooldown
    assert.is_true(hits[4] - hits[3] >= 0.49, "attempt 4 after " .. (hits[4] - hits[3]))
    assert.is_true(hits[5] - hits[4] >= 0.49, "attempt 5 after " .. (hits[5] - hits[4]))
    assert.is_true(pacer.now() - t0 < 2.5)
  end)
end)

describe("pacer.client breaker on transport errors", function()
  it("opens after 3 connection failures and holds the next attempt for the cooldown", function()
    local port = H.free_port() -- nothing listens there
    local api = pacer.client{base_url = "http://127.0.0.1:" .. port, breaker = BREAKER, retry = false}
    for i = 1, 3 do
      local res, err = api:get("/x")
      assert.is_nil(res)
      assert.are.equal("connect", err.kind, "request " .. i)
    end
    assert.are.equal("open", api:stats().circuit)
    local t0 = pacer.now()
    local res, err = api:get("/x")
    local waited = pacer.now() - t0
    assert.is_nil(res)
    assert.are.equal("connect", err.kind)
    assert.is_true(waited >= 0.45 and waited < 1.2, "the probe went out after " .. waited)
    assert.are.equal("open", api:stats().circuit)
  end)

  it("breaker = true uses 5 failures", function()
    local port = H.free_port()
    local api = pacer.client{base_url = "http://127.0.0.1:" .. port, breaker = true, retry = false}
    for _ = 1, 4 do api:get("/x") end
    assert.are.equal("closed", api:stats().circuit)
    api:get("/x")
    assert.are.equal("open", api:stats().circuit)
  end)
end)

describe("circuit breaker regressions", function()
  it("lets exactly one probe out when many requests waited through the cooldown", function()
    local hits = 0
    local srv = pacer.serve{routes = {["GET /x"] = function()
      hits = hits + 1
      pacer.sleep(0.3)
      return hits == 1 and 503 or 200
    end}}
    local api = pacer.client{base_url = srv.url, breaker = {failures = 1, cooldown = 0.5}, retry = false}
    api:get("/x")
    local tasks = {}
    for i = 1, 4 do tasks[i] = pacer.spawn(function() return api:get("/x") end) end
    pacer.sleep(0.65)
    assert.are.equal(1, hits - 1) -- one probe in flight, the rest waiting for it
    for _, t in ipairs(tasks) do assert.is_true((t:wait())) end
    srv.close()
    assert.are.equal(5, hits)
  end)

  it("a probe that raises lets the next request probe instead of hanging the client", function()
    local srv = pacer.serve{routes = {["GET /x"] = function() return 503 end, ["GET /ok"] = function() return 200 end}}
    local api = pacer.client{base_url = srv.url, breaker = {failures = 1, cooldown = 0.2}, retry = false}
    api:get("/x")
    pacer.sleep(0.3)
    assert.is_false((pcall(api.get, api, "/bad path")))
    local t = pacer.spawn(function() return api:get("/ok") end)
    local deadline = pacer.now() + 2
    while t:status() == "running" and pacer.now() < deadline do pacer.sleep(0.05) end
    srv.close()
    assert.are.equal("done", t:status())
    assert.are.equal("closed", api:stats().circuit)
  end)
end)
