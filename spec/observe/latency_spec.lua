-- spec/observe/latency_spec.lua: latency percentiles and where the time went, measured
-- against a mock with a known latency, in api:stats(), pacer.stats(), the exit summary
-- and --stats.
local H = dofile("spec/support/helpers.lua")

describe("latency and time breakdown", function()
  teardown(H.remove_scripts)

  it("api:stats().latency and pacer.stats() follow the mock's 20 ms latency", function()
    local mock = pacer.mock{port = 0, rate = "1000/s", latency = "20ms"}
    local api = pacer.client{base_url = mock.url .. "/v2", rate = "200/s", concurrency = 4}
    local list = {}
    for i = 1, 60 do list[i] = i end
    pacer.each(list, function() assert(api:get("/numbers")) end, {progress = false})
    mock:close()
    local l = api:stats().latency
    assert.are.equal(60, l.count)
    assert.is_true(l.p50 >= 0.019 and l.p50 < 0.030, "p50 " .. l.p50)
    assert.is_true(l.p50 <= l.p90 and l.p90 <= l.p99 and l.p99 <= l.p999 and l.p999 <= l.max)
    assert.is_true(l.min >= 0.019)
    local lateness = api:stats().lateness
    assert.are.equal(60, lateness.count) -- every attempt had a slot from the limiter
    assert.is_true(lateness.p50 < 0.02, "lateness p50 " .. lateness.p50)
    local t = api:stats().time
    assert.is_true(t.server >= 60 * 0.019 and t.server < 60 * 0.2, "server " .. t.server)
    assert.is_true(t.limiter > 0)
    assert.are.equal(0, t.retry)
    local run = pacer.stats()
    assert.is_true(run.latency.count >= 60)
    assert.is_table(run.time)
  end)

  it("lim:acquire() returns the slot it granted, so lateness can be measured", function()
    local lim = pacer.limiter{rate = "20/s"}
    local w, slot = lim:acquire()
    assert.are.equal(0, w)
    assert.is_true(math.abs(pacer.now() - slot) < 0.01)
    local t0 = pacer.now()
    w, slot = lim:acquire() -- queued: the slot is 50 ms after the first
    assert.is_true(w > 0.03, "waited " .. w)
    assert.is_true(slot >= t0 + 0.03 and slot <= pacer.now(), "slot " .. (slot - t0))
  end)

  it("counts retry pauses and the concurrency slot apart from the limiter", function()
    local mock = pacer.mock{port = 0, rate = "1000/s", latency = "30ms", fail = 0.3}
    local api = pacer.client{base_url = mock.url .. "/v2", concurrency = 1, retry = {base = 0.02, cap = 0.05,
      jitter = "none", max_tries = 10}}
    local list = {}
    -- 24 tries at 30 % each: the chance that none fails is 0.7^24, about 2e-4
    for i = 1, 24 do list[i] = i end
    pacer.each(list, function() assert(api:get("/numbers")) end, {concurrency = 4, progress = false})
    mock:close()
    local s = api:stats()
    local t = s.time
    assert.is_true(s.retries > 0, "the mock failed nothing")
    assert.is_true(t.retry >= s.retries * 0.02 - 1e-9, "retry " .. t.retry)
    -- one slot, four tasks: the others waited about a transfer's time each time
    assert.is_true(t.slot > 0.03, "slot " .. t.slot)
    assert.are.equal(0, t.limiter)
    assert.are.equal(0, s.lateness.count) -- no limiter: no promised slot
  end)

  it("prints p50..max and the breakdown at exit, and writes them to --stats", function()
    local stats = os.tmpname()
    local script = H.script([[
local mock = pacer.mock{rate = "1000/s", latency = "20ms"}
local api = pacer.client{base_url = mock.url .. "/v2", rate = "100/s", concurrency = 4}
local list = {}
for i = 1, 30 do list[i] = i end
pacer.each(list, function() assert(api:get("/numbers")) end, {progress = false})
mock:close()
]])
    local r = H.run_pacer({"--stats", stats, script})
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("pacer: latency p50 [%d.]+ms, p90 [%d.]+ms, p99 [%d.]+ms, p99%.9 [%d.]+ms, max [%d.]+ms; "
      .. "send lateness p99 [%d.]+%S*s", r.stderr)
    assert.matches("pacer: time went to: the limiter [%d.]+s, a concurrency slot [%d.]+s, retry pauses 0.00s, "
      .. "the server [%d.]+s", r.stderr)
    local s = pacer.json.decode(H.read_file(stats))
    os.remove(stats)
    assert.are.equal(30, s.latency.count)
    assert.is_true(s.latency.p50 >= 0.019 and s.latency.p50 < 0.030, "p50 " .. s.latency.p50)
    for _, k in ipairs{"limiter", "slot", "retry", "server"} do assert.is_number(s.time[k]) end
    assert.is_number(s.lateness.p99)
  end)

  it("a histogram dumped through JSON and loaded back merges to the same percentiles", function()
    local hist = require "pacer.c.hist"
    local a, b, all = hist.new(), hist.new(), hist.new()
    for i = 1, 500 do
      a:record(i / 1e4)
      b:record(i / 1e3)
      all:record(i / 1e4)
      all:record(i / 1e3)
    end
    local merged = hist.new()
    for _, h in ipairs{a, b} do merged:merge(hist.load(pacer.json.decode(pacer.json.encode(h:dump())))) end
    assert.are.same(all:summary(), merged:summary())
    assert.are.equal("pacer.hist: load: bucket pair 1 is not an index (0..2175) and a count",
      H.message(function() hist.load{count = 1, sum = 0, min = 0, max = 0, buckets = {9999, 1}} end))
    assert.are.equal("pacer.hist: load: 'count' must be a whole number in [0.0, 9e+15]",
      H.message(function() hist.load{count = -1} end))
  end)

  it("a histogram made with an `up` one records into both; two clients add up in the run's", function()
    local hist = require "pacer.c.hist"
    local run = hist.new()
    local c = {a = hist.new(run), b = hist.new(run)}
    for i = 1, 100 do c.a:record(i / 1e3) end
    for i = 1, 50 do c.b:record(i / 1e2) end
    assert.are.equal(100, c.a:count())
    assert.are.equal(50, c.b:count())
    assert.are.equal(150, run:count())
    local both = hist.new()
    both:merge(c.a)
    both:merge(c.b)
    assert.are.same(both:summary(), run:summary())
    c.a = nil -- the run's outlives the clients' (its userdata is kept by theirs, not the other way)
    collectgarbage()
    assert.are.equal(150, run:count())

    local mock = pacer.mock{port = 0, rate = "1000/s"}
    local before = pacer.stats().latency.count
    local c1 = pacer.client{base_url = mock.url .. "/v2"}
    local c2 = pacer.client{base_url = mock.url .. "/v2"}
    for _ = 1, 3 do assert(c1:get("/numbers")) end
    for _ = 1, 2 do assert(c2:get("/numbers")) end
    assert(pacer.request{url = mock.url .. "/v2/numbers"})
    mock:close()
    assert.are.equal(3, c1:stats().latency.count)
    assert.are.equal(2, c2:stats().latency.count)
    assert.are.equal(3, c1:stats().requests)
    local run_stats = pacer.stats()
    assert.are.equal(before + 6, run_stats.latency.count)
    assert.is_nil(c1:stats().up)
  end)
end)
