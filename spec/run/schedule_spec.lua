-- spec/run/schedule_spec.lua: pacer.every and pacer.at (runs, stop, errors, argument
-- checks), the `window` option of pacer.client (inside: at once; outside: the request
-- waits), backoff chains, pacer.random, retry = {seed = } and the Retry-After jitter.
-- Cases that must not keep this process waiting run in a subprocess with a time limit.
-- Runs inside the pacer host: ./build/pacer tools/busted.lua -o TAP spec/run/schedule_spec.lua

local H = dofile("spec/support/helpers.lua")

local message = H.message

local script = H.script
teardown(H.remove_scripts)

-- "HH:MM" of the local time `minutes` from now
local function hhmm(minutes)
  return os.date("%H:%M", os.time() + minutes * 60)
end

describe("pacer.every", function()
  it("runs every interval until stopped", function()
    local runs = {}
    local t0 = pacer.now()
    local h = pacer.every(0.1, function(n) runs[#runs + 1] = {n = n, t = pacer.now() - t0} end)
    pacer.sleep(0.55)
    h:stop()
    local n = #runs
    assert.is_true(n >= 4 and n <= 6, n .. " runs in 0.55 s")
    assert.are.equal(n, h.runs)
    for i, r in ipairs(runs) do assert.are.equal(i, r.n) end -- fn gets the run number
    assert.is_true(runs[1].t >= 0.095, "first run after " .. runs[1].t) -- not at once
    pacer.sleep(0.3)
    assert.are.equal(n, #runs) -- stopped
    local ok = h.task:wait()
    assert.is_true(ok)
  end)

  it("with {now = true} runs at once", function()
    local runs = 0
    local h = pacer.every(10, function() runs = runs + 1 end, {now = true})
    pacer.sleep(0.05)
    assert.are.equal(1, runs)
    h:stop()
    pacer.sleep(0.05)
    assert.are.equal(1, runs)
  end)

  it("accepts durations as strings", function()
    local runs = 0
    local h = pacer.every("50ms", function() runs = runs + 1 end)
    pacer.sleep(0.275)
    h:stop()
    assert.is_true(runs >= 4 and runs <= 6, runs .. " runs")
  end)

  it("logs an error in fn and goes on; a stopped schedule lets the program end", function()
    local t0 = pacer.now()
    local r = H.run_pacer({"-q", script([[
local h = pacer.every(0.05, function(n)
  if n == 2 then error("boom at run " .. n, 0) end
end)
pacer.sleep(0.28)
h:stop()
print("runs", h.runs)
]])}, {timeout = 10})
    assert.are.equal(0, r.code, r.stderr)
    assert.is_true(pacer.now() - t0 < 2, "the program ended after " .. (pacer.now() - t0) .. " s")
    local runs = tonumber(r.stdout:match("^runs\t(%d+)\n$"))
    assert(runs, r.stdout)
    assert.is_true(runs >= 4 and runs <= 6, runs .. " runs")
    assert.is_truthy(r.stderr:find("^pacer: error: scheduled job failed: boom at run 2\n"), r.stderr)
    local _, lines = r.stderr:gsub("scheduled job failed", "")
    assert.are.equal(1, lines, r.stderr)
  end)

  it("a schedule that is not stopped keeps the program running", function()
    local t0 = pacer.now()
    local r = H.run_pacer({"-q", "-e", "pacer.every(0.1, function() end) print('main done')"}, {timeout = 1})
    assert.are.equal(124, r.code) -- killed by timeout(1)
    assert.are.equal("main done\n", r.stdout)
    assert.is_true(pacer.now() - t0 >= 0.9)
  end)

  it("rejects a bad interval or function", function()
    assert.are.equal("pacer.every: interval must be a positive duration, got 0",
      message(function() pacer.every(0, function() end) end))
    assert.are.equal("pacer.every: interval must be a positive duration, got -1",
      message(function() pacer.every(-1, function() end) end))
    assert.are.equal("pacer.every: interval must be a positive duration, got soon",
      message(function() pacer.every("soon", function() end) end))
    assert.are.equal("pacer.every: expected a function, got nil",
      message(function() pacer.every(1) end))
  end)
end)

describe("pacer.at", function()
  it("validates its arguments", function()
    for _, bad in ipairs{"24:00", "12:60", "2", "02:0", "noon", "1:2:3", " 02:00"} do
      assert.are.equal(string.format("pacer.at: expected a time like \"02:00\", got %q", bad),
        message(function() pacer.at(bad, function() end) end))
    end
    assert.are.equal("pacer.at: expected a time like \"02:00\", got \"nil\"",
      message(function() pacer.at(nil, function() end) end))
    assert.are.equal("pacer.at: expected a function, got string",
      message(function() pacer.at("02:00", "job") end))
  end)

  it("schedules a daily run: waiting, not run yet, and stoppable", function()
    local runs = 0
    -- two minutes ahead: HH:MM drops the seconds, so one minute ahead may be a moment away
    local h = pacer.at(hhmm(2), function() runs = runs + 1 end)
    local later = os.date("*t", os.time() + 2 * 3600)
    local h2 = pacer.at(string.format("%d:%02d", later.hour % 10, later.min), function() runs = runs + 1 end) -- one digit for the hour
    pacer.sleep(0.05)
    assert.are.equal(0, h.runs)
    assert.is_truthy(h.sleeping) -- its task waits for the time
    h:stop()
    h2:stop()
    local ok = h.task:wait() -- stop wakes it: no waiting for the minute
    assert.is_true(ok)
    assert.is_true(h.stopped)
    assert.are.equal(0, runs)
  end)
end)

describe("pacer.client window", function()
  it("sends at once inside the window (also one across midnight)", function()
    -- in a subprocess: a wrong wait would last hours; the time limit ends it
    local r = H.run_pacer({"-q", script(string.format([[
local hits = 0
local srv = pacer.serve{routes = {["GET /x"] = function() hits = hits + 1 return 200, "ok" end}}
for _, w in ipairs{%q, %q} do
  local api = pacer.client{base_url = srv.url, window = w}
  local t0 = pacer.now()
  local res = api:get("/x")
  print(w, res.status, pacer.now() - t0 < 0.3)
  io.stdout:flush()
end
print("hits", hits)
srv.close()
]], hhmm(-1) .. "-" .. hhmm(2), hhmm(-2) .. " - " .. hhmm(-3)))}, {timeout = 10})
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(3, #lines, r.stdout)
    assert.is_truthy(lines[1]:find("\t200\ttrue$"), lines[1])
    assert.is_truthy(lines[2]:find("\t200\ttrue$"), lines[2])
    assert.are.equal("hits\t2", lines[3])
  end)

  it("makes a request wait outside the window", function()
    local r = H.run_pacer({"-q", script(string.format([[
local hits = 0
local srv = pacer.serve{routes = {["GET /x"] = function() hits = hits + 1 return 200, "ok" end}}
local api = pacer.client{base_url = srv.url, window = %q}
local done = false
pacer.spawn(function() api:get("/x") done = true end)
pacer.sleep(0.3)
print("hits", hits, "done", done)
io.stdout:flush()
os.exit(0)
]], hhmm(2) .. "-" .. hhmm(3)))}, {timeout = 10})
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("hits\t0\tdone\tfalse\n", r.stdout)
  end)

  it("rejects bad windows", function()
    for _, w in ipairs{"22:00", "22:00-", "22-06", "10pm-6am", "22:00..06:00", ""} do
      assert.are.equal(string.format("pacer.client: window must look like \"22:00-06:00\", got %q", w),
        message(function() pacer.client{window = w} end))
    end
    assert.are.equal("pacer.client: window: expected a time like \"02:00\", got \"25:00\"",
      message(function() pacer.client{window = "25:00-06:00"} end))
    assert.are.equal("pacer.client: window: expected a time like \"02:00\", got \"06:75\"",
      message(function() pacer.client{window = "22:00-06:75"} end))
    assert.are.equal("pacer.client: option 'window' must be a string, got number",
      message(function() pacer.client{window = 22} end))
  end)
end)

describe("pacer.backoff.chain", function()
  it("uses each strategy for its tries, then the next counting from 1", function()
    local chain = pacer.backoff.chain{
      {pacer.backoff.constant{delay = 1}, tries = 2},
      pacer.backoff.expo{base = 1, factor = 2, jitter = "none"},
    }
    local got = {}
    for n = 1, 5 do got[n] = chain:delay(n) end
    assert.are.same({1, 1, 1, 2, 4}, got)
  end)

  it("keeps the last strategy even when it has tries", function()
    local chain = pacer.backoff.chain{
      {pacer.backoff.constant{delay = 0.5}, tries = 1},
      {pacer.backoff.linear{base = 1, step = 1}, tries = 2},
    }
    local got = {}
    for n = 1, 5 do got[n] = chain:delay(n) end
    assert.are.same({0.5, 1, 2, 3, 4}, got)
  end)

  it("drives the retry waits", function()
    local hits = {}
    local srv = pacer.serve{routes = {["GET /x"] = function()
      hits[#hits + 1] = pacer.now()
      return #hits < 4 and 503 or 200, "x"
    end}}
    local res = assert(pacer.request{url = srv.url .. "/x", retry = {backoff = pacer.backoff.chain{
      {pacer.backoff.constant{delay = 0.05}, tries = 1},
      pacer.backoff.constant{delay = 0.25},
    }}})
    srv.close()
    assert.are.equal(200, res.status)
    assert.are.equal(4, #hits)
    local g1, g2, g3 = hits[2] - hits[1], hits[3] - hits[2], hits[4] - hits[3]
    assert.is_true(g1 >= 0.05 and g1 < 0.2, "first wait " .. g1)
    assert.is_true(g2 >= 0.25 and g2 < 0.45, "second wait " .. g2)
    assert.is_true(g3 >= 0.25 and g3 < 0.45, "third wait " .. g3)
  end)

  it("rejects what is not a list of strategies", function()
    assert.has_error(function() pacer.backoff.chain{} end, "pacer.backoff.chain: expected a list of strategies")
    assert.has_error(function() pacer.backoff.chain("expo") end, "pacer.backoff.chain: expected a list of strategies")
    local ok, err = pcall(pacer.backoff.chain, {pacer.backoff.expo{}, {tries = 2}})
    assert.is_false(ok)
    assert.are.equal("pacer.backoff.chain: step 2 has no delay(self, attempt) method",
      (tostring(err):gsub("^[^\n]-:%d+: ", "")))
  end)
end)

describe("seedable randomness", function()
  local function take(rnd, n)
    local t = {}
    for i = 1, n do t[i] = rnd() end
    return t
  end

  it("pacer.random(seed) repeats its sequence, in [0, 1)", function()
    local a, b = take(pacer.random(42), 100), take(pacer.random(42), 100)
    assert.are.same(a, b)
    local distinct = {}
    for _, v in ipairs(a) do
      assert.is_true(v >= 0 and v < 1, "value " .. v)
      distinct[v] = true
    end
    local n = 0
    for _ in pairs(distinct) do n = n + 1 end
    assert.are.equal(100, n)
    assert.are_not.same(a, take(pacer.random(43), 100))
  end)

  -- delays the retry policy chose for a route that answers 503 `fails` times
  local function retry_delays(retry, fails, ra)
    local hits = 0
    local srv = pacer.serve{routes = {["GET /x"] = function()
      hits = hits + 1
      if hits <= fails then return ra and 429 or 503, "no", ra and {["Retry-After"] = ra} or nil end
      return 200, "ok"
    end}}
    local delays = {}
    retry.on_retry = function(info) delays[#delays + 1] = info.delay end
    local res = assert(pacer.request{url = srv.url .. "/x", retry = retry})
    srv.close()
    assert.are.equal(200, res.status)
    return delays
  end

  it("retry = {seed = } makes full-jitter delays reproducible", function()
    local function run(seed) return retry_delays({seed = seed, base = 0.02, cap = 0.2}, 4) end
    local a, b, c = run(7), run(7), run(8)
    assert.are.equal(4, #a)
    assert.are.same(a, b)
    assert.are_not.same(a, c)
    -- full jitter: U(0, min(cap, base x 2^(n-1)))
    for n, d in ipairs(a) do
      assert.is_true(d >= 0 and d < math.min(0.2, 0.02 * 2 ^ (n - 1)), "delay " .. n .. ": " .. d)
    end
    -- the same numbers as the seeded source gives
    local rnd = pacer.random(7)
    for n, d in ipairs(a) do
      assert.is_true(math.abs(d - math.min(0.2, 0.02 * 2 ^ (n - 1)) * rnd()) < 1e-12, "delay " .. n)
    end
  end)

  it("Retry-After waits are never shorter than asked, and spread below Retry-After + 1", function()
    -- default spread: 10% of Retry-After; with retry_after_jitter = 1, up to a whole second
    local out = pacer.each({0.1, 0.1, 1, 1, 1, 1}, function(j, i)
      return retry_delays({retry_after_jitter = j, seed = i}, 1, "1")
    end, {concurrency = 6, progress = false})
    local wide = {}
    for i, r in ipairs(out) do
      assert(r.ok, tostring(r.err))
      local d = r.value[1]
      assert.are.equal(1, #r.value)
      local j = i <= 2 and 0.1 or 1
      assert.is_true(d >= 1 and d < 1 + j, "jitter " .. j .. ": delay " .. d)
      if j == 1 then wide[#wide + 1] = d end
    end
    -- four seeds, four different waits: the clients do not all come back together
    table.sort(wide)
    for i = 2, #wide do assert.is_true(wide[i] > wide[i - 1], "equal waits " .. wide[i]) end
  end)
end)

describe("pacer.every stop() race", function()
  it("stop() right as the timer fires (the task ready, not yet running) does not raise", function()
    for _ = 1, 20 do -- bounded: 20 rounds of 20 ms; each gives the two timers a chance to fire together
      local runs = 0
      local h = pacer.every(0.02, function() runs = runs + 1 end)
      pacer.sleep(0.02)
      assert.has_no.errors(function() h:stop() end)
      pacer.sleep(0.001)
    end
  end)
end)
