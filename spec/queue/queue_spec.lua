-- spec/queue/queue_spec.lua: pacer.queue: stable priority order, pop waiting (FIFO among
-- poppers), close, capacity with "wait" backpressure or "error", workers with retries
-- and dead letters, stats and option checking.
-- Runs inside the pacer host: ./build/pacer tools/busted.lua -o TAP spec/queue/queue_spec.lua

local message = dofile("spec/support/helpers.lua").message

local function wait_all(tasks)
  local out = {}
  for i, t in ipairs(tasks) do
    local r = table.pack(t:wait())
    assert(r[1], "task " .. i .. " failed: " .. tostring(r[2]))
    out[i] = r
  end
  return out
end

-- Pops everything that is there now (never waits).
local function drain(q)
  local out = {}
  for _ = 1, 100000 do
    local item, prio = q:try_pop()
    if item == nil then break end
    out[#out + 1] = {item, prio}
  end
  return out
end

-- Yields until cond() holds, at most `limit` seconds; returns whether it held.
local function eventually(cond, limit)
  local deadline = pacer.now() + (limit or 2)
  while pacer.now() < deadline do
    if cond() then return true end
    pacer.sleep(0.005)
  end
  return cond()
end

describe("pacer.queue order", function()
  it("equal priorities leave in push order (1000 items)", function()
    local q = pacer.queue{}
    for i = 1, 1000 do q:push(i) end
    assert.are.equal(1000, #q)
    local out = drain(q)
    assert.are.equal(1000, #out)
    for i = 1, 1000 do
      assert.are.equal(i, out[i][1])
      assert.are.equal(5, out[i][2]) -- the default priority
    end
  end)

  it("lower priority numbers leave first", function()
    local q = pacer.queue{}
    q:push("low", 9)
    q:push("default")
    q:push("high", 1)
    q:push("negative", -3)
    q:push("fraction", 1.5)
    q:push("zero", 0)
    local out = drain(q)
    assert.are.same({{"negative", -3}, {"zero", 0}, {"high", 1}, {"fraction", 1.5}, {"default", 5},
      {"low", 9}}, out)
  end)

  it("is stable across mixed priorities: 1000 items by (priority, push order)", function()
    local q = pacer.queue{}
    local expect = {}
    for i = 1, 1000 do
      local p = (i * 7919) % 10 -- deterministic, scattered
      q:push({i = i, p = p}, p)
      expect[i] = {i = i, p = p}
    end
    table.sort(expect, function(a, b) return a.p < b.p or (a.p == b.p and a.i < b.i) end)
    local out = drain(q)
    assert.are.equal(1000, #out)
    for k = 1, 1000 do
      assert.are.equal(expect[k].i, out[k][1].i, "position " .. k)
      assert.are.equal(expect[k].p, out[k][2])
    end
  end)

  it("keeps order when pushes and pops interleave", function()
    local q = pacer.queue{}
    local got = {}
    for round = 1, 50 do
      q:push("b" .. round, 2)
      q:push("a" .. round, 1)
      got[#got + 1] = q:pop() -- always the priority-1 item just pushed
    end
    for round = 1, 50 do assert.are.equal("a" .. round, got[round]) end
    local out = drain(q)
    for round = 1, 50 do assert.are.equal("b" .. round, out[round][1]) end
  end)

  it("keeps items that are false, tables and strings", function()
    local q = pacer.queue{}
    local t = {}
    q:push(false)
    q:push(t)
    q:push("s")
    assert.is_false((q:pop()))
    assert.are.equal(t, (q:pop()))
    assert.are.equal("s", (q:pop()))
  end)

  it("try_pop returns nil on an empty queue without waiting", function()
    local q = pacer.queue{}
    local t0 = pacer.now()
    assert.are.equal(0, select("#", q:try_pop()))
    assert.is_true(pacer.now() - t0 < 0.05)
    q:push("x", 2)
    assert.are.same({"x", 2, n = 2}, table.pack(q:try_pop()))
  end)
end)

describe("pacer.queue pop", function()
  it("suspends while empty and resumes on push with the item and its priority", function()
    local q = pacer.queue{}
    local t = pacer.spawn(function() return q:pop() end)
    pacer.sleep(0.05)
    assert.are.equal("running", t:status()) -- not finished: still waiting
    assert.are.equal(1, q:stats().waiting_pop)
    q:push("x", 3)
    local r = table.pack(t:wait())
    assert.are.same({true, "x", 3, n = 3}, r)
    assert.are.equal(0, q:stats().waiting_pop)
    assert.are.equal(0, #q)
  end)

  it("hands items to waiting poppers first come, first served", function()
    local q = pacer.queue{}
    local order = {}
    local tasks = {}
    for i = 1, 5 do
      tasks[i] = pacer.spawn(function()
        local item = q:pop()
        order[#order + 1] = i
        return item
      end)
      pacer.sleep(0) -- each one queues before the next starts
    end
    assert.are.equal(5, q:stats().waiting_pop)
    for _, item in ipairs{"a", "b", "c", "d", "e"} do q:push(item) end
    local res = wait_all(tasks)
    assert.are.same({"a", "b", "c", "d", "e"}, {res[1][2], res[2][2], res[3][2], res[4][2], res[5][2]})
    assert.are.same({1, 2, 3, 4, 5}, order)
  end)

  it("a popper waits in the current task: the time passes", function()
    local q = pacer.queue{}
    pacer.spawn(function() pacer.sleep(0.1) q:push("late") end)
    local t0 = pacer.now()
    assert.are.equal("late", (q:pop()))
    local el = pacer.now() - t0
    assert.is_true(el >= 0.09 and el < 0.6, "pop waited " .. el)
  end)
end)

describe("pacer.queue close", function()
  it("wakes every waiting popper with nil", function()
    local q = pacer.queue{}
    local tasks = {}
    for i = 1, 3 do tasks[i] = pacer.spawn(function() return q:pop() end) end
    pacer.sleep(0.02)
    assert.are.equal(3, q:stats().waiting_pop)
    q:close()
    local res = wait_all(tasks)
    for i = 1, 3 do
      assert.is_true(res[i][1])
      assert.is_nil(res[i][2])
    end
    assert.is_true(q:closed())
  end)

  it("items pushed before close can still be popped, then pop gives nil at once", function()
    local q = pacer.queue{}
    q:push(1)
    q:push(2)
    q:close()
    assert.are.equal(1, (q:pop()))
    assert.are.equal(2, (q:pop()))
    local t0 = pacer.now()
    assert.is_nil(q:pop())
    assert.is_true(pacer.now() - t0 < 0.05)
    q:close() -- idempotent
    assert.is_true(q:closed())
  end)

  it("push after close raises", function()
    local q = pacer.queue{}
    assert.is_false(q:closed())
    q:close()
    assert.are.equal("queue:push: the queue is closed", message(function() q:push("x") end))
    assert.are.equal(0, #q)
  end)
end)

describe("pacer.queue capacity", function()
  it("full = \"wait\" (the default) blocks a producer until a consumer pops", function()
    local q = pacer.queue{capacity = 2}
    local pushed = 0
    local producer = pacer.spawn(function()
      for i = 1, 5 do
        q:push(i)
        pushed = pushed + 1
      end
    end)
    pacer.sleep(0.05)
    assert.are.equal(2, pushed)
    assert.are.equal(2, #q)
    assert.are.equal(1, q:stats().waiting_push)
    assert.are.equal(1, (q:pop()))
    assert.is_true(eventually(function() return pushed == 3 end))
    pacer.sleep(0.05)
    assert.are.equal(3, pushed) -- one pop made room for exactly one push
    assert.are.equal(2, #q)
    local got = {}
    for _ = 1, 4 do got[#got + 1] = q:pop() end
    wait_all{producer}
    assert.are.same({2, 3, 4, 5}, got)
    assert.are.equal(5, pushed)
    assert.are.equal(2, q:stats().max_len)
  end)

  it("close wakes a blocked producer with an error", function()
    local q = pacer.queue{capacity = 1}
    q:push("first")
    local t = pacer.spawn(function() q:push("second") end)
    pacer.sleep(0.02)
    assert.are.equal(1, q:stats().waiting_push)
    q:close()
    local ok, err = t:wait()
    assert.is_false(ok)
    assert.are.equal("queue:push: the queue is closed", (tostring(err):gsub("^[^\n]-:%d+: ", "")))
    assert.are.equal("first", (q:pop()))
    assert.is_nil(q:pop())
  end)

  it("full = \"error\" answers nil, \"full\" instead of waiting", function()
    local q = pacer.queue{capacity = 2, full = "error"}
    assert.is_true(q:push("a"))
    assert.is_true(q:push("b"))
    local t0 = pacer.now()
    assert.are.same({nil, "full", n = 2}, table.pack(q:push("c")))
    assert.is_true(pacer.now() - t0 < 0.05)
    assert.are.equal(2, #q)
    assert.are.equal("a", (q:pop()))
    assert.is_true(q:push("c"))
    assert.are.same({{"b", 5}, {"c", 5}}, drain(q))
  end)

  it("a full queue still hands an item straight to a waiting popper", function()
    local q = pacer.queue{capacity = 1, full = "error"}
    local t = pacer.spawn(function() return q:pop() end)
    pacer.sleep(0.01)
    assert.is_true(q:push("direct"))
    assert.are.same({true, "direct", 5, n = 3}, table.pack(t:wait()))
  end)
end)

describe("pacer.queue work", function()
  it("runs n workers at most at once and processes every item once", function()
    local q = pacer.queue{}
    for i = 1, 20 do q:push(i) end
    q:close()
    local running, max_running, seen = 0, 0, {}
    local r = q:work(4, function(item, attempt)
      assert(attempt == 1)
      running = running + 1
      if running > max_running then max_running = running end
      pacer.sleep(0.01)
      seen[item] = (seen[item] or 0) + 1
      running = running - 1
    end)
    assert.are.same({done = 20, failed = 0}, r)
    assert.are.equal(4, max_running)
    for i = 1, 20 do assert.are.equal(1, seen[i], "item " .. i) end
    assert.are.same({}, q:dead())
  end)

  it("workers wait for items and return once the queue is closed and drained", function()
    local q = pacer.queue{}
    local done = {}
    local w = pacer.spawn(function() return q:work(2, function(item) done[#done + 1] = item end) end)
    for i = 1, 5 do
      q:push(i)
      pacer.sleep(0.01)
    end
    assert.are.equal("running", w:status()) -- the workers are still waiting for items
    q:close()
    local ok, r = w:wait()
    assert.is_true(ok)
    assert.are.same({done = 5, failed = 0}, r)
    assert.are.same({1, 2, 3, 4, 5}, done)
  end)

  it("retries up to max_attempts, then keeps the item and its error as a dead letter", function()
    local q = pacer.queue{max_attempts = 3}
    local attempts = {}
    for _, item in ipairs{"good", "flaky", "bad"} do q:push(item) end
    q:close()
    local r = q:work(1, function(item, attempt)
      attempts[item] = attempts[item] or {}
      table.insert(attempts[item], attempt)
      if item == "bad" then error("always fails", 0) end
      if item == "flaky" and attempt < 3 then error("not yet", 0) end
    end, {on_error = "return"})
    assert.are.same({done = 2, failed = 1}, r)
    assert.are.same({good = {1}, flaky = {1, 2, 3}, bad = {1, 2, 3}}, attempts)
    assert.are.same({{item = "bad", err = "always fails", attempts = 3}}, q:dead())
  end)

  it("max_attempts = 1 does not retry; a table error is kept as it is", function()
    local q = pacer.queue{max_attempts = 1}
    local e = {code = 42}
    q:push("x")
    q:close()
    local calls = 0
    local r = q:work(1, function() calls = calls + 1 error(e) end, {on_error = "return"})
    assert.are.same({done = 0, failed = 1}, r)
    assert.are.equal(1, calls)
    local dead = q:dead()
    assert.are.equal(1, #dead)
    assert.are.equal(e, dead[1].err)
    assert.are.equal(1, dead[1].attempts)
  end)

  it("dead() returns a copy", function()
    local q = pacer.queue{max_attempts = 1}
    q:push("x")
    q:close()
    q:work(1, function() error("no", 0) end, {on_error = "return"})
    local d = q:dead()
    d[1] = nil
    assert.are.equal(1, #q:dead())
  end)

  it("waits retry_delay between attempts", function()
    local q = pacer.queue{max_attempts = 3, retry_delay = "50ms"}
    q:push("x")
    q:close()
    local at = {}
    local t0 = pacer.now()
    local r = q:work(1, function(_, attempt)
      at[attempt] = pacer.now() - t0
      error("fail", 0)
    end, {on_error = "return"})
    local el = pacer.now() - t0
    assert.are.same({done = 0, failed = 1}, r)
    assert.is_true(at[2] - at[1] >= 0.045 and at[3] - at[2] >= 0.045,
      string.format("attempts at %.3f %.3f %.3f", at[1], at[2], at[3]))
    assert.is_true(el >= 0.095 and el < 0.6, "took " .. el) -- no delay after the last attempt
  end)

  it("retries at once without a retry_delay", function()
    local q = pacer.queue{max_attempts = 5}
    q:push("x")
    q:close()
    local t0 = pacer.now()
    q:work(1, function() error("fail", 0) end, {on_error = "return"})
    assert.is_true(pacer.now() - t0 < 0.05)
  end)

  it("refuses bad arguments", function()
    local q = pacer.queue{}
    assert.are.equal("queue:work: n must be an integer >= 1, got 0",
      message(function() q:work(0, print) end))
    assert.are.equal("queue:work: n must be an integer >= 1, got 1.5",
      message(function() q:work(1.5, print) end))
    assert.are.equal("queue:work: expected a function, got number",
      message(function() q:work(1, 5) end))
  end)
end)

describe("pacer.queue stats", function()
  it("reports len, pushed, popped, max_len, waiters, capacity and closed", function()
    local q = pacer.queue{capacity = 10}
    assert.are.same({len = 0, pushed = 0, popped = 0, max_len = 0, waiting_pop = 0, waiting_push = 0,
      capacity = 10, closed = false}, q:stats())
    for i = 1, 4 do q:push(i) end
    q:pop()
    assert.are.same({len = 3, pushed = 4, popped = 1, max_len = 4, waiting_pop = 0, waiting_push = 0,
      capacity = 10, closed = false}, q:stats())
    drain(q)
    local t = pacer.spawn(function() return q:pop() end)
    pacer.sleep(0.01)
    assert.are.equal(1, q:stats().waiting_pop)
    q:push("handed")
    wait_all{t}
    q:close()
    assert.are.same({len = 0, pushed = 5, popped = 5, max_len = 4, waiting_pop = 0, waiting_push = 0,
      capacity = 10, closed = true}, q:stats())
    assert.are.equal(0, q:len())
  end)

  it("capacity is 0 when unbounded; len() and #q agree", function()
    local q = pacer.queue{}
    q:push(1)
    q:push(2)
    assert.are.equal(0, q:stats().capacity)
    assert.are.equal(2, q:len())
    assert.are.equal(2, #q)
  end)
end)

describe("pacer.queue errors", function()
  it("refuses bad options with exact messages", function()
    assert.are.equal("pacer.queue: 'capacity' must be an integer >= 1",
      message(function() return pacer.queue{capacity = 0} end))
    assert.are.equal("pacer.queue: option 'capacity' must be an integer, got number",
      message(function() return pacer.queue{capacity = 1.5} end))
    assert.are.equal("pacer.queue: 'full' must be \"wait\" or \"error\", got \"maybe\"",
      message(function() return pacer.queue{full = "maybe"} end))
    assert.are.equal("pacer.queue: option 'full' must be a string, got number",
      message(function() return pacer.queue{full = 1} end))
    assert.are.equal("pacer.queue: unknown option 'capacty' (known: capacity, durable, full, lease, max_attempts, name, "
      .. "poll, redis, redis_timeout, retry_delay, store_timeout)",
      message(function() return pacer.queue{capacty = 3} end))
    assert.are.equal("pacer.queue: a durable queue takes durable, name, max_attempts, poll, lease and store_timeout",
      message(function() return pacer.queue{durable = "x.db", capacity = 3} end))
    assert.are.equal("pacer.queue: 'max_attempts' must be >= 1, got 0",
      message(function() return pacer.queue{max_attempts = 0} end))
    assert.are.equal("pacer.queue: expected a table of options, got string",
      message(function() return pacer.queue("big") end))
  end)

  it("refuses to push nil or a non-number priority", function()
    local q = pacer.queue{}
    assert.are.equal("queue:push: cannot push nil", message(function() q:push(nil) end))
    assert.are.equal("bad argument #2 to 'push' (number expected, got string)",
      message(function() q:push("x", "high") end))
    assert.are.equal(0, #q)
    assert.are.equal(0, q:stats().pushed)
  end)
end)

describe("pacer.queue regressions", function()
  it("a work item that raises nil is a failure, not done", function()
    local q = pacer.queue{max_attempts = 2}
    q:push("a")
    q:close()
    local r = q:work(1, function() error() end, {on_error = "return"})
    assert.are.same({done = 0, failed = 1}, r)
    assert.are.equal(1, #q:dead())
  end)

  it("names the option of a bad retry_delay", function()
    assert.are.equal("pacer.queue: option 'retry_delay': invalid duration -1: must be between 0 and 1e9 seconds",
      message(function() pacer.queue{retry_delay = -1} end))
  end)
end)
