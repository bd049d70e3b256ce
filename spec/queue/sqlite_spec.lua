-- The durable queue (SQLite): on disk when push returns, leases, acks, dead letters, and
-- a job killed with kill -9 at random points that, restarted, delivers every item to
-- the API exactly once (its idempotency keys make the resends harmless).
local H = dofile("spec/support/helpers.lua")

local function tmpdb()
  local p = os.tmpname()
  os.remove(p)
  return p .. ".db"
end

local function rm_db(p) os.execute("rm -f " .. p .. " " .. p .. "-wal " .. p .. "-shm") end

describe("pacer.queue{durable = ...}", function()
  it("keeps what was pushed for the next process, in priority then push order", function()
    local db = tmpdb()
    local push = H.script(string.format([[
local q = pacer.queue{durable = %q}
for i = 1, 5 do q:push({n = i}, i == 4 and 1 or 5) end
]], db))
    local r = H.run_pacer({push})
    assert.are.equal(0, r.code, r.stderr)
    local q = pacer.queue{durable = db}
    local order = {}
    for _ = 1, 5 do
      local item = q:try_pop()
      order[#order + 1] = math.tointeger(item.n)
    end
    assert.are.same({4, 1, 2, 3, 5}, order)
    assert.is_nil(q:try_pop())
    os.remove(push)
    rm_db(db)
  end)

  it("leases: ack removes, fail hands back with the attempt count, then dead letters", function()
    local db = tmpdb()
    local q = pacer.queue{durable = db, max_attempts = 2}
    q:push("a")
    local item, _, job = q:pop()
    assert.are.equal("a", item)
    assert.are.equal(1, job.attempts)
    local key = job.idempotency_key
    assert.matches("^%x+$", key)
    assert.are.equal(1, q:stats().leased)
    q:fail(job, "first")
    _, _, job = q:pop()
    assert.are.equal(2, job.attempts)
    assert.are.equal(key, job.idempotency_key) -- the same key on every attempt
    q:fail(job, "second")
    assert.is_nil(q:try_pop())
    assert.are.same({{item = "a", err = "second", attempts = 2}}, q:dead())
    q:push("b")
    _, _, job = q:pop()
    q:ack(job)
    assert.are.same({ready = 0, leased = 0, dead = 1, len = 0, closed = false}, q:stats())
    rm_db(db)
  end)

  it("pop waits for a push and returns nil once closed", function()
    local db = tmpdb()
    local q = pacer.queue{durable = db}
    local t = pacer.spawn(function() return q:pop() end)
    pacer.sleep(0.05)
    q:push({x = 1})
    local ok, item = t:wait()
    assert.is_true(ok)
    assert.are.equal(1, math.tointeger(item.x))
    t = pacer.spawn(function() return q:pop() end)
    pacer.sleep(0.05)
    q:close()
    assert.are.same({true}, {t:wait()})
    rm_db(db)
  end)

  it("refuses what it cannot store, naming the problem", function()
    local db = tmpdb()
    local q = pacer.queue{durable = db}
    local ok, err = pcall(q.push, q, function() end)
    assert.is_false(ok)
    assert.matches("queue:push: a durable queue stores JSON: ", err)
    ok, err = pcall(pacer.queue, {durable = "/nonexistent/dir/x.db"})
    assert.is_false(ok)
    assert.matches("pacer.queue: sqlite: cannot open /nonexistent/dir/x.db", err)
    rm_db(db)
  end)

  -- A 1 MB tmpfs (we run as root) for a queue whose disk fills up: fill() takes every
  -- free byte, room() gives them back, cleanup() unmounts.
  local function small_disk()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    assert(os.execute(string.format("mount -t tmpfs -o size=1m tmpfs %s", dir)), "cannot mount a tmpfs at " .. dir)
    return {db = dir .. "/q.db",
      fill = function() os.execute(string.format("dd if=/dev/zero of=%s/fill bs=4k 2>/dev/null", dir)) end,
      room = function() os.remove(dir .. "/fill") end,
      cleanup = function() os.execute(string.format("umount -l %s && rmdir %s", dir, dir)) end} -- -l: even with the file open
  end

  it("rides out a full disk in q:work: retries until there is room, every item done once", function()
    local disk = small_disk()
    finally(disk.cleanup)
    local q = pacer.queue{durable = disk.db, store_timeout = "10s"}
    for i = 1, 20 do q:push({n = i}) end
    q:close()
    local seen = {}
    pacer.spawn(function()
      pacer.sleep(0.3)
      disk.fill()
      pacer.sleep(1)
      disk.room()
    end)
    local t0 = pacer.now()
    local r = q:work(2, function(item)
      seen[item.n] = (seen[item.n] or 0) + 1
      pacer.sleep(0.05)
    end)
    assert.are.same({done = 20, failed = 0}, r)
    for i = 1, 20 do assert.are.equal(1, seen[i], "item " .. i) end
    assert.are.same({ready = 0, leased = 0, dead = 0, len = 0, closed = true}, q:stats())
    assert.is_true(pacer.now() - t0 >= 1, "the disk was full for a second")
    q:close_db()
  end)

  it("stops q:work with the reason when the disk stays full past store_timeout: nothing lost", function()
    local disk = small_disk()
    finally(disk.cleanup)
    local q = pacer.queue{durable = disk.db, store_timeout = "1s"}
    for i = 1, 20 do q:push({n = i}) end
    local done = 0
    pacer.spawn(function()
      pacer.sleep(0.3)
      disk.fill()
    end)
    local t0 = pacer.now()
    local msg = H.message(function()
      q:work(3, function()
        pacer.sleep(0.05)
        done = done + 1
      end)
    end)
    local took = pacer.now() - t0
    assert.matches("^queue:work: stopped: sqlite: .*: database or disk is full %(after 1s of retries%)$", msg)
    assert.is_true(took >= 1.2 and took < 5, "stopped after " .. took .. " s")
    disk.room()
    q:close_db()
    local again = pacer.queue{durable = disk.db} -- what this process still leased is back
    assert.is_true(done < 20)
    assert.is_true(again:len() >= 20 - done and again:len() <= 20, again:len() .. " left after " .. done .. " done")
    assert.are.equal(0, again:stats().leased)
    again:close_db()
  end)

  it("renews the lease of a job that runs longer: no second worker takes it", function()
    local db = tmpdb()
    finally(function() rm_db(db) end)
    local q = pacer.queue{durable = db, lease = "1s", poll = "50ms"}
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
    q:close_db()
  end)

  it("survives kill -9 at random points: every item reaches the API exactly once", function()
    local N = 2000
    local db = tmpdb()
    local port = H.free_port()
    local pidfile = os.tmpname()
    os.execute(string.format("sh -c '%s mock --port %d --rate 2000/s >/dev/null 2>&1 & echo $! > %s'", H.PACER,
      port, pidfile))
    local api = "http://127.0.0.1:" .. port
    for _ = 1, 100 do
      if pacer.request{url = api .. "/v2/billing/usage", retry = false, timeout = 1} then break end
      pacer.sleep(0.05)
    end
    local fill = H.script(string.format([[
local q = pacer.queue{durable = %q}
for i = 1, %d do q:push({to = string.format("+1555%%07d", i), message = "m" .. i}) end
]], db, N))
    assert.are.equal(0, H.run_pacer({fill}).code)
    local work = H.script(string.format([[
local q = pacer.queue{durable = %q, max_attempts = 50}
local api = pacer.client{base_url = %q, rate = "400/s", concurrency = 8}
q:close() -- drain what is there, then end
q:work(8, function(item, attempt, job)
  local res = assert(api:post("/v2/sms/send", {json = item, idempotency_key = job.idempotency_key}))
  assert(res.status == 200, "HTTP " .. res.status)
end)
]], db, api))
    local finished = false
    for _ = 1, 30 do -- bounded: at most 30 kills
      local code = os.execute(string.format("timeout -s KILL %.2f %s -q %s >/dev/null 2>&1",
        0.15 + math.random() * 0.5, H.PACER, work))
      if code == true then finished = true break end
    end
    if not finished then assert.are.equal(0, H.run_pacer({"-q", work}, {timeout = 60}).code) end
    local rec = assert(pacer.request{url = api .. "/_mock/requests", retry = false}):json()
    os.execute("kill $(cat " .. pidfile .. ") 2>/dev/null")
    os.remove(pidfile) os.remove(fill) os.remove(work)
    local _, twice, accepted = H.accepted(rec)
    local missing = 0
    for i = 1, N do
      if not accepted[string.format("+1555%07d", i)] then missing = missing + 1 end
    end
    local q = pacer.queue{durable = db}
    local left = q:len()
    rm_db(db)
    if missing > 0 then
      local seen = {}
      for _, r in ipairs(rec) do
        if r.path == "/v2/sms/send" then
          local to = pacer.json.decode(r.body).to
          seen[to] = (seen[to] or "") .. r.status .. (r.replayed and "R" or "") .. " "
        end
      end
      for i = 1, N do
        local to = string.format("+1555%07d", i)
        if not accepted[to] then print("missing", to, seen[to]) break end
      end
      print("records", #rec)
    end
    assert.are.equal(0, missing, "items never accepted")
    assert.are.equal(0, twice, "items accepted twice")
    assert.are.equal(0, left)
  end)
end)
