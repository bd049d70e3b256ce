-- spec/run/workers_spec.lua: `pacer --workers N`: N processes share the script's
-- limiters (exactly: the mock, its own process, judges the arrivals), pacer.each splits
-- the work, a failed or interrupted worker makes the run fail, and misuse is an error.
local H = dofile("spec/support/helpers.lua")

-- The first 200 of each phone number the mock accepted, and how many it refused (429).
local function outcome(recs)
  local seen, throttled, first, last = {}, 0, math.huge, 0
  for _, r in ipairs(recs) do
    if r.path == "/v2/sms/send" then
      if r.status == 429 then throttled = throttled + 1 end
      if r.status == 200 then
        local to = pacer.json.decode(r.body).to
        seen[to] = (seen[to] or 0) + 1
        first, last = math.min(first, r.t), math.max(last, r.t)
      end
    end
  end
  return seen, throttled, last - first
end

-- A script sending N messages through pacer.each; LIMIT is how the rate is declared.
local function sms_script(url, n, limit)
  return H.script(string.format([[
local n = %d
%s
local list = {}
for i = 1, n do list[i] = string.format("+1555%%07d", i) end
pacer.each(list, function(to)
  if lim then lim:acquire() end
  assert(api:post("/v2/sms/send", {json = {to = to, message = "hi"}}))
end, {progress = false})
print(string.format("worker %%d of %%d done", pacer.worker.id, pacer.worker.count))
]], n, limit:gsub("URL", url)))
end

-- How many requests for `path` the mock answered 200.
local function answered(recs, path)
  local n = 0
  for _, r in ipairs(recs) do
    if r.path == path and r.status == 200 then n = n + 1 end
  end
  return n
end

-- A script getting /v2/numbers N times through pacer.each, at a declared 20/s;
-- TAIL runs after.
local function get_script(url, n, tail)
  return H.script(string.format([[
local api = pacer.client{base_url = %q, rate = "20/s", retry = {max_tries = 1}}
local list = {}
for i = 1, %d do list[i] = i end
pacer.each(list, function() assert(api:get("/v2/numbers")) end, {progress = false})
%s
]], url, n, tail))
end

