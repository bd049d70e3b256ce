-- spec/http/faults_spec.lua: the fault suite. Injected 5xx and dropped connections (pacer.mock),
-- latency past the timeout, a server restarted mid-run (`pacer mock` as a subprocess),
-- connection refused, DNS failure, a self-signed certificate (nginx), a slowloris client
-- and a 100 MB body against pacer.serve, and a whole job run against a failing mock.
-- Every outcome is checked on both sides: what the client says and what the server saw.
-- Runs inside the pacer host: ./build/pacer -q tools/busted.lua -o TAP spec/http/faults_spec.lua
local H = dofile("spec/support/helpers.lua")
local json = pacer.json

local contains = H.contains

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

local sh = H.sh

-- Waits (bounded) until fn() is true; returns its last value.
local function eventually(fn, limit)
  local deadline = pacer.now() + (limit or 2)
  local v = fn()
  while not v and pacer.now() < deadline do
    pacer.sleep(0.02)
    v = fn()
  end
  return v
end

local function messages(n)
  local list = {}
  for i = 1, n do list[i] = {to = string.format("+1555%07d", i), message = "message " .. i} end
  return list
end

-- The mock's record grouped by message text: {n = attempts seen, processed = times the
-- mock accepted it (200, not a replay), keys = {Idempotency-Key = true}, statuses = {}}
local function by_message(mock)
  local out = {}
  for _, r in ipairs(mock.requests) do
    if r.path == "/v2/sms/send" then
      local m = json.decode(r.body).message
      local e = out[m] or {n = 0, processed = 0, keys = {}, nkeys = 0, statuses = {}}
      out[m] = e
      e.n = e.n + 1
      e.statuses[#e.statuses + 1] = r.status
      if r.idempotency_key and not e.keys[r.idempotency_key] then
        e.keys[r.idempotency_key] = true
        e.nkeys = e.nkeys + 1
      end
      if r.status == 200 and not r.replayed then e.processed = e.processed + 1 end
    end
  end
  return out
end

-- Sends every message through api; returns one outcome per message:
-- {status=, id=, replayed=} for an answer, {err = err} for a transport failure.
local function send_all(api, list, concurrency)
  local results = pacer.each(list, function(m)
    local res, err = api:post("/sms/send", {json = m})
    if not res then return {err = err} end
    return {status = res.status, id = res.status == 200 and res:json().id or nil, attempts = res.attempts,
      replayed = res.headers["idempotent-replayed"] == "true", body = res.body}
  end, {concurrency = concurrency or 16, progress = false})
  local out = {}
  for i, r in ipairs(results) do
    assert.is_true(r.ok, "the callback raised for item " .. i .. ": " .. tostring(r.err))
    out[i] = r.value
  end
  return out
end

describe("injected 5xx and dropped connections", function()
  it("(a) 200 POSTs with idempotency keys: none lost, each message accepted exactly once", function()
    math.randomseed(4242)
    local mock = pacer.mock{rate = "100/s", fail = 0.2, drop = 0.05}
    local api = pacer.client{base_url = mock.url .. "/v2", rate = "100/s", idempotency = true,
      retry = {base = 0.02, cap = 0.2, max_tries = 6}}
    local list = messages(200)
    local t0 = pacer.now()
    local out = send_all(api, list)
    local took = pacer.now() - t0
    local seen = by_message(mock)
    local received = #mock.requests
    local usage = assert(pacer.request{url = mock.url .. "/v2/billing/usage", retry = false}):json()
    mock:close()

    local ok, failed, ids, processed = 0, 0, {}, 0
    for i, m in ipairs(list) do
      local o, s = out[i], seen[m.message]
      assert.is_not_nil(s, m.message .. " never reached the mock")
      assert.are.equal(1, s.nkeys, m.message .. ": one Idempotency-Key on every attempt")
      processed = processed + s.processed
      if o.status == 200 then
        ok = ok + 1
        assert.truthy(o.id and o.id:match("^SM%d+$"), m.message)
        assert.is_nil(ids[o.id], "two messages got id " .. tostring(o.id))
        ids[o.id] = true
        assert.are.equal(1, s.processed, m.message .. " accepted " .. s.processed .. " times")
      else
        failed = failed + 1
        -- failed with a reason: a transport error or a status that ran out of retries
        assert.is_nil(o.status, m.message .. ": a final " .. tostring(o.status) .. " without err")
        assert.truthy(o.err.kind == "gave_up" or o.err.gave_up, m.message .. ": " .. tostring(o.err.message))
        assert.truthy(#o.err.message > 0)
        assert.is_true(s.processed <= 1, m.message .. " accepted " .. s.processed .. " times")
      end
    end
    assert.are.equal(200, ok + failed)
    -- the faults happened, and retries (with replays of processed-but-dropped answers) covered them
    assert.is_true(mock:count{injected = true} >= 20, "injected " .. mock:count{injected = true})
    assert.is_true(mock:count{dropped = true} >= 2, "dropped " .. mock:count{dropped = true})
    assert.is_true(mock:count{replayed = true} >= 1, "replayed " .. mock:count{replayed = true})
    assert.is_true(ok >= 195, "only " .. ok .. " of 200 went through")
    -- every attempt the client counted reached the mock, and the mock's own tally agrees
    local s = api:stats()
    assert.are.equal(s.requests, received)
    assert.are.equal(ok, s.ok)
    assert.are.equal(failed, s.failed)
    assert.are.equal(processed, usage.sms_sent)
    -- every injected or dropped attempt (and any 429) was retried, except the last attempt
    -- of a message that failed
    assert.are.equal(mock:count{injected = true} + mock:count{dropped = true} + mock:count{status = 429} - failed,
      s.retries)
    assert.is_true(took < 15, "took " .. took)
  end)

  it("(b) the same without idempotency keys: nothing retried after a drop, nothing sent twice", function()
    math.randomseed(777)
    local mock = pacer.mock{rate = "100/s", fail = 0.2, drop = 0.05}
    local api = pacer.client{base_url = mock.url .. "/v2", rate = "100/s",
      retry = {base = 0.02, cap = 0.2, max_tries = 6}}
    local list = messages(200)
    local out = send_all(api, list)
    local seen = by_message(mock)
    local url = mock.url .. "/v2/sms/send"
    mock:close()

    local ok, refused, closed = 0, 0, 0
    for i, m in ipairs(list) do
      local o, s = out[i], seen[m.message]
      assert.is_not_nil(s, m.message .. " never reached the mock")
      assert.are.equal(0, s.nkeys)
      -- sent once (a 429 would be refused before any work, so it would not count)
      local sent = 0
      for _, st in ipairs(s.statuses) do if st ~= 429 then sent = sent + 1 end end
      assert.are.equal(1, sent, m.message .. " was sent " .. sent .. " times")
      if o.status == 200 then
        ok = ok + 1
        assert.are.equal(1, s.processed)
      elseif o.status then
        -- an injected 500/503 comes back as the response, with the server's reason
        refused = refused + 1
        assert.truthy(o.status == 500 or o.status == 503, tostring(o.status))
        assert.are.equal(1, o.attempts)
        assert.are.same({error = "injected failure"}, json.decode(o.body))
        assert.are.equal(0, s.processed)
      else
        -- a dropped answer: the request was sent, so it is not repeated; the error says so
        closed = closed + 1
        assert.are.equal("closed", o.err.kind)
        assert.is_true(o.err.sent)
        assert.are.equal(1, o.err.attempts)
        assert.is_nil(o.err.gave_up)
        assert.truthy(o.err.message:match("^POST " .. url:gsub("%p", "%%%0") .. ": transfer closed with %d+ bytes remaining to read$"),
          o.err.message)
        assert.are.equal(1, s.processed) -- the mock did the work; only the answer was lost
      end
    end
    assert.are.equal(200, ok + refused + closed)
    assert.is_true(refused >= 10, "refused " .. refused)
    assert.is_true(closed >= 1, "closed " .. closed)
    local s = api:stats()
    assert.are.equal(closed, s.errors.closed)
    assert.are.equal(s.throttled, s.retries) -- only 429s may be retried
  end)
end)

describe("latency beyond the timeout", function()
  it("(c) a GET that times out is retried; kind 'timeout', attempts counted", function()
    local mock = pacer.mock{rate = "100/s", latency = "1s"}
    local u = mock.url .. "/v2/numbers"
    local t0 = pacer.now()
    local res, err = pacer.request{url = u, timeout = 0.2, retry = {base = 0.01, cap = 0.02, max_tries = 3}}
    local took = pacer.now() - t0
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.are.equal(3, err.attempts)
    assert.are.equal("max_tries (3) reached", err.gave_up)
    local prefix = "GET " .. u .. ": Operation timed out after "
    assert.are.equal(prefix, err.message:sub(1, #prefix))
    assert.is_true(took >= 0.6 and took < 2, "took " .. took)
    -- the mock finishes each slow answer after the client gave up on it: three attempts
    assert.are.equal(3, eventually(function() return mock:count{path = "/v2/numbers"} == 3 and 3 end, 3)
      or mock:count{path = "/v2/numbers"})
    mock:close()
  end)

  it("(c) a POST without a key that timed out is not retried: the server did the work", function()
    local mock = pacer.mock{rate = "100/s", latency = "0.5s"}
    local res, err = pacer.request{method = "POST", url = mock.url .. "/v2/sms/send", timeout = 0.2,
      json = {to = "+15550100", message = "slow"}, retry = {base = 0.01, cap = 0.02, max_tries = 3}}
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.is_true(err.sent)
    assert.are.equal(1, err.attempts)
    assert.is_nil(err.gave_up)
    assert.truthy(eventually(function() return mock:count{path = "/v2/sms/send", status = 200} == 1 end, 2))
    assert.are.equal(1, #mock.requests)
    mock:close()
  end)

  it("(c) latency spikes past the timeout: GETs retried until they get through", function()
    math.randomseed(99)
    local mock = pacer.mock{rate = "100/s", latency = {0, 0.5}}
    local api = pacer.client{base_url = mock.url .. "/v2", rate = "100/s", timeout = 0.25,
      retry = {base = 0.01, cap = 0.05, max_tries = 8}}
    local results = pacer.each(range(20), function(i)
      local res, err = api:get("/numbers", {query = {page = i, per_page = 1}})
      if res then return {status = res.status, page = res:json().page} end
      return {err = err}
    end, {concurrency = 20, progress = false})
    local ok, gave_up = 0, 0
    for i, r in ipairs(results) do
      assert.is_true(r.ok, tostring(r.err))
      if r.value.status then
        assert.are.equal(200, r.value.status)
        assert.are.equal(i, r.value.page)
        ok = ok + 1
      else
        assert.are.equal("timeout", r.value.err.kind)
        assert.are.equal("max_tries (8) reached", r.value.err.gave_up)
        gave_up = gave_up + 1
      end
    end
    local s = api:stats()
    assert.are.equal(20, ok + gave_up)
    assert.is_true(ok >= 18, "only " .. ok .. " of 20")
    assert.is_true((s.errors.timeout or 0) >= 3, "timeouts " .. tostring(s.errors.timeout))
    -- every timeout led to a retry except the last attempt of an item that gave up
    assert.are.equal(s.errors.timeout - gave_up, s.retries)
    assert.are.equal(20 + s.retries, s.requests)
    mock:close()
  end)
end)

describe("the server restarted mid-run", function()
  it("(d) a `pacer mock` process killed and started again on its port: nothing lost", function()
    local port = H.free_port()
    local pidfile = os.tmpname()
    local base = "http://127.0.0.1:" .. port
    local function start()
      os.execute(string.format("sh -c '%s mock --port %d --rate 200/s >/dev/null 2>&1 & echo $! > %s'",
        H.PACER, port, pidfile))
      for _ = 1, 100 do
        if pacer.request{url = base .. "/v2/billing/usage", retry = false, timeout = 1} then return true end
        pacer.sleep(0.05)
      end
      return false
    end
    local function stop()
      os.execute("kill $(cat " .. pidfile .. ") 2>/dev/null")
      -- gone when it no longer answers
      return eventually(function()
        return pacer.request{url = base .. "/v2/billing/usage", retry = false, timeout = 0.5} == nil
      end, 3)
    end
    assert.is_true(start(), "pacer mock did not start on port " .. port)
    local api = pacer.client{base_url = base .. "/v2", rate = "50/s", idempotency = true,
      retry = {base = 0.1, cap = 0.5, max_tries = 30, max_time = 20}}
    local outage = pacer.spawn(function()
      pacer.sleep(1)
      assert(stop(), "the mock did not stop")
      pacer.sleep(1)
      assert(start(), "the mock did not start again")
    end)
    local list = messages(150)
    local out = send_all(api, list, 8)
    local ok_outage, outage_err = outage:wait()
    local usage = assert(pacer.request{url = base .. "/v2/billing/usage", retry = false}):json()
    os.execute("kill $(cat " .. pidfile .. ") 2>/dev/null; rm -f " .. pidfile)
    assert.is_true(ok_outage, tostring(outage_err))
    local ids = {}
    for i, o in ipairs(out) do
      assert.are.equal(200, o.status, list[i].message .. ": " .. tostring(o.err and o.err.message))
      assert.truthy(o.id and o.id:match("^SM%d+$"))
      ids[#ids + 1] = o.id
    end
    assert.are.equal(150, #ids)
    local s = api:stats()
    assert.are.equal(150, s.ok)
    assert.are.equal(0, s.failed)
    -- the outage was seen (refused connections, retried) and the restarted mock took the rest
    assert.is_true((s.errors.connect or 0) >= 1, "no connection was refused")
    assert.is_true(s.retries >= s.errors.connect)
    assert.is_true(usage.sms_sent > 0 and usage.sms_sent < 150, "the new mock accepted " .. usage.sms_sent)
  end)
end)

describe("transport failures", function()
  it("(e) connection refused: kind 'connect', retried, gives up with the attempts counted", function()
    local port = H.free_port()
    local api = pacer.client{base_url = "http://127.0.0.1:" .. port, idempotency = true,
      retry = {base = 0.01, cap = 0.02, max_tries = 4}}
    local tries = {}
    local res, err = api:post("/v2/sms/send", {json = {to = "+15550100", message = "hi"},
      retry = {base = 0.01, cap = 0.02, max_tries = 4, on_retry = function(i) tries[#tries + 1] = i.attempt end}})
    assert.is_nil(res)
    assert.are.equal("connect", err.kind)
    assert.is_false(err.sent)
    assert.are.equal(4, err.attempts)
    assert.are.equal("max_tries (4) reached", err.gave_up)
    local prefix = "POST http://127.0.0.1:" .. port .. "/v2/sms/send: Failed to connect to 127.0.0.1 port " .. port
    assert.are.equal(prefix, err.message:sub(1, #prefix))
    assert.are.same({1, 2, 3}, tries)
    local s = api:stats()
    assert.are.equal(4, s.requests)
    assert.are.equal(3, s.retries)
    assert.are.equal(1, s.failed)
    assert.are.same({connect = 4}, s.errors)
  end)

  it("(f) DNS failure: kind 'dns', not retried", function()
    local api = pacer.client{base_url = "http://no-such-host.invalid/v2", timeout = 5,
      retry = {base = 0.01, cap = 0.02, max_tries = 4}}
    local t0 = pacer.now()
    local res, err = api:get("/numbers")
    assert.is_nil(res)
    assert.are.equal("dns", err.kind)
    assert.is_false(err.sent)
    assert.are.equal(1, err.attempts)
    assert.is_nil(err.gave_up)
    assert.are.equal("GET http://no-such-host.invalid/v2/numbers: Could not resolve host: no-such-host.invalid",
      err.message)
    local s = api:stats()
    assert.are.equal(1, s.requests)
    assert.are.equal(0, s.retries)
    assert.are.same({dns = 1}, s.errors)
    assert.is_true(pacer.now() - t0 < 5)
  end)

  describe("(g) TLS with a self-signed certificate (nginx)", function()
    local ng
    setup(function() ng = H.tls_nginx("ssl") end)
    teardown(function() if ng then ng.stop() end end)

    it("verification on: kind 'tls', the certificate problem named, not retried", function()
      local api = pacer.client{base_url = ng.url, idempotency = true, retry = {base = 0.01, cap = 0.02, max_tries = 4}}
      for _, method in ipairs{"get", "post"} do
        local res, err = api[method](api, "/small.txt", method == "post" and {json = {a = 1}} or nil)
        assert.is_nil(res)
        assert.are.equal("tls", err.kind)
        assert.are.equal(1, err.attempts)
        assert.is_false(err.sent)
        local prefix = method:upper() .. " " .. ng.url .. "/small.txt: SSL certificate problem: self-signed certificate"
        assert.are.equal(prefix, err.message:sub(1, #prefix))
      end
      assert.are.equal(0, api:stats().retries)
      assert.are.same({tls = 2}, api:stats().errors)
      -- the same server with verification off answers: the failure was the certificate
      local res = assert(pacer.request{url = ng.url .. "/small.txt", verify = false, retry = false})
      assert.are.equal("hello from nginx\n", res.body)
    end)
  end)
end)

describe("abusive clients against pacer.serve", function()
  local srv
  local handled = {}
  setup(function()
    srv = pacer.serve{header_timeout = 1, routes = {
      ["GET /slow"] = function() handled[#handled + 1] = "slow" return 200, "slowloris got through" end,
      ["POST /upload"] = function(req) handled[#handled + 1] = "upload " .. #req.body return 200, {n = #req.body} end,
      ["GET /ping"] = function() return 200, "pong" end,
    }}
  end)
  teardown(function() srv.close() end)

  it("(h) a slowloris gets 408 after header_timeout; other clients are answered meanwhile", function()
    local dir = os.tmpname()
    local f = assert(io.open(dir .. ".sh", "w"))
    -- one header byte every 0.3 s; stops when the server has closed the connection
    f:write([[
trap '' PIPE
exec 3<>/dev/tcp/127.0.0.1/$1 || exit 3
cat <&3 >"$2.resp" &
s=$'GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n'
n=0
for ((i = 0; i < ${#s}; i++)); do
  printf '%s' "${s:i:1}" >&3 2>/dev/null || break
  n=$((n + 1))
  sleep 0.3
done
echo "$n ${#s}" >"$2.sent"
wait
]])
    f:close()
    local t0 = pacer.now()
    local loris = pacer.spawn(function()
      return sh(string.format("timeout 10 bash %s.sh %d %s", dir, srv.port, dir), 12)
    end)
    -- meanwhile: a request every 0.1 s, each answered at once
    local answered, slowest, got408 = 0, 0, nil
    for _ = 1, 100 do
      if loris:status() ~= "running" then break end
      local t1 = pacer.now()
      local res = assert(pacer.request{url = srv.url .. "/ping", retry = false, timeout = 2})
      assert.are.equal("pong", res.body)
      answered = answered + 1
      slowest = math.max(slowest, pacer.now() - t1)
      if not got408 and (H.read_file(dir .. ".resp") or ""):find("408", 1, true) then got408 = pacer.now() - t0 end
      pacer.sleep(0.1)
    end
    local _, rc = select(2, loris:wait())
    local resp = H.read_file(dir .. ".resp") or ""
    local sent = H.read_file(dir .. ".sent") or ""
    os.remove(dir) os.remove(dir .. ".sh") os.remove(dir .. ".resp") os.remove(dir .. ".sent")
    assert.are.equal(0, rc)
    assert.are.equal("HTTP/1.1 408 Request Timeout\r\n", resp:match("^[^\n]*\n"))
    contains(resp, "Connection: close\r\n")
    contains(resp, "request headers not received in time")
    assert.truthy(got408, "no 408 seen while the slowloris ran")
    assert.is_true(got408 >= 0.9 and got408 < 2.5, "408 after " .. got408 .. " s")
    local n, total = sent:match("^(%d+) (%d+)")
    assert.is_true(tonumber(n) < tonumber(total), "the slowloris finished its headers: " .. sent)
    assert.are.same({}, handled)
    assert.is_true(answered >= 5, "answered " .. answered)
    assert.is_true(slowest < 0.5, "slowest answer " .. slowest .. " s")
  end)

  local function rss_kb()
    for line in io.lines("/proc/self/status") do
      local v = line:match("^VmRSS:%s*(%d+) kB")
      if v then return tonumber(v) end
    end
  end

  -- curl POSTing a body given by `source` (-T FILE or -T -); prints the status it got
  local function upload(source)
    return "curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Expect:' "
      .. "-H 'Content-Type: application/octet-stream' " .. source .. " " .. srv.url .. "/upload"
  end

  it("(i) a 100 MB body (with its Content-Length) gets 413 at once and memory stays bounded", function()
    local big = os.tmpname()
    assert(os.execute("truncate -s 100M " .. big))
    local before = rss_kb()
    local t0 = pacer.now()
    local code, rc = sh(upload("-T " .. big), 20)
    local took = pacer.now() - t0
    local after = rss_kb()
    os.remove(big)
    assert.are.equal(0, rc)
    assert.are.equal("413", code)
    assert.is_true(took < 3, "took " .. took)
    assert.are.same({}, handled)
    assert.is_true(after - before < 20 * 1024, string.format("RSS grew from %d kB to %d kB", before, after))
    assert.are.equal("pong", assert(pacer.request{url = srv.url .. "/ping", retry = false}).body)
  end)

  it("(i) a 100 MB chunked body (no length) gets 413 at max_body and memory stays bounded", function()
    local before = rss_kb()
    local t0 = pacer.now()
    local code, rc = sh("head -c 104857600 /dev/zero | " .. upload("-T -"), 20)
    local took = pacer.now() - t0
    local after = rss_kb()
    assert.is_not_nil(rc, "curl was still sending after 20 s")
    assert.are.equal("413", code) -- the server reads and drops the rest: no reset loses the answer
    assert.is_true(took < 3, "took " .. took)
    assert.are.same({}, handled)
    assert.is_true(after - before < 20 * 1024, string.format("RSS grew from %d kB to %d kB", before, after))
    assert.are.equal("pong", assert(pacer.request{url = srv.url .. "/ping", retry = false}).body)
  end)
end)

describe("a whole job against a failing mock (subprocess)", function()
  local script = H.script
  teardown(H.remove_scripts)

  local function run(code, extra)
    local path = script(code)
    local stats = os.tmpname()
    local args = {"--stats", stats}
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    args[#args + 1] = path
    local r = H.run_pacer(args, {timeout = 30})
    r.stats = json.decode(H.read_file(stats) or "null")
    os.remove(stats)
    r.path = path
    return r
  end

  it("(j) a job that raises when pages failed: exit 1, the error at its line, and the summary", function()
    local r = run([[
local mock = pacer.mock{rate = "100/s", fail = 1}
local api = pacer.client{base_url = mock.url .. "/v2", rate = "100/s",
  retry = {base = 0.01, cap = 0.02, max_tries = 3}}
local results = pacer.each({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, function(page)
  local res, err = api:get("/numbers", {query = {page = page}})
  if not res then error(err.message, 0) end
  return res.status
end, {progress = false})
local failed = 0
for _, r in ipairs(results) do if not r.ok then failed = failed + 1 end end
print("failed " .. failed)
if failed > 0 then error(string.format("%d of %d pages failed", failed, #results)) end
]])
    assert.are.equal(1, r.code)
    assert.are.equal("failed 10\n", r.stdout)
    contains(r.stderr, "pacer: " .. r.path .. ":12: 10 of 10 pages failed\nstack traceback:")
    local line = r.stderr:match("pacer: %d+ requests in [^\n]*")
    assert.truthy(line, r.stderr)
    assert.truthy(line:match("^pacer: 30 requests in %d+%.%d%ds: 0 ok, 10 failed, 20 retries, 0 throttled %(429%); "
      .. "average wait for the limiter %d+%.%d%d%ds per request$"), line)
    local n500, n503 = r.stderr:match("\npacer: by status: 500×(%d+) 503×(%d+)\n")
    assert.truthy(n500, r.stderr)
    assert.are.equal(30, tonumber(n500) + tonumber(n503))
    contains(r.stderr, "\npacer: makespan ")
    -- --stats says the same
    assert.are.equal("error", r.stats.outcome)
    assert.are.same({requests = 30, ok = 0, failed = 10, retries = 20, throttled = 0},
      {requests = r.stats.requests, ok = r.stats.ok, failed = r.stats.failed, retries = r.stats.retries,
       throttled = r.stats.throttled})
    assert.are.same({["500"] = tonumber(n500), ["503"] = tonumber(n503)}, r.stats.by_status)
  end)

  it("(j) a job that reports its failures and ends: exit 0, the summary agrees with its tally", function()
    local r = run([[
math.randomseed(5)
local mock = pacer.mock{rate = "100/s", fail = 0.5}
local api = pacer.client{base_url = mock.url .. "/v2", rate = "100/s",
  retry = {base = 0.01, cap = 0.02, max_tries = 2}}
local list = {}
for i = 1, 40 do list[i] = i end
local ok, failed = 0, 0
pacer.each(list, function(i)
  local res, err = api:get("/numbers", {query = {page = 1, per_page = 1}})
  if res and res.status == 200 then ok = ok + 1 else failed = failed + 1 end
end, {progress = false})
print(ok .. " " .. failed)
]])
    assert.are.equal(0, r.code, r.stderr)
    local ok, failed = r.stdout:match("^(%d+) (%d+)\n$")
    assert.truthy(ok, r.stdout)
    ok, failed = tonumber(ok), tonumber(failed)
    assert.are.equal(40, ok + failed)
    assert.is_true(failed > 0 and ok > 0, r.stdout)
    local req, sok, sfailed, retries = r.stderr:match("^pacer: (%d+) requests in %d+%.%d%ds: (%d+) ok, (%d+) failed, (%d+) retries")
    assert.truthy(req, r.stderr)
    assert.are.equal(ok, tonumber(sok))
    assert.are.equal(failed, tonumber(sfailed))
    assert.are.equal(40 + tonumber(retries), tonumber(req))
    assert.are.equal("ok", r.stats.outcome)
    assert.are.equal(ok, r.stats.ok)
    assert.are.equal(failed, r.stats.failed)
  end)

  it("(j) -q keeps the job's error and drops the summary", function()
    local r = run([[
local mock = pacer.mock{rate = "100/s", fail = 1}
local res, err = pacer.request{url = mock.url .. "/v2/numbers", retry = {base = 0.01, cap = 0.01, max_tries = 2}}
if not res then error(err.message) end
]], {"-q"})
    assert.are.equal(1, r.code)
    contains(r.stderr, "pacer: " .. r.path .. ":3: GET " .. "http://127.0.0.1:")
    contains(r.stderr, "/v2/numbers: gave up after 2 attempts (last: HTTP 50")
    assert.is_nil(r.stderr:find("requests in", 1, true), r.stderr)
    assert.are.equal(2, r.stats.requests)
  end)
end)
