-- A limiter shared through a real redis-server (Debian's, on a loopback port): pacing,
-- several processes on one quota, Redis restarted mid-run, Redis unreachable.
local H = dofile("spec/support/helpers.lua")

local message = H.message

describe("pacer.limiter{redis = ...}", function()
  local redis
  setup(function() redis = H.redis() end)
  teardown(function() redis.cleanup() end)

  it("paces like a local limiter: 21 acquires at 20/s take about a second", function()
    local lim = pacer.limiter{rate = "20/s", redis = redis.url, key = "pace-" .. math.random(1e9)}
    local t0 = pacer.now()
    for _ = 1, 21 do lim:acquire() end
    local took = pacer.now() - t0
    assert.is_true(took >= 0.95 and took < 1.6, "took " .. took)
    assert.are.equal(20, lim:state().rate)
    assert.is_true(lim:state().shared)
  end)

  it("shares one quota between 4 processes: no 429 from a mock at that rate, every item once", function()
    local port = H.free_port()
    local pidfile = os.tmpname()
    os.execute(string.format("sh -c '%s mock --port %d --rate 100/s >/dev/null 2>&1 & echo $! > %s'", H.PACER, port,
      pidfile))
    local api = "http://127.0.0.1:" .. port
    for _ = 1, 100 do
      if pacer.request{url = api .. "/v2/billing/usage", retry = false, timeout = 1} then break end
      pacer.sleep(0.05)
    end
    local key = "shared-" .. math.random(1e9)
    local worker = H.script(string.format([[
local id = tonumber(arg[1])
local lim = pacer.limiter{rate = "100/s", redis = %q, key = %q}
local api = pacer.client{base_url = %q, limiter = lim, retry = false}
local items = {}
for i = 1, 100 do items[i] = string.format("+1555%%03d%%04d", id, i) end
local bad = 0
pacer.each(items, function(to)
  local res = api:post("/v2/sms/send", {json = {to = to, message = "hi"}})
  if not res or res.status ~= 200 then bad = bad + 1 end
end, {concurrency = 4})
print("bad " .. bad)
]], redis.url, key, api))
    local t0 = pacer.now()
    local outs = {}
    for p = 1, 4 do outs[p] = os.tmpname() end
    local cmds = {}
    for p = 1, 4 do cmds[p] = string.format("%s -q %s %d > %s 2>&1 &", H.PACER, worker, p, outs[p]) end
    os.execute("(" .. table.concat(cmds, " ") .. " wait)")
    local took = pacer.now() - t0
    local rec = assert(pacer.request{url = api .. "/_mock/requests", retry = false}):json()
    os.execute("kill $(cat " .. pidfile .. ") 2>/dev/null")
    local throttled, accepted, twice = 0, {}, 0
    for _, r in ipairs(rec) do
      if r.status == 429 then throttled = throttled + 1 end
      if r.path == "/v2/sms/send" and r.status == 200 then
        local to = pacer.json.decode(r.body).to
        if accepted[to] then twice = twice + 1 end
        accepted[to] = true
      end
    end
    local n = 0
    for _ in pairs(accepted) do n = n + 1 end
    for p = 1, 4 do
      assert.are.equal("bad 0\n", H.read_file(outs[p]))
      os.remove(outs[p])
    end
    os.remove(worker) os.remove(pidfile)
    assert.are.equal(0, throttled)
    assert.are.equal(400, n)
    assert.are.equal(0, twice)
    -- 400 at a shared 100/s: about 4 s (each process alone would take 1 s)
    assert.is_true(took >= 3.5 and took < 8, "took " .. took)
  end)

  it("waits out a Redis restart and goes on (on_redis_down = 'wait')", function()
    local lim = pacer.limiter{rate = "50/s", redis = redis.url, key = "restart-" .. math.random(1e9)}
    local done = 0
    local t = pacer.spawn(function()
      for _ = 1, 60 do
        lim:acquire()
        done = done + 1
      end
    end)
    pacer.sleep(0.3)
    redis.stop()
    pacer.sleep(0.5)
    local during = done
    redis.start()
    assert.is_true((t:wait()))
    assert.are.equal(60, done)
    assert.is_true(during < 60)
  end)

  it("paces locally at its share while Redis is unreachable (on_redis_down = 'local')", function()
    local lim = pacer.limiter{rate = "40/s", redis = "redis://127.0.0.1:" .. H.free_port(), key = "k",
      on_redis_down = "local", local_share = 0.5}
    local t0 = pacer.now()
    for _ = 1, 11 do lim:acquire() end
    local took = pacer.now() - t0
    assert.is_true(took >= 0.45 and took < 1.5, "11 at 20/s (half of 40/s) took " .. took)
  end)

  -- the most grants in any `span` seconds of `times` (sorted)
  local function densest(times, span)
    local most, j = 0, 1
    for i = 1, #times do
      while times[i] - times[j] >= span do j = j + 1 end
      most = math.max(most, i - j + 1)
    end
    return most
  end

  it("does not burst after replies that queued in a frozen Redis: at most burst + 1 in 100 ms", function()
    local lim = pacer.limiter{rate = "20/s", redis = redis.url, key = "slow-" .. math.random(1e9), redis_timeout = 5}
    local grants, stop = {}, false
    local tasks = {}
    for i = 1, 8 do
      tasks[i] = pacer.spawn(function()
        while not stop do
          lim:acquire()
          grants[#grants + 1] = pacer.now()
        end
      end)
    end
    pacer.sleep(0.3)
    redis.freeze() -- the 8 acquires queue in Redis's socket; it times all of them at once
    pacer.sleep(0.6)
    redis.thaw()
    pacer.sleep(1.2)
    stop = true
    for _, t in ipairs(tasks) do assert.is_true((t:wait())) end
    table.sort(grants)
    -- 1.5 intervals hold 2 grants at most when paced, whatever the timer jitter
    local most = densest(grants, 0.075)
    assert.is_true(most <= 2, string.format("%d grants in 75 ms at 20/s (burst 1)", most))
    assert.is_true(#grants >= 20 and #grants <= 54, #grants .. " grants in 2.1 s at 20/s")
  end)

  it("fails over to its local share within redis_timeout of Redis freezing, and back after", function()
    local key = "frozen-" .. math.random(1e9)
    local lim = pacer.limiter{rate = "20/s", redis = redis.url, key = key, on_redis_down = "local",
      local_share = 0.5, redis_timeout = "300ms"}
    for _ = 1, 3 do lim:acquire() end
    local function tat()
      local p = io.popen(string.format("redis-cli -p %d GET pacer:gcra:%s:1", redis.port, key))
      local v = p:read("a")
      p:close()
      return v
    end
    redis.freeze()
    finally(function() redis.thaw() end)
    local t0 = pacer.now()
    for _ = 1, 6 do lim:acquire() end -- the first waits out the timeout, then 10/s locally
    local took = pacer.now() - t0
    assert.is_true(took >= 0.3 and took < 1.6, "6 acquires with Redis frozen took " .. took)
    redis.thaw()
    pacer.sleep(0.2) -- what queued in the frozen Redis has run now
    local before = tat()
    for _ = 1, 2 do lim:acquire() end -- still local: Redis is asked once per second
    assert.are.equal(before, tat())
    pacer.sleep(1)
    for _ = 1, 3 do lim:acquire() end
    assert.are_not.equal(before, tat())
  end)

  it("refuses bad options by name", function()
    assert.are.equal("pacer.limiter: a Redis limiter needs a 'key' naming the shared quota",
      message(function() pacer.limiter{rate = 1, redis = redis.url} end))
    assert.are.equal('pacer.limiter: \'redis\' must look like redis://HOST:PORT, got "http://x"',
      message(function() pacer.limiter{rate = 1, redis = "http://x", key = "k"} end))
    assert.are.equal("pacer.limiter: 'redis_timeout' must be a positive duration, got 0",
      message(function() pacer.limiter{rate = 1, redis = redis.url, key = "k", redis_timeout = 0} end))
    assert.are.equal('pacer.limiter: on_redis_down must be "wait" or "local", got "panic"',
      message(function() pacer.limiter{rate = 1, redis = redis.url, key = "k", on_redis_down = "panic"} end))
    assert.are.equal("pacer.limiter: invalid rate 'abc': expected N/s, N/min, N/h, N/day, N/<duration> or a number",
      message(function() pacer.limiter{rate = "abc", redis = redis.url, key = "k"} end))
  end)
end)

describe("pacer.queue{redis = ...}", function()
  local redis
  setup(function() redis = H.redis() end)
  teardown(function() redis.cleanup() end)

  it("orders by priority then push order, leases, acks, and keeps dead letters", function()
    local q = pacer.queue{redis = redis.url, name = "basic-" .. math.random(1e9), max_attempts = 2}
    for i = 1, 4 do q:push({n = i}, i == 3 and 1 or 5) end
    assert.are.equal(4, #q)
    local item, prio, job = q:pop()
    assert.are.same({3, 1, 1}, {math.tointeger(item.n), prio, job.attempts})
    local key = job.idempotency_key
    q:fail(job, "first")
    item, prio, job = q:pop()
    assert.are.equal(3, math.tointeger(item.n))
    assert.are.equal(1, prio) -- a failed item comes back at its own priority
    assert.are.equal(2, job.attempts)
    assert.are.equal(key, job.idempotency_key)
    q:fail(job, "second")
    assert.are.same({{item = {n = 3}, err = "second", attempts = 2}}, q:dead())
    q:close()
    local r = q:work(2, function() end)
    assert.are.same({done = 3, failed = 0}, r)
    assert.are.same({ready = 0, leased = 0, dead = 1, len = 0, closed = true}, q:stats())
  end)

  it("gives a killed worker's leased items to the others: nothing lost, each accepted once", function()
    local N = 120
    local name = "kill-" .. math.random(1e9)
    local mock = pacer.mock{rate = "1000/s"}
    local q = pacer.queue{redis = redis.url, name = name}
    for i = 1, N do q:push({to = string.format("+1555%07d", i), message = "m"}) end
    local worker = H.script(string.format([[
local q = pacer.queue{redis = %q, name = %q, lease = 1}
local api = pacer.client{base_url = %q, rate = "100/s"}
q:close()
q:work(4, function(item, attempt, job)
  local res = assert(api:post("/v2/sms/send", {json = item, idempotency_key = job.idempotency_key}))
  assert(res.status == 200, "HTTP " .. res.status)
end)
]], redis.url, name, mock.url))
    -- a worker (in the background: the mock lives in this process) is killed (-9) half a
    -- second in; the next one, once those leases expired, finishes the queue
    local _, killed = H.sh(string.format("timeout -s KILL 0.5 %s -q %s", H.PACER, worker), 10)
    assert.are.equal(137, killed)
    pacer.sleep(1.2) -- its leases (1 s) run out: the next worker takes those items back
    local _, code = H.sh(string.format("%s -q %s", H.PACER, worker), 40)
    assert.are.equal(0, code)
    local n, twice = H.accepted(mock.requests)
    mock:close()
    assert.are.equal(0, q:len())
    assert.are.equal(N, n)
    assert.are.equal(0, twice)
  end)

  it("rides out a Redis crash and restart mid-run: the job finishes, nothing lost, each accepted once", function()
    local saved = H.redis{aof = true} -- appendfsync always: what Redis acknowledged survives the crash
    finally(function() saved.cleanup() end)
    local N = 200
    local name = "crash-" .. math.random(1e9)
    local mock = pacer.mock{rate = "1000/s"}
    local q = pacer.queue{redis = saved.url, name = name}
    for i = 1, N do q:push({to = string.format("+1555%07d", i), message = "m"}) end
    local worker = H.script(string.format([[
local q = pacer.queue{redis = %q, name = %q, lease = 1}
local api = pacer.client{base_url = %q, rate = "100/s"}
q:close()
local r = q:work(4, function(item, attempt, job)
  local res = assert(api:post("/v2/sms/send", {json = item, idempotency_key = job.idempotency_key}))
  assert(res.status == 200, "HTTP " .. res.status)
end)
print("done " .. r.done)
]], saved.url, name, mock.url))
    local crash = pacer.spawn(function()
      pacer.sleep(0.6)
      saved.kill()
      pacer.sleep(0.7)
      saved.start()
    end)
    local out, code = H.sh(string.format("%s %s 2>&1", H.PACER, worker), 40)
    crash:wait()
    assert.are.equal(0, code, out)
    -- a lease whose reply died with Redis stays out until it expires (1 s): as after any
    -- crash, running the job again finishes it (at most twice more)
    for _ = 1, 2 do
      if q:len() == 0 then break end
      pacer.sleep(1.2)
      local _, again = H.sh(string.format("%s -q %s", H.PACER, worker), 40)
      assert.are.equal(0, again)
    end
    assert.matches("unreachable for queue '" .. name .. "'", out, 1, true)
    assert.matches("is back for queue '" .. name .. "'", out, 1, true)
    local n, twice = H.accepted(mock.requests)
    mock:close()
    assert.are.equal(0, q:len())
    q:close_db()
    assert.are.equal(N, n)
    assert.are.equal(0, twice)
  end)

  it("renews the lease of a job that runs longer: no second worker takes it", function()
    local q = pacer.queue{redis = redis.url, name = "renew-" .. math.random(1e9), lease = "1s", poll = "50ms"}
    for i = 1, 4 do q:push({n = i}) end
    local seen = {}
    pacer.spawn(function()
      pacer.sleep(4)
      q:close()
    end)
    local r = q:work(2, function(item)
      seen[item.n] = (seen[item.n] or 0) + 1
      pacer.sleep(item.n == 1 and 3 or 0.05) -- the other worker is idle long past the lease
    end)
    assert.are.same({1, 1, 1, 1}, seen)
    assert.are.same({done = 4, failed = 0}, r)
  end)

  it("refuses options that belong to the other queues", function()
    local ok, err = pcall(pacer.queue, {redis = redis.url, capacity = 3})
    assert.is_false(ok)
    assert.matches("pacer.queue: a Redis queue takes redis, name, max_attempts, poll, lease, redis_timeout and store_timeout", err, 1, true)
  end)
end)