describe("pacer --workers", function()
  teardown(H.remove_scripts)

  it("two workers share a client's declared rate: the mock at that rate refuses none, each row goes once", function()
    local mock = H.mock_process("--rate 10/s --burst 2")
    local script = sms_script(mock.url, 30, [[local api = pacer.client{base_url = "URL", rate = "10/s",
  retry = {max_tries = 1}}]])
    local r = H.run_pacer({"--workers", "2", "-q", script})
    local seen, throttled, span = outcome(mock.requests())
    mock:stop()
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("worker 1 of 2 done", r.stdout)
    assert.matches("worker 2 of 2 done", r.stdout)
    local n = 0
    for _, c in pairs(seen) do
      n = n + 1
      assert.are.equal(1, c)
    end
    assert.are.equal(30, n)
    assert.are.equal(0, throttled)
    -- 30 sends at 10/s, the first free: 2.9 s apart at least, whoever sent them
    assert.is_true(span >= 2.8, "30 sends in " .. span .. "s")
  end)

  it("shared = false gives each worker a limiter of its own (twice the rate)", function()
    local mock = H.mock_process("--rate 1000/s")
    local script = sms_script(mock.url, 30, [[local api = pacer.client{base_url = "URL"}
local lim = pacer.limiter{rate = "10/s", shared = false}]])
    local r = H.run_pacer({"--workers", "2", "-q", script})
    local seen, _, span = outcome(mock.requests())
    mock:stop()
    assert.are.equal(0, r.code, r.stderr)
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.are.equal(30, n)
    assert.is_true(span < 2.5, "30 sends in " .. span .. "s") -- 15 each at 10/s: about 1.4 s
  end)

  it("retries keep working in each worker: every row of a failing mock gets through", function()
    local mock = H.mock_process("--rate 1000/s --fail 0.3")
    local script = sms_script(mock.url, 40, [[local api = pacer.client{base_url = "URL", concurrency = 4,
  idempotency = true, retry = {base = 0.01, cap = 0.05, max_tries = 20}}]])
    local r = H.run_pacer({"--workers", "2", "-q", script})
    local seen = outcome(mock.requests())
    mock:stop()
    assert.are.equal(0, r.code, r.stderr)
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.are.equal(40, n)
  end)

  it("a rate change in one worker holds in the others", function()
    local script = H.script([[
local lim = pacer.limiter{rate = "100/s"}
if pacer.worker.id == 1 then
  lim:set_rate("4/s")
else
  pacer.sleep(0.5)
  print("rate seen by worker 2: " .. lim:state().rate)
end
]])
    local r = H.run_pacer({"--workers", "2", "-q", script})
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("rate seen by worker 2: 4", r.stdout)
  end)

  it("pacer.each hands the list out: a worker free sooner takes more, each item once", function()
    -- worker 1 takes 0.1 s an item, worker 2 0.01 s: split by index, the run would take
    -- 20 x 0.1 s; handed out, worker 2 takes most of them
    local script = H.script([[
local list = {}
for i = 1, 40 do list[i] = i end
local took = {}
pacer.each(list, function(i)
  pacer.sleep(pacer.worker.id == 1 and 0.1 or 0.01)
  took[#took + 1] = i
end, {concurrency = 1, progress = false})
print(string.format("worker %d took %s", pacer.worker.id, table.concat(took, ",")))
]])
    local r = H.run_pacer({"--workers", "2", "-q", script})
    assert.are.equal(0, r.code, r.stderr)
    local seen, by = {}, {}
    for w, list in r.stdout:gmatch("worker (%d) took ([%d,]*)") do
      by[w] = 0
      for i in list:gmatch("%d+") do
        assert.is_nil(seen[i], "item " .. i .. " twice")
        seen[i], by[w] = true, by[w] + 1
      end
    end
    for i = 1, 40 do assert.is_true(seen[tostring(i)], "item " .. i .. " never") end
    assert.is_true(by["1"] < 12 and by["2"] > 28, string.format("worker 1 took %s, worker 2 %s", by["1"], by["2"]))
  end)

  it("pacer.each inside an item runs whole in the worker that took the item; past 256 lists, split by index", function()
    local script = H.script([[
local done = {}
local outer = {}
for i = 1, 6 do outer[i] = i end
pacer.each(outer, function(o)
  pacer.sleep(0.01)
  pacer.each({"a", "b", "c"}, function(x) done[#done + 1] = o .. x end, {progress = false})
end, {progress = false})
for k = 1, 260 do -- more lists than the workers share: the rest split by index
  pacer.each({1, 2}, function(x) done[#done + 1] = "L" .. k .. "." .. x end, {progress = false})
end
print("did " .. table.concat(done, " "))
]])
    local r = H.run_pacer({"--workers", "2", "-q", script})
    assert.are.equal(0, r.code, r.stderr)
    local seen, n = {}, 0
    for list in r.stdout:gmatch("did ([^\n]*)") do
      for x in list:gmatch("%S+") do
        assert.is_nil(seen[x], x .. " twice")
        seen[x], n = true, n + 1
      end
    end
    assert.are.equal(6 * 3 + 260 * 2, n)
    for o = 1, 6 do for _, x in ipairs{"a", "b", "c"} do assert.is_true(seen[o .. x], o .. x .. " never") end end
    assert.is_true(seen["L260.1"] and seen["L260.2"])
  end)

  it("a worker's log lines and failure count say which worker they are from", function()
    local script = H.script([[
local list = {}
for i = 1, 8 do list[i] = i end
pacer.each(list, function(i) pacer.sleep(0.05) error("boom " .. i) end, {concurrency = 1, progress = false})
]])
    local r = H.run_pacer({"--workers", "2", script})
    assert.are.equal(1, r.code)
    for k = 1, 2 do
      assert.matches("\npacer: worker " .. k .. " of 2: error: pacer.each: %d of %d items failed; first: .-boom", "\n" .. r.stderr)
      assert.matches("\npacer: worker " .. k .. " of 2: %d items? failed in 1 call %(exit status 1%)", r.stderr)
    end
    assert.is_nil(r.stderr:match("\npacer: error:"), r.stderr) -- no line without its worker
  end)

  it("pacer.each calls that differ between workers are an error naming both", function()
    local script = H.script([[
local list = {}
for i = 1, 10 + pacer.worker.id do list[i] = i end
if pacer.worker.id == 2 then pacer.sleep(0.2) end
pacer.each(list, function() end, {progress = false})
]])
    local r = H.run_pacer({"--workers", "2", script})
    assert.are.equal(1, r.code)
    assert.matches("worker 2 of 2: .-pacer.each: call 1 of this worker %(.-:4, 12 items%) is not call 1 of " ..
      "another worker %(.-:4, 11 items%)", r.stderr)
  end)

  it("limiters made in another order are an error naming the limiter", function()
    local script = H.script([[
if pacer.worker.id == 1 then pacer.limiter{rate = "5/s"} else pacer.sleep(0.2); pacer.limiter{rate = "7/s"} end
]])
    local r = H.run_pacer({"--workers", "2", script})
    assert.are.equal(1, r.code)
    assert.matches("worker 2 of 2: .-limiter #1 of this worker has other rules", r.stderr)
    assert.matches("pacer: worker 2 of 2 exited with status 1", r.stderr)
  end)

  it("a worker that fails makes the run fail; the others finish their share", function()
    local script = H.script([[
if pacer.worker.id == 2 then error("no luck in worker 2") end
print("worker " .. pacer.worker.id .. " finished")
]])
    local r = H.run_pacer({"--workers", "3", script})
    assert.are.equal(1, r.code)
    assert.matches("worker 1 finished", r.stdout)
    assert.matches("worker 3 finished", r.stdout)
    assert.matches("pacer: worker 2 of 3: .-no luck in worker 2", r.stderr)
  end)

  it("SIGINT sent to the parent alone reaches every worker: exit 130", function()
    local script = H.script([[
print("up " .. pacer.worker.id)
io.stdout:flush()
pacer.sleep(20)
]])
    local out = os.tmpname()
    local t0 = pacer.now()
    local _, _, code = os.execute(string.format("timeout --preserve-status -s INT 1 %s --workers 2 %s >%s 2>&1", H.q(H.PACER),
      H.q(script), out))
    local text = H.read_file(out)
    os.remove(out)
    assert.are.equal(130, code, text)
    assert.is_true(pacer.now() - t0 < 10, "took " .. (pacer.now() - t0))
    assert.matches("up 1", text)
    assert.matches("up 2", text)
  end)

  it("pacer.each: each worker's results hold the items it took; pacer.worker says which worker this is", function()
    local script = H.script([[
local got = {}
pacer.each({"a", "b", "c", "d", "e"}, function(x, i) got[#got + 1] = i .. x end, {progress = false})
print(pacer.worker.id .. "/" .. pacer.worker.count .. ": " .. table.concat(got, " "))
]])
    local r = H.run_pacer({"--workers", "2", "-q", script})
    assert.are.equal(0, r.code, r.stderr)
    local seen = {}
    for w, got in r.stdout:gmatch("(%d)/2: ([^\n]*)") do
      for i, x in got:gmatch("(%d)(%a)") do
        assert.is_nil(seen[i], "item " .. i .. " twice")
        seen[i] = w .. x
      end
    end
    for i, x in ipairs{"a", "b", "c", "d", "e"} do assert.matches("^[12]" .. x .. "$", seen[tostring(i)]) end
    r = H.run_pacer({"-q", script})
    assert.matches("^1/1: 1a 2b 3c 4d 5e", r.stdout)
  end)

  it("rejects a bad count and the options each worker cannot have alone (exit 2)", function()
    for _, bad in ipairs{{"0", "--workers takes a number from 1 to 64, not '0'"},
      {"65", "not '65'"}, {"two", "not 'two'"}} do
      local r = H.run_pacer({"--workers", bad[1], "-e", "print(1)"})
      assert.are.equal(2, r.code)
      assert.is_true(H.has(r.stderr, bad[2]), r.stderr)
    end
    local r = H.run_pacer({"--workers", "2", "--metrics", "127.0.0.1:0", "-e", "print(1)"})
    assert.are.equal(2, r.code)
    assert.matches("%-%-workers does not go with '%-%-metrics'", r.stderr)
    r = H.run_pacer({"--workers", "2", "mock"})
    assert.are.equal(2, r.code)
    assert.matches("does not go with 'mock'", r.stderr)
  end)

  it("the parent prints one summary of the whole run, last, with the pace ratio", function()
    local mock = H.mock_process("--rate 1000/s")
    local r = H.run_pacer({"--workers", "2", get_script(mock.url, 30, "")}, {timeout = 60})
    local got = answered(mock.requests(), "/v2/numbers")
    mock:stop()
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(30, got)
    local n1 = tonumber(r.stderr:match("pacer: worker 1 of 2: (%d+) requests in"))
    local n2 = tonumber(r.stderr:match("pacer: worker 2 of 2: (%d+) requests in"))
    assert.are.equal(30, n1 + n2, r.stderr) -- as they took them
    local all = r.stderr:match("\n(pacer: all 2 workers: .*)$")
    assert.is_string(all, r.stderr)
    for l in all:gmatch("[^\n]+") do assert.matches("^pacer: all 2 workers: ", l) end -- the run's lines come last
    assert.matches("^pacer: all 2 workers: 30 requests in [%d.]+s: 30 ok, 0 failed, 0 retries, 0 throttled", all)
    assert.matches("by status: 200×30\n", all)
    assert.matches("latency p50 [%d.]+%S*s, p90", all)
    assert.matches("quota left at http://127.0.0.1:%d+: %d+ of 1000,", all) -- whole numbers, as one process says
    -- 30 requests at a shared 20/s, the first free: about 1.45 s against N/R = 1.5 s
    local ratio = tonumber(all:match("vs ideal N/R 1%.50s at 20/s: ratio ([%d.]+)"))
    assert.is_number(ratio, all)
    assert.is_true(ratio > 0.9 and ratio < 1.3, all)
  end)

  it("--stats: a JSON line per worker, then the run's, whose counts are their sums", function()
    local mock = H.mock_process("--rate 1000/s")
    local stats = os.tmpname()
    local r = H.run_pacer({"--workers", "2", "-q", "--stats", stats, get_script(mock.url, 30, "")}, {timeout = 60})
    mock:stop()
    local lines = {}
    for l in io.lines(stats) do lines[#lines + 1] = pacer.json.decode(l) end
    os.remove(stats)
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("", r.stderr) -- -q: no summary, not even the run's
    assert.are.equal(3, #lines)
    assert.are.same({1, 2, 0}, {lines[1].worker, lines[2].worker, lines[3].worker})
    local run = lines[3]
    assert.are.equal(2, run.workers)
    assert.are.equal(lines[1].requests + lines[2].requests, run.requests)
    assert.are.equal(30, run.requests)
    assert.are.equal(30, run.ok)
    assert.are.equal(30, run.by_status["200"])
    assert.are.equal(30, run.latency.count)
    assert.are.equal(math.max(lines[1].latency.max, lines[2].latency.max), run.latency.max)
    assert.are.equal(20, run.rate)
    assert.are.equal(1.5, run.ideal)
    assert.is_nil(run.missing)
    assert.are.equal("ok", run.outcome)
  end)

  it("--stats - writes the lines on stdout, after the script's own output", function()
    local r = H.run_pacer({"--workers", "2", "-q", "--stats", "-", "-e", "print('hello from ' .. pacer.worker.id)"})
    assert.are.equal(0, r.code, r.stderr)
    local json = {}
    for l in r.stdout:gmatch("[^\n]+") do
      if l:sub(1, 1) == "{" then json[#json + 1] = pacer.json.decode(l) else assert.matches("^hello from %d$", l) end
    end
    assert.matches("^hello from %d\nhello from %d\n{", r.stdout)
    assert.are.equal(3, #json)
    assert.are.equal(0, json[3].worker)
    assert.are.equal(0, json[3].requests)
  end)

  it("a worker killed before it could report: the run's figures say they are missing, not 0", function()
    local mock = H.mock_process("--rate 1000/s")
    local stats = os.tmpname()
    local script = get_script(mock.url, 30, [[
if pacer.worker.id == 2 then os.execute("kill -KILL " .. require("pacer.c.proc").pid()); pacer.sleep(10) end]])
    local r = H.run_pacer({"--workers", "2", "--stats", stats, script}, {timeout = 60})
    local got = answered(mock.requests(), "/v2/numbers")
    mock:stop()
    local lines = {}
    for l in io.lines(stats) do lines[#lines + 1] = pacer.json.decode(l) end
    os.remove(stats)
    assert.are.equal(137, r.code, r.stderr)
    assert.are.equal(30, got) -- worker 2 sent its share: that is what the summary cannot count
    assert.matches("pacer: worker 2 of 2 was killed by signal 9", r.stderr)
    local n1 = r.stderr:match("pacer: worker 1 of 2: (%d+) requests in")
    assert.is_string(n1, r.stderr)
    assert.matches("\npacer: 1 of 2 workers: " .. n1 .. " requests in", r.stderr)
    assert.matches("\npacer: 1 of 2 workers: the figures of worker 2 are missing, not counted above %(worker 2: "
      .. "killed by signal 9%)\n$", r.stderr)
    assert.is_nil(r.stderr:match("ratio")) -- no N/R from half the run
    assert.are.equal(2, #lines) -- worker 1's and the run's
    assert.are.same({2}, lines[2].missing)
    assert.are.equal(tonumber(n1), lines[2].requests)
    assert.are.equal("error", lines[2].outcome)
    assert.is_nil(lines[2].ratio)
  end)

  it("--events: the parent's run marker, then each worker's attempts, a JSON object a line with its worker", function()
    local mock = H.mock_process("--rate 1000/s")
    local events = os.tmpname()
    local r = H.run_pacer({"--workers", "2", "-q", "--events", events, get_script(mock.url, 30, "")}, {timeout = 60})
    mock:stop()
    local lines = {}
    for l in io.lines(events) do lines[#lines + 1] = pacer.json.decode(l) end
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(31, #lines)
    assert.are.equal(2, lines[1].run.workers) -- one marker for the run, first
    local by = {}
    for i = 2, #lines do
      local e = lines[i]
      assert.is_nil(e.run)
      assert.are.equal(200, e.status)
      by[e.worker] = (by[e.worker] or 0) + 1
    end
    assert.are.equal(30, (by[1] or 0) + (by[2] or 0))
    for w in pairs(by) do assert.is_true(w == 1 or w == 2, "worker " .. tostring(w)) end
    local svg = events .. ".svg"
    r = H.run_pacer({"report", events, "-o", svg})
    os.remove(events)
    os.remove(svg)
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("30 attempts", r.stdout .. r.stderr) -- both workers' lines are one run
  end)

  it("--events - through a slow pipe: lines longer than PIPE_BUF from 3 workers are never cut", function()
    local mock = H.mock_process("--rate 5000/s")
    local script = H.script(string.format([[
local api = pacer.client{base_url = %q, retry = {max_tries = 1}, concurrency = 8}
local list = {}
for i = 1, 60 do list[i] = i end
local pad = string.rep("x", 5000) -- each line about 5.2 KB: more than PIPE_BUF (4 KB)
pacer.each(list, function(i) assert(api:get("/v2/numbers", {query = {pad = pad, i = i}})) end, {progress = false})
]], mock.url))
    local out = os.tmpname()
    -- the reader sleeps first: the pipe fills, and writers wait in the middle of a line
    local _, _, code = os.execute(string.format("timeout 60 sh -c '%s --workers 3 -q --events - %s | (sleep 1; cat) > %s'",
      H.PACER, script, out))
    mock:stop()
    local n, cut = 0, 0
    for l in io.lines(out) do
      n = n + 1
      local ok, e = pcall(pacer.json.decode, l)
      if not ok or type(e) ~= "table" then cut = cut + 1 end
    end
    os.remove(out)
    assert.are.equal(0, code)
    assert.are.equal(61, n)
    assert.are.equal(0, cut)
  end)

  it("pacer.job says it does not run under --workers yet", function()
    local r = H.run_pacer({"--workers", "2", "-e", "pacer.job{input = {1, 2}}"})
    assert.are.equal(1, r.code)
    assert.matches("pacer.job: not supported under %-%-workers yet", r.stderr)
  end)
end)
