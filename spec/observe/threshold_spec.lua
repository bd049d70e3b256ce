-- spec/observe/threshold_spec.lua: --threshold and pacer.threshold{}: each printed with
-- its measured value at exit, a crossed one exits 99, a malformed one exits 2 before
-- the script runs, abort = true stops the run early.
local H = dofile("spec/support/helpers.lua")

-- 40 requests to a mock with 20 ms latency (and `fail` of them answered 503, no retry)
local function job(extra, fail)
  return H.script(string.format([[
%s
local mock = pacer.mock{rate = "1000/s", latency = "20ms", fail = %s}
local api = pacer.client{base_url = mock.url .. "/v2", rate = "200/s", concurrency = 4, retry = false}
local list = {}
for i = 1, 40 do list[i] = i end
pacer.each(list, function() api:get("/numbers") end, {progress = false})
mock:close()
io.open(arg[1], "w"):close()
]], extra or "", fail or 0))
end

local function marker()
  local p = os.tmpname()
  os.remove(p)
  return p
end

describe("thresholds", function()
  teardown(H.remove_scripts)

  it("pass: each is printed with its measured value and the exit status stays 0", function()
    local done = marker()
    local r = H.run_pacer({"-q", "--threshold", "p99<1s", "--threshold", "throttled==0", "--threshold", "errors<1%",
      "--threshold", "ratio<3", job(), done})
    os.remove(done)
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("pacer: threshold p99<1s passed %(measured [%d.]+ms%)", r.stderr)
    H.contains(r.stderr, "pacer: threshold throttled==0 passed (measured 0)")
    H.contains(r.stderr, "pacer: threshold errors<1% passed (measured 0%)")
    assert.matches("pacer: threshold ratio<3 passed %(measured [%d.]+%)", r.stderr)
  end)

  it("a crossed one makes the exit status 99, after the run did all its work", function()
    local done = marker()
    local r = H.run_pacer({"-q", "--threshold", "p50<5ms", "--threshold", "p99<1s", job(), done})
    assert.are.equal(99, r.code, r.stderr)
    assert.is_truthy(io.open(done), "the script did not finish")
    os.remove(done)
    assert.matches("pacer: threshold p50<5ms CROSSED %(measured 2%d[%d.]*ms%)", r.stderr)
    assert.matches("pacer: threshold p99<1s passed", r.stderr)
    -- os.exit(0) in a script does not hide a crossed threshold; os.exit(3) keeps its status
    r = H.run_pacer({"-q", "--threshold", "requests>5", "-e", "os.exit(0)"})
    assert.are.equal(99, r.code, r.stderr)
    H.contains(r.stderr, "pacer: threshold requests>5 CROSSED (measured 0)")
    r = H.run_pacer({"-q", "--threshold", "requests>5", "-e", "os.exit(3)"})
    assert.are.equal(3, r.code, r.stderr)
    r = H.run_pacer({"-q", "--threshold", "errors<1%", job(nil, 0.5), done})
    os.remove(done)
    assert.are.equal(99, r.code, r.stderr)
    assert.matches("pacer: threshold errors<1%% CROSSED %(measured [%d.]+%%%)", r.stderr)
  end)

  it("a malformed expression is a command-line error naming metrics and operators (exit 2)", function()
    local done = marker()
    for _, bad in ipairs{"p99<<3", "latency<3", "p99<fast", "errors<x%", "p99"} do
      local r = H.run_pacer({"--threshold", bad, job(), done})
      assert.are.equal(2, r.code, bad)
      H.contains(r.stderr, "pacer: --threshold ")
      H.contains(r.stderr, "try 'pacer --help'")
      assert.is_nil(io.open(done), "the script ran")
    end
    local r = H.run_pacer({"--threshold", "latency<3", "-e", "print(1)"})
    H.contains(r.stderr, "unknown metric 'latency' in 'latency<3' (metrics p50, p90, p99, p99.9, max, mean, "
      .. "lateness (durations: 300ms, 1s), errors, throttled, retries (a count or a share: 1%), requests, ratio; "
      .. "operators <, <=, >, >=, ==, !=)")
    r = H.run_pacer({"--threshold"})
    assert.are.equal(2, r.code)
  end)

  it("pacer.threshold{abort = true} in a script stops the run once crossed, exit 99", function()
    local done = marker()
    local script = H.script([[
pacer.threshold{"p50<5ms", abort = true, min_requests = 10}
local mock = pacer.mock{rate = "1000/s", latency = "20ms"}
local api = pacer.client{base_url = mock.url .. "/v2", rate = "100/s", concurrency = 4}
local list = {}
for i = 1, 1000 do list[i] = i end
pacer.each(list, function() api:get("/numbers") end, {progress = false})
io.open(arg[1], "w"):close()
]])
    local stats = os.tmpname()
    local r = H.run_pacer({"--stats", stats, script, done}, {timeout = 30})
    assert.are.equal(99, r.code, r.stderr)
    assert.is_nil(io.open(done), "the run was not stopped")
    assert.matches("pacer: threshold p50<5ms crossed %(measured [%d.]+ms%): stopping the run", r.stderr)
    assert.matches("pacer: threshold p50<5ms CROSSED", r.stderr)
    local s = pacer.json.decode(H.read_file(stats))
    os.remove(stats)
    assert.is_true(s.requests >= 10 and s.requests < 200, "requests " .. s.requests)
    assert.are.equal(false, s.thresholds[1].ok)
  end)

  it("pacer.threshold checks what it is given", function()
    assert.are.equal("pacer.threshold: unknown metric 'p42' in 'p42<1s' (metrics p50, p90, p99, p99.9, max, mean, "
      .. "lateness (durations: 300ms, 1s), errors, throttled, retries (a count or a share: 1%), requests, ratio; "
      .. "operators <, <=, >, >=, ==, !=)", H.message(function() pacer.threshold{"p42<1s"} end))
    assert.are.equal("pacer.threshold: unknown option 'abrot' (known: abort, min_requests)",
      H.message(function() pacer.threshold{"p99<1s", abrot = true} end))
    assert.are.equal("pacer.threshold: expected at least one expression like 'p99<300ms'",
      H.message(function() pacer.threshold{abort = true} end))
  end)
end)
