-- spec/policy/adaptive_spec.lua: pacer.client{adaptive = true}: the pace learnt from quota
-- headers (pacer.mock, fixed windows, no declared rate), from 429s when the API sends no
-- headers (halve on a 429), the client-wide Retry-After pause, remaining = 0 pausing
-- until the reset, the tightest of several IETF policies, the declared rate as a
-- ceiling, `target`, and api:quota().exhausts_in. Servers on 127.0.0.1 count hits.
-- Runs inside the pacer host: ./build/pacer tools/busted.lua -o TAP spec/policy/adaptive_spec.lua
-- Timing bounds are generous: the machine is shared and noisy.

local message = dofile("spec/support/helpers.lua").message

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

local function near(want, got, eps, what)
  assert(math.abs(want - got) <= (eps or 1e-9), string.format("%s: expected %s, got %s", what or "value", want, got))
end

-- runs fn(i) for i = 1..n with `conc` at once; every call must succeed
local function run_all(n, conc, fn)
  local out = pacer.each(range(n), fn, {concurrency = conc, progress = false})
  for i, r in ipairs(out) do assert(r.ok, "call " .. i .. " failed: " .. tostring(r.err)) end
  return out
end

local FAST = {base = 0.05, cap = 0.2}

describe("adaptive pacing from quota headers", function()
  it("learns the pace of a fixed-window mock: few 429s, N requests in about N/R", function()
    local mock = pacer.mock{rate = "20/2s", mode = "fixed"} -- 10/s, in windows of 2 s
    local api = pacer.client{base_url = mock.url, adaptive = true, retry = FAST}
    -- nothing declared, nothing learnt yet: no limit
    assert.is_true(api:stats().rate >= 1e5, "rate before any answer " .. api:stats().rate)
    local N, R = 60, 10
    local t0 = pacer.now()
    local first = assert(api:get("/v2/numbers"))
    assert.are.equal(200, first.status)
    -- learnt from the first answer: 19 left, "reset in 2 s" (whole seconds, rounded up: the
    -- window really ends in 1..2 s): target 0.9 x 19 over between 2 s and 1 s
    local learnt = api:stats().rate
    assert.is_true(learnt >= 0.9 * 19 / 2 - 1e-9 and learnt <= 19, "rate after the first answer " .. learnt)
    local rates = {}
    run_all(N - 1, 4, function()
      local res, err = api:get("/v2/numbers")
      assert(res and res.status == 200, err and err.message or (res and res.status))
      rates[#rates + 1] = api:stats().rate
    end)
    local took = pacer.now() - t0
    mock:close()
    local ideal = N / R
    local windows = math.ceil(took / 2)
    local n429 = mock:count{status = 429}
    assert.are.equal(N, mock:count{status = 200})
    assert.is_true(n429 < 2 * windows, n429 .. " 429s in " .. windows .. " windows")
    assert.is_true(took >= 0.8 * ideal and took <= 1.6 * ideal,
      string.format("%d requests took %.2fs (ideal %.1fs)", N, took, ideal))
    for i, r in ipairs(rates) do
      assert.is_true(r > 0.5 and r < 20, "rate after answer " .. (i + 1) .. ": " .. r)
    end
    local s = api:stats()
    assert.is_true(s.rate > 0.5 and s.rate < 20, "rate " .. s.rate)
    assert.are.equal(N, s.ok)
  end)

  it("pauses until the reset when remaining is 0", function()
    local hits = {}
    local srv = pacer.serve{routes = {["GET /q"] = function()
      hits[#hits + 1] = pacer.now()
      local remaining, reset = 0, 1
      if #hits > 1 then remaining, reset = 50, 10 end
      return 200, "ok", {["RateLimit-Limit"] = "60", ["RateLimit-Remaining"] = tostring(remaining),
        ["RateLimit-Reset"] = tostring(reset)}
    end}}
    local api = pacer.client{base_url = srv.url, adaptive = true, retry = false}
    assert(api:get("/q"))
    local t0 = pacer.now()
    assert(api:get("/q"))
    local waited = pacer.now() - t0
    assert.are.equal(2, #hits)
    local gap = hits[2] - hits[1]
    assert.is_true(gap >= 0.95 and gap < 1.6, "second request reached the server after " .. gap .. " s")
    assert.is_true(waited >= 0.95, "the second request waited " .. waited)
    -- the second answer left 50 of 60 for 9..10 s: no pause, a pace of 0.9 x 50 over that
    local rate = api:stats().rate
    assert.is_true(rate >= 4.5 - 1e-9 and rate <= 50 / 9, "rate " .. rate)
    t0 = pacer.now()
    assert(api:get("/q"))
    assert.is_true(pacer.now() - t0 < 0.5, "the third request waited " .. (pacer.now() - t0))
    srv.close()
  end)

  it("paces to the tightest of two IETF RateLimit policies", function()
    local hits = {}
    local srv = pacer.serve{routes = {["GET /p"] = function()
      hits[#hits + 1] = pacer.now()
      -- "fast" is the more used (90%) but allows 9/s; "slow" is 10% used but allows 1.62/s
      return 200, "ok", {
        ["RateLimit-Policy"] = '"fast";q=100;w=1, "slow";q=10;w=10',
        ["RateLimit"] = '"fast";r=10;t=1, "slow";r=9;t=5',
      }
    end}}
    local api = pacer.client{base_url = srv.url, adaptive = true}
    local res = assert(api:get("/p"))
    assert.are.equal(2, #res.quota.policies)
    -- "slow": 0.9 x 9 over 4..5 s, 1.62/s to 2.03/s (far below the 9/s "fast" allows)
    local rate = api:stats().rate
    assert.is_true(rate >= 0.9 * 9 / 5 - 1e-9 and rate <= 0.9 * 9 / 4 + 1e-9, "rate " .. rate)
    for _ = 1, 4 do assert(api:get("/p")) end
    srv.close()
    for i = 3, 5 do -- paced at <= 2.03/s: at least 0.49 s apart (the second may ride the first's slot)
      local gap = hits[i] - hits[i - 1]
      assert.is_true(gap >= 0.49 and gap < 1.0, "gap " .. (i - 1) .. "-" .. i .. ": " .. gap)
    end
  end)

  it("spreads what is left times `target`", function()
    local srv = pacer.serve{routes = {["GET /t"] = function()
      return 200, "ok", {["RateLimit-Limit"] = "100", ["RateLimit-Remaining"] = "80", ["RateLimit-Reset"] = "10"}
    end}}
    local half = pacer.client{base_url = srv.url, adaptive = true, target = 0.5}
    local full = pacer.client{base_url = srv.url, adaptive = true, target = 1}
    local default = pacer.client{base_url = srv.url, adaptive = true}
    assert(half:get("/t"))
    assert(full:get("/t"))
    assert(default:get("/t"))
    srv.close()
    local rate = half:stats().rate
    assert.is_true(rate >= 0.5 * 80 / 10 - 1e-9 and rate <= 0.5 * 80 / 9 + 1e-9, "rate " .. rate)
    near(2 * rate, full:stats().rate, 1e-9, "rate with target 1")
    near(1.8 * rate, default:stats().rate, 1e-9, "rate with the default target (0.9)")
  end)

  it("never exceeds a declared rate, whatever the headers allow", function()
    local hits = {}
    local srv = pacer.serve{routes = {["GET /d"] = function()
      hits[#hits + 1] = pacer.now()
      return 200, "ok", {["RateLimit-Limit"] = "10000", ["RateLimit-Remaining"] = "9999", ["RateLimit-Reset"] = "10"}
    end}}
    local api = pacer.client{base_url = srv.url, adaptive = true, rate = "5/s"}
    assert.are.equal(5, api:stats().rate)
    local t0 = pacer.now()
    run_all(11, 4, function() assert(api:get("/d")) end)
    local took = pacer.now() - t0
    srv.close()
    assert.are.equal(5, api:stats().rate)
    assert.are.equal(11, #hits)
    assert.is_true(took >= 1.95 and took < 3, "11 requests at 5/s took " .. took)
    for i = 2, #hits do
      assert.is_true(hits[i] - hits[i - 1] >= 0.19, "hits " .. (i - 1) .. " and " .. i .. " were "
        .. (hits[i] - hits[i - 1]) .. " s apart")
    end
  end)
end)

describe("adaptive pacing without quota headers", function()
  -- a server with no quota headers that answers 429 + Retry-After: 1 to a request that
  -- would be the (K+1)th within a second; log = times of the accepted requests
  local function k_per_second(K)
    local st = {accepted = {}, n429 = 0}
    st.srv = pacer.serve{routes = {["GET /k"] = function()
      local now, recent = pacer.now(), 0
      for _, t in ipairs(st.accepted) do if now - t < 1 then recent = recent + 1 end end
      if recent >= K then
        st.n429 = st.n429 + 1
        return 429, "slow down", {["Retry-After"] = "1"}
      end
      st.accepted[#st.accepted + 1] = now
      return 200, "ok"
    end}}
    return st
  end

  -- a server with no quota headers that answers 429 (no Retry-After) to the next
  -- `srv.throttle` requests, then 200
  local function throttling(path)
    local srv
    srv = pacer.serve{routes = {["GET " .. path] = function()
      if srv.throttle > 0 then
        srv.throttle = srv.throttle - 1
        return 429, "slow down"
      end
      return 200, "ok"
    end}}
    srv.throttle = 1
    return srv
  end

  it("halves the rate on each 429 without Retry-After", function()
    local srv = throttling("/h")
    local api = pacer.client{base_url = srv.url, adaptive = true, rate = "8/s", retry = FAST}
    assert.are.equal(8, api:stats().rate)
    local res = assert(api:get("/h"))
    assert.are.equal(200, res.status)
    assert.are.equal(2, res.attempts)
    assert.are.equal(4, api:stats().rate)
    pacer.sleep(0.2)
    srv.throttle = 1
    res = assert(api:get("/h"))
    assert.are.equal(2, res.attempts)
    assert.are.equal(2, api:stats().rate)
    srv.close()
  end)

  it("after a clean window (2 s) adds 5 % (at least 0.1/s) to a rate it learnt; with none learnt, adds nothing", function()
    local srv = throttling("/w")
    local api = pacer.client{base_url = srv.url, adaptive = true, rate = "8/s", retry = FAST}
    assert(api:get("/w"))
    assert.are.equal(4, api:stats().rate) -- halved by the 429
    local t0, rates = pacer.now(), {}
    while pacer.now() - t0 < 4.5 do -- bounded: 4.5 s at 4/s, 18 requests
      assert.are.equal(200, assert(api:get("/w")).status)
      rates[#rates + 1] = api:stats().rate
    end
    -- one step after each clean window: 4 -> 4.2 -> 4.41 (a step a window, not one an answer)
    assert.are.equal(4, rates[1])
    near(4.41, api:stats().rate, 1e-9, "rate after two clean windows")
    local unpaced = pacer.client{base_url = srv.url, adaptive = true, retry = FAST}
    local before = unpaced:stats().rate
    t0 = pacer.now()
    while pacer.now() - t0 < 2.3 do assert(unpaced:get("/w")) pacer.sleep(0.05) end -- bounded: ~45 requests
    assert.are.equal(before, unpaced:stats().rate) -- no limit learnt: none to raise
    srv.close()
  end)

  it("slows down below K/s for a server that allows K per second and says nothing else, and finishes", function()
    local K = 5
    local st = k_per_second(K)
    local api = pacer.client{base_url = st.srv.url, adaptive = true, retry = FAST}
    local rates, t0 = {}, pacer.now()
    for i = 1, 15 do
      local res, err = api:get("/k")
      assert(res and res.status == 200, "request " .. i .. ": " .. tostring(err and err.message))
      rates[i] = api:stats().rate
    end
    local took = pacer.now() - t0
    st.srv.close()
    assert.are.equal(15, #st.accepted)
    assert.is_true(st.n429 >= 1 and st.n429 <= 3, st.n429 .. " 429s")
    assert.is_true(rates[1] >= 1e5, "rate before any 429: " .. rates[1])
    local learnt = rates[#rates]
    assert.is_true(learnt <= K and learnt >= 1, "rate after the 429s: " .. learnt)
    assert.is_true(took < 10, "15 requests took " .. took)
    assert.are.equal(st.n429, api:stats().throttled)
  end)

  it("does not collapse when many requests in flight get 429 at once", function()
    local K = 5
    local st = k_per_second(K)
    local api = pacer.client{base_url = st.srv.url, adaptive = true, retry = FAST}
    local t0 = pacer.now()
    run_all(20, 8, function(i)
      local res, err = api:get("/k")
      assert(res and res.status == 200, "request " .. i .. ": " .. tostring(err and err.message))
    end)
    local took = pacer.now() - t0
    st.srv.close()
    assert.are.equal(20, #st.accepted)
    -- the burst of 8 met the limit together: one slow-down, not one per 429
    local learnt = api:stats().rate
    assert.is_true(learnt <= K and learnt >= 1, "rate after the 429s: " .. learnt)
    assert.is_true(took < 10, "20 requests at K = 5/s took " .. took)
  end)

  it("a Retry-After pauses every request of the client", function()
    local log = {}
    local first = true
    local srv = pacer.serve{routes = {
      ["GET /limited"] = function()
        log[#log + 1] = {path = "/limited", t = pacer.now()}
        if first then
          first = false
          return 429, "wait", {["Retry-After"] = "1"}
        end
        return 200, "ok"
      end,
      ["GET /other"] = function()
        log[#log + 1] = {path = "/other", t = pacer.now()}
        return 200, "ok"
      end,
    }}
    -- a declared rate so that the 429's halving does not slow the others down
    local api = pacer.client{base_url = srv.url, adaptive = true, rate = 100, retry = FAST}
    local limited = pacer.spawn(function() return assert(api:get("/limited")) end)
    for _ = 1, 50 do -- until the 429 arrived (bounded: 1 s)
      if #log >= 1 then break end
      pacer.sleep(0.02)
    end
    assert.are.equal(1, #log)
    local t429 = log[1].t
    local others = {}
    for i = 1, 3 do others[i] = pacer.spawn(function() return assert(api:get("/other")) end) end
    pacer.sleep(0.5)
    assert.are.equal(1, #log) -- nothing reached the server while paused
    for i, t in ipairs(others) do
      local ok, res = t:wait()
      assert(ok, "other " .. i .. ": " .. tostring(res))
      assert.are.equal(200, res.status)
    end
    local ok, res = limited:wait()
    assert(ok, tostring(res))
    assert.are.equal(200, res.status)
    assert.are.equal(2, res.attempts)
    srv.close()
    assert.are.equal(5, #log)
    for i = 2, 5 do
      local gap = log[i].t - t429
      assert.is_true(gap >= 0.98 and gap < 2, log[i].path .. " reached the server " .. gap .. " s after the 429")
    end
  end)
end)

describe("adaptive options", function()
  it("rejects a target outside (0, 1]", function()
    assert.are.equal("pacer.client: 'target' must be in (0, 1], got 1.5",
      message(function() pacer.client{adaptive = true, target = 1.5} end))
    assert.are.equal("pacer.client: 'target' must be in (0, 1], got 0",
      message(function() pacer.client{adaptive = true, target = 0} end))
    assert.are.equal("pacer.client: 'target' must be in (0, 1], got -0.5",
      message(function() pacer.client{adaptive = true, target = -0.5} end))
    assert.has_no.errors(function() pacer.client{adaptive = true, target = 1} end)
  end)

  it("rejects target without adaptive", function()
    assert.are.equal("pacer.client: 'target' goes with adaptive = true",
      message(function() pacer.client{target = 0.5} end))
    assert.are.equal("pacer.client: 'target' goes with adaptive = true",
      message(function() pacer.client{adaptive = false, target = 0.5} end))
  end)
end)

describe("api:quota().exhausts_in", function()
  local srv, remaining, reset
  setup(function()
    srv = pacer.serve{routes = {["GET /x"] = function()
      return 200, "ok", {["RateLimit-Limit"] = "1000", ["RateLimit-Remaining"] = tostring(remaining),
        ["RateLimit-Reset"] = tostring(reset)}
    end}}
  end)
  teardown(function() srv.close() end)

  it("is the time to run out at the current pace when that comes before the reset", function()
    remaining, reset = 6, 60
    local api = pacer.client{base_url = srv.url}
    assert.is_nil(api:quota())
    for _ = 1, 3 do assert(api:get("/x")) end
    local q = api:quota()
    assert.are.equal(6, q.remaining)
    assert.are.equal(1000, q.limit)
    assert.are.equal("number", type(q.exhausts_in))
    near(6 / 3, q.exhausts_in, 1e-9, "exhausts_in") -- 3 sent in the last second
    assert.is_true(q.reset <= 60 and q.reset > 59, "reset " .. q.reset)
  end)

  it("is nil when the reset comes first, or when nothing is being sent", function()
    remaining, reset = 900, 5
    local api = pacer.client{base_url = srv.url, adaptive = true}
    for _ = 1, 3 do assert(api:get("/x")) end
    local q = api:quota()
    assert.are.equal(900, q.remaining)
    assert.is_nil(q.exhausts_in)
    remaining, reset = 6, 60
    assert(api:get("/x"))
    assert.are.equal("number", type(api:quota().exhausts_in))
    pacer.sleep(1.1) -- nothing sent in the last second: no pace
    assert.is_nil(api:quota().exhausts_in)
  end)
end)
