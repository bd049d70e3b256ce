-- spec/run/workers_policy_spec.lua: each policy of pacer.client under `pacer --workers 2`:
-- retries after 429 + Retry-After, adaptive pacing, key pools, path groups, the circuit
-- breaker, the HTTP cache and idempotency keys. The server is a `pacer mock` in its own
-- process, or a pacer.serve listener of this spec (the workers then run in the
-- background, so that it can answer): it judges the arrivals, not the workers.
-- Runs inside the pacer host: ./build/pacer tools/busted.lua -o TAP spec/run/workers_policy_spec.lua
-- Timing bounds are generous: the machine is shared and noisy.
local H = dofile("spec/support/helpers.lua")

-- A script sending N messages to POST /v2/sms/send through pacer.each (each final
-- answer must be a 200); CLIENT makes `api` (URL stands for the server's), TAIL runs after.
local function sms_script(url, n, client, tail)
  return H.script(string.format([[
%s
local list = {}
for i = 1, %d do list[i] = string.format("+1555%%07d", i) end
pacer.each(list, function(to)
  local res = assert(api:post("/v2/sms/send", {json = {to = to, message = "hi"}}))
  assert(res.status == 200, "HTTP " .. res.status .. " for " .. to)
end, {progress = false, concurrency = 8})
%s
]], client:gsub("URL", url), n, tail or ""))
end

-- The mock's record of POST /v2/sms/send by recipient: to -> {accepted = 200s that were
-- not replays, attempts = {record, ...} in arrival order}; and the number of 429s.
local function by_to(recs)
  local out, throttled = {}, 0
  for _, r in ipairs(recs) do
    if r.path == "/v2/sms/send" then
      local to = pacer.json.decode(r.body).to
      local e = out[to] or {accepted = 0, attempts = {}}
      out[to] = e
      e.attempts[#e.attempts + 1] = r
      if r.status == 200 and not r.replayed then e.accepted = e.accepted + 1 end
      if r.status == 429 then throttled = throttled + 1 end
    end
  end
  return out, throttled
end

-- Asserts that each of the N recipients was accepted exactly once.
local function each_once(seen, n)
  local count = 0
  for to, e in pairs(seen) do
    count = count + 1
    assert.are.equal(1, e.accepted, to .. " accepted " .. e.accepted .. " times")
  end
  assert.are.equal(n, count)
end

-- The most of the sorted `times` that fall in any window [t, t + w].
local function most_within(times, w)
  local most, j = 0, 1
  for i = 1, #times do
    while times[i] - times[j] > w do j = j + 1 end
    most = math.max(most, i - j + 1)
  end
  return most
end

-- `pacer ARGS` in the background, so that a listener of this spec can answer it (the
-- blocking H.run_pacer would stall it), at most `limit` seconds. Returns {code=,
-- stdout=, stderr=}; code is nil when it did not end in time.
local function run_beside(args, limit)
  local err = os.tmpname()
  local parts = {}
  for _, a in ipairs(args) do parts[#parts + 1] = H.q(a) end
  local out, code = H.sh(string.format("timeout %d %s %s 2>%s", limit, H.q(H.PACER), table.concat(parts, " "),
    H.q(err)), limit + 5)
  local r = {code = code, stdout = out, stderr = H.read_file(err) or ""}
  os.remove(err)
  return r
end

-- The whole run's first summary line: requests, ok, failed, retries, throttled.
local function run_counts(stderr)
  local req, ok, failed, retries, throttled = stderr:match(
    "pacer: all 2 workers: (%d+) requests in [%d.]+s: (%d+) ok, (%d+) failed, (%d+) retries, (%d+) throttled")
  assert.is_string(req, stderr)
  return {requests = tonumber(req), ok = tonumber(ok), failed = tonumber(failed), retries = tonumber(retries),
    throttled = tonumber(throttled)}
end

describe("pacer --workers 2 with the client's policies", function()
  teardown(H.remove_scripts)

  it("retry: 429s with Retry-After are waited out, every row goes once, both workers exit 0", function()
    -- the mock takes 10/s; the client declares twice that, so it is refused now and then
    local mock = H.mock_process("--rate 10/s --burst 2")
    local script = sms_script(mock.url, 30, [[local api = pacer.client{base_url = "URL", rate = "20/s",
  retry = {max_tries = 20, max_time = 60}}]], [[print("worker " .. pacer.worker.id .. " exits")]])
    local r = H.run_pacer({"--workers", "2", script}, {timeout = 60})
    local seen, throttled = by_to(mock.requests())
    mock:stop()
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("worker 1 exits", r.stdout)
    assert.matches("worker 2 exits", r.stdout)
    assert.is_nil(r.stderr:match("exited with status"), r.stderr)
    each_once(seen, 30)
    assert.is_true(throttled > 0, "the mock refused none: the retry path was not taken")
    -- the next attempt of a refused row waited the mock's Retry-After (at least 1 s)
    local attempts = 0
    for to, e in pairs(seen) do
      attempts = attempts + #e.attempts
      for i = 2, #e.attempts do
        if e.attempts[i - 1].status == 429 then
          local gap = e.attempts[i].t - e.attempts[i - 1].t
          assert.is_true(gap >= 0.95, to .. " was sent again " .. gap .. "s after a 429 that said 1 s")
        end
      end
    end
    -- the run's summary counts what the mock saw, from both workers
    local all = run_counts(r.stderr)
    assert.are.same({requests = attempts, ok = 30, failed = 0, retries = attempts - 30, throttled = throttled}, all)
  end)

  it("adaptive = true: the two workers learn one pace from the headers; far fewer 429s than unpaced", function()
    local N = 60
    local client = [[local api = pacer.client{base_url = "URL", %s retry = {max_tries = 20, base = 0.05, cap = 0.2}}]]
    local tail = [[io.stdout:write("throttled ", api:stats().throttled, "\n")]]
    local function run(adaptive)
      local mock = H.mock_process("--rate 20/s") -- a burst of the whole window: 20
      local r = H.run_pacer({"--workers", "2", "-q", sms_script(mock.url, N, client:format(adaptive), tail)},
        {timeout = 60})
      local seen, throttled = by_to(mock.requests())
      mock:stop()
      assert.are.equal(0, r.code, r.stderr)
      each_once(seen, N)
      local said = 0 -- what the workers counted, against what the mock counted
      for n in r.stdout:gmatch("throttled (%d+)") do said = said + tonumber(n) end
      assert.are.equal(throttled, said, r.stdout)
      return throttled
    end
    -- the bound, measured: the same load unpaced, 8 at a time per worker, is refused
    -- every time it outruns the mock's 20/s
    local unpaced = run("")
    assert.is_true(unpaced >= 10, "unpaced, only " .. unpaced .. " 429s: the load does not test the pace")
    -- adaptive: the mock's RateLimit-Remaining counts both workers' sends, and the rate
    -- learnt from it is the one shared limiter's: together they stay under 20/s. The
    -- requests sent before any answer (8 per worker, the rate unknown) fit the mock's
    -- burst of 20. So at most a tenth of the unpaced refusals, 0 as a rule.
    local adaptive = run("adaptive = true,")
    assert.is_true(adaptive <= unpaced // 10, string.format("adaptive: %d 429s, unpaced: %d", adaptive, unpaced))
  end)

  it("adaptive = true without quota headers: two workers learn the server's rate, as one process does", function()
    local N = 60
    -- the same rows through one process, then through two workers: the mock's makespan
    -- (first to last acceptance) and the rate the last to finish had learnt
    local function run(args)
      local mock = H.mock_process("--rate 20/s --no-headers") -- 429 + Retry-After only
      local script = sms_script(mock.url, N, [[local api = pacer.client{base_url = "URL", adaptive = true,
  retry = {max_tries = 20, base = 0.05, cap = 0.2}}]], [[io.stdout:write("rate ", api:stats().rate, "\n")]])
      args[#args + 1] = script
      local r = H.run_pacer(args, {timeout = 60})
      local seen = by_to(mock.requests())
      mock:stop()
      assert.are.equal(0, r.code, r.stderr)
      each_once(seen, N)
      local first, last = math.huge, 0
      for _, e in pairs(seen) do
        for _, a in ipairs(e.attempts) do
          if a.status == 200 then first, last = math.min(first, a.t), math.max(last, a.t) end
        end
      end
      local rates = {}
      for v in r.stdout:gmatch("rate ([%d.e+-]+)") do rates[#rates + 1] = tonumber(v) end
      return last - first, rates[#rates], rates
    end
    local span1, rate1 = run({"-q"})
    local span2, rate2, rates = run({"--workers", "2", "-q"})
    assert.are.equal(2, #rates)
    -- one shared limiter paced at what the server takes: about as fast as one process
    -- (when each worker measured its own answers, two learnt 2.4-10/s: lim:answered)
    assert.is_true(span2 <= 1.3 * span1 + 0.5, string.format("two workers %.2fs, one process %.2fs", span2, span1))
    assert.is_true(rate2 >= 0.7 * rate1, string.format("two workers learnt %.1f/s, one process %.1f/s", rate2, rate1))
  end)

  it("max_wait: a request of either worker waits at most max_wait for the shared rate, or is refused", function()
    -- 20/s shared, each worker one request at a time: in one process two such tasks
    -- take turns and each waits about 0.1 s, well inside max_wait
    local mock = H.mock_process("--rate 1000/s")
    local script = H.script(string.format([[
local api = pacer.client{base_url = %q, rate = "20/s", retry = {max_tries = 1}}
local worst, refused, sent = 0, 0, 0
for _ = 1, 20 do
  local t = pacer.now()
  local res, err = api:get("/v2/numbers", {max_wait = "0.3s"})
  if res then sent = sent + 1 else assert(err.kind == "deadline", err.message); refused = refused + 1 end
  worst = math.max(worst, pacer.now() - t)
end
print(string.format("worker %%d: sent %%d, refused %%d, worst %%.3f", pacer.worker.id, sent, refused, worst))
]], mock.url))
    local r = H.run_pacer({"--workers", "2", "-q", script}, {timeout = 60})
    mock:stop()
    assert.are.equal(0, r.code, r.stderr)
    local worst, lines = 0, {}
    for w, sent, refused, t in r.stdout:gmatch("worker (%d): sent (%d+), refused (%d+), worst ([%d.]+)") do
      assert.are.equal(20, tonumber(sent) + tonumber(refused))
      worst = math.max(worst, tonumber(t))
      lines[#lines + 1] = w
    end
    assert.are.equal(2, #lines, r.stdout)
    -- 0.3 s, and 0.15 s for the answer and a noisy machine (a worker whose waiters
    -- queued apart from the other's waited 1 s: runtime/mod/limiter.c, ahead_of)
    assert.is_true(worst <= 0.45, "a request waited " .. worst .. "s with max_wait 0.3s")
  end)

  it("a worker busy in Lua with a waiter queued holds the other worker's waiters up by at most a few ms", function()
    -- worker 1 queues a waiter then computes for 0.8 s without yielding: its timer cannot
    -- fire, and worker 2 takes the slots rather than wait its turn behind it
    local script = H.script([[
local lim = pacer.limiter{rate = "20/s"}
lim:acquire() -- both workers: the schedule is now running
if pacer.worker.id == 1 then
  pacer.spawn(function() lim:acquire() end)
  pacer.sleep(0)
  local t = os.clock()
  while os.clock() - t < 0.8 do end
else
  pacer.sleep(0.1)
  local worst = 0
  for _ = 1, 10 do
    local t = pacer.now()
    lim:acquire()
    worst = math.max(worst, pacer.now() - t)
  end
  print(string.format("worst %.3f", worst))
end
]])
    local r = H.run_pacer({"--workers", "2", "-q", script}, {timeout = 30})
    assert.are.equal(0, r.code, r.stderr)
    local worst = tonumber(r.stdout:match("worst ([%d.]+)"))
    assert.is_not_nil(worst, r.stdout)
    -- one slot is 0.05 s; waiting behind worker 1 would take until its 0.8 s ended
    assert.is_true(worst <= 0.3, "worker 2 waited " .. worst .. "s for a slot of 0.05s")
  end)

  it("keys: each key's rate holds for the two workers together, and both workers use each key", function()
    local log = {} -- key -> {arrival times}, key -> {worker ids}
    local times, workers = {}, {}
    local srv = pacer.serve{routes = {["GET /k"] = function(req)
      local key = (req.headers["authorization"] or ""):match("^Bearer (.+)$") or "?"
      times[key] = times[key] or {}
      table.insert(times[key], pacer.now())
      workers[key] = workers[key] or {}
      workers[key][req.headers["x-worker"] or "?"] = true
      log[#log + 1] = key
      return 200, "ok"
    end}}
    local script = H.script(string.format([[
local api = pacer.client{base_url = %q, keys = {"key-a", "key-b"}, rate = "5/s", retry = {max_tries = 1}}
local list = {}
for i = 1, 20 do list[i] = i end
pacer.each(list, function() assert(api:get("/k", {headers = {["X-Worker"] = tostring(pacer.worker.id)}})) end,
  {progress = false})
]], srv.url))
    local r = run_beside({"--workers", "2", "-q", script}, 40)
    srv.close()
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(20, #log)
    for _, key in ipairs{"key-a", "key-b"} do
      local t = times[key]
      assert.is_table(t, key .. " was never used")
      assert.is_true(workers[key]["1"] and workers[key]["2"], key .. " was used by one worker only")
      -- 5/s with a burst of 1: an arrival every 0.2 s; a 1 s window holds 6 of them, and
      -- one more for a send late by a scheduling hiccup. Not shared, it would hold 10.
      local most = most_within(t, 1.0)
      assert.is_true(most <= 7, string.format("%s: %d requests within 1 s at 5/s", key, most))
      local span = t[#t] - t[1]
      assert.is_true(span >= (#t - 1) / 5 - 0.15, string.format("%s: %d requests in %.2fs at 5/s", key, #t, span))
    end
  end)

  it("groups: a path group's rate holds for the two workers together; other paths are not held", function()
    local mock = H.mock_process("--rate 1000/s")
    local script = H.script(string.format([[
local api = pacer.client{base_url = %q, retry = {max_tries = 1},
  groups = {numbers = {match = "^/v2/numbers", rate = "10/s"}}}
local list = {}
for i = 1, 40 do list[i] = i end
pacer.each(list, function(i)
  local res
  if i %% 2 == 0 then
    res = assert(api:get("/v2/numbers", {query = {page = i}}))
  else
    res = assert(api:post("/v2/sms/send", {json = {to = string.format("+1555%%07d", i), message = "hi"}}))
  end
  assert(res.status == 200, "HTTP " .. res.status)
end, {progress = false})
]], mock.url))
    local r = H.run_pacer({"--workers", "2", "-q", script}, {timeout = 60})
    local recs = mock.requests()
    mock:stop()
    assert.are.equal(0, r.code, r.stderr)
    local grouped, other = {}, {}
    for _, rec in ipairs(recs) do
      if rec.path == "/v2/numbers" then grouped[#grouped + 1] = rec.t end
      if rec.path == "/v2/sms/send" then other[#other + 1] = rec.t end
    end
    table.sort(grouped)
    table.sort(other)
    assert.are.equal(20, #grouped)
    assert.are.equal(20, #other)
    -- 20 at 10/s, the first free: 1.9 s at least; a 1 s window holds 11 (12 with a late one)
    local span = grouped[#grouped] - grouped[1]
    assert.is_true(span >= 1.75, "20 grouped requests in " .. span .. "s at 10/s")
    local most = most_within(grouped, 1.0)
    assert.is_true(most <= 12, most .. " grouped requests within 1 s at 10/s")
    -- the rest went without waiting for the group: done well before it
    assert.is_true(other[#other] - other[1] < 1.0, "20 ungrouped requests took " .. (other[#other] - other[1]) .. "s")
  end)

  it("breaker: each worker's circuit opens after its own failures; the items fail and so does the run", function()
    local mock = H.mock_process("--rate 1000/s --fail 1 --fail-status 503")
    local script = H.script(string.format([[
local api = pacer.client{base_url = %q, retry = false, concurrency = 1,
  breaker = {failures = 3, cooldown = "0.5s"},
  alerts = {pacer.alert.on("circuit_open", function(a) print("worker " .. pacer.worker.id .. ": " .. a.message) end)}}
local list = {}
for i = 1, 10 do list[i] = i end -- 5 for each worker
pacer.each(list, function(i)
  local to = string.format("+1555%%03d%%04d", pacer.worker.id, i)
  local res = assert(api:post("/v2/sms/send", {json = {to = to, message = "hi"}}))
  assert(res.status == 200, "HTTP " .. res.status)
end, {progress = false, concurrency = 1})
print("worker " .. pacer.worker.id .. ": circuit " .. api:stats().circuit)
]], mock.url))
    local r = H.run_pacer({"--workers", "2", script}, {timeout = 60})
    local recs = mock.requests()
    mock:stop()
    assert.are.equal(1, r.code, r.stderr)
    for w = 1, 2 do
      -- the third failure opens it, each failed probe again: 3 alerts per worker
      local opened = 0
      for _ in r.stdout:gmatch("worker " .. w .. ": [^\n]- circuit open after %d+ failures, pausing 0%.5s") do
        opened = opened + 1
      end
      assert.are.equal(3, opened, r.stdout)
      assert.matches("worker " .. w .. ": circuit open\n", r.stdout)
      assert.matches("pacer: worker " .. w .. " of 2 exited with status 1", r.stderr)
      -- what the mock saw of this worker: 3 at once, then one probe per cooldown
      local t = {}
      for _, rec in ipairs(recs) do
        if rec.path == "/v2/sms/send" and pacer.json.decode(rec.body).to:sub(6, 8) == string.format("%03d", w) then
          assert.are.equal(503, rec.status)
          t[#t + 1] = rec.t
        end
      end
      assert.are.equal(5, #t)
      assert.is_true(t[3] - t[1] < 0.4, "worker " .. w .. ": the first 3 took " .. (t[3] - t[1]) .. "s")
      for i = 4, 5 do
        local gap = t[i] - t[i - 1]
        assert.is_true(gap >= 0.48, string.format("worker %d: probe %d went %.3fs after the circuit opened", w, i - 3, gap))
      end
    end
    -- each worker reports its failed items (the line does not say which worker's they are)
    local reports = 0
    for _ in r.stderr:gmatch("pacer: [^\n]-pacer%.each: 5 of 5 items failed; first: [^\n]-HTTP 503 %(5 times%)") do
      reports = reports + 1
    end
    assert.are.equal(2, reports, r.stderr)
    assert.matches("pacer: all 2 workers: 10 requests in [%d.]+s: 0 ok, 10 failed", r.stderr)
  end)

  it("cache = true: each worker's cache answers its second GET; the server sees one per worker", function()
    local mock = H.mock_process("--rate 1000/s")
    local script = H.script(string.format([[
local api = pacer.client{base_url = %q, cache = true, retry = {max_tries = 1}}
local a = assert(api:get("/v2/numbers", {query = {page = 2}}))
local b = assert(api:get("/v2/numbers", {query = {page = 2}}))
assert(a.body == b.body, "the cached body differs")
local s = api:stats()
print(string.format("worker %%d: first %%s, second %%s, hits %%d, misses %%d", pacer.worker.id,
  tostring(a.cached or false), tostring(b.cached or false), s.cache_hits, s.cache_misses))
]], mock.url))
    local r = H.run_pacer({"--workers", "2", "--stats", "-", "-q", script}, {timeout = 60})
    local recs = mock.requests()
    mock:stop()
    assert.are.equal(0, r.code, r.stderr)
    for w = 1, 2 do assert.matches("worker " .. w .. ": first false, second true, hits 1, misses 1", r.stdout) end
    local n = 0
    for _, rec in ipairs(recs) do if rec.path == "/v2/numbers" then n = n + 1 end end
    assert.are.equal(2, n)
    local run = pacer.json.decode(r.stdout:match("\n({[^\n]*\"worker\":0[^\n]*})"))
    assert.are.equal(2, run.cache_hits)
    assert.are.equal(2, run.requests)
  end)

  it("idempotency: one key per logical request, the same on its retries, none shared across workers", function()
    -- failures and cut connections make retries; a cut one was processed: only its
    -- key (the mock replays the stored answer) keeps it from going twice
    local mock = H.mock_process("--rate 1000/s --fail 0.2 --drop 0.2")
    local script = sms_script(mock.url, 40, [[local api = pacer.client{base_url = "URL", idempotency = true,
  retry = {base = 0.01, cap = 0.05, max_tries = 20}}]])
    local r = H.run_pacer({"--workers", "2", "-q", script}, {timeout = 60})
    local seen = by_to(mock.requests())
    mock:stop()
    assert.are.equal(0, r.code, r.stderr)
    each_once(seen, 40)
    local owner, retried, replayed = {}, 0, 0
    for to, e in pairs(seen) do
      local key = e.attempts[1].idempotency_key
      assert.is_string(key, to .. " was sent without a key")
      assert.is_nil(owner[key], string.format("%s and %s had the one key %s", tostring(owner[key]), to, key))
      owner[key] = to
      for _, a in ipairs(e.attempts) do
        assert.are.equal(key, a.idempotency_key, to .. ": a retry with another key")
        if a.replayed then replayed = replayed + 1 end
      end
      if #e.attempts > 1 then retried = retried + 1 end
    end
    assert.is_true(retried > 0, "no row was retried: the keys were not put to the test")
    assert.is_true(replayed > 0, "no answer was replayed: no cut connection was resent")
  end)
end)
