-- spec/host/tasks_spec.lua: tasks, sleep, now, each, and user coroutines inside tasks.
-- Runs inside the pacer host: ./build/pacer tools/busted.lua -o TAP spec/host/tasks_spec.lua
-- (the test bodies run in the main task, so they may wait).
--
-- Note: a task that fails while nobody waits for it is reported on stderr and makes the
-- run exit 1, so every failing task below is waited on before it gets to run.

local function elapsed_of(fn)
  local t0 = pacer.now()
  fn()
  return pacer.now() - t0
end

local function errmsg(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

describe("pacer.spawn and task:wait", function()
  it("runs the function with its arguments and returns true plus every result", function()
    local t = pacer.spawn(function(a, b) return a + b, "x", nil, a * b end, 3, 4)
    local r = table.pack(t:wait())
    assert.are.equal(5, r.n)
    assert.is_true(r[1])
    assert.are.equal(7, r[2])
    assert.are.equal("x", r[3])
    assert.is_nil(r[4])
    assert.are.equal(12, r[5])
  end)

  it("does not run the task until the spawner yields", function()
    local ran = false
    local t = pacer.spawn(function() ran = true end)
    assert.is_false(ran)
    assert.is_true((t:wait()))
    assert.is_true(ran)
  end)

  it("t:wait() on an already finished task returns the same results again", function()
    local t = pacer.spawn(function() return "a", "b" end)
    local ok, a, b = t:wait()
    assert.are.same({true, "a", "b"}, {ok, a, b})
    ok, a, b = t:wait()
    assert.are.same({true, "a", "b"}, {ok, a, b})
  end)

  it("t:wait() gives false and the message for a task that raised", function()
    local t = pacer.spawn(function() error("boom 42") end)
    local ok, err = t:wait()
    assert.is_false(ok)
    assert.are.equal("string", type(err))
    assert.truthy(err:find("tasks_spec.lua:%d+: boom 42$"), err)
    assert.are.equal("failed", t:status())
    assert.truthy(t:traceback():find("stack traceback", 1, true))
    -- asking again gives the same answer
    local ok2, err2 = t:wait()
    assert.is_false(ok2)
    assert.are.equal(err, err2)
  end)

  it("t:wait() passes a non-string error value through unchanged", function()
    local e = {code = 7}
    local t = pacer.spawn(function() error(e) end)
    local ok, err = t:wait()
    assert.is_false(ok)
    assert.are.equal(e, err)
  end)

  it("t:status() is running, then done or failed", function()
    local good = pacer.spawn(function() pacer.sleep(0.02) return 1 end)
    local bad = pacer.spawn(function() pacer.sleep(0.02) error("nope") end)
    assert.are.equal("running", good:status())
    assert.are.equal("running", bad:status())
    pacer.sleep(0.005)
    assert.are.equal("running", good:status())
    assert.is_false((bad:wait()))
    assert.is_true((good:wait()))
    assert.are.equal("done", good:status())
    assert.are.equal("failed", bad:status())
  end)

  it("a task cannot wait for itself", function()
    local t = pacer.spawn(function()
      return pcall(function() return pacer.current():wait() end)
    end)
    local ok, pok, perr = t:wait()
    assert.is_true(ok)
    assert.is_false(pok)
    assert.truthy(perr:find("tasks_spec.lua:%d+: task:wait: a task cannot wait for itself$"), perr)
  end)

  it("a task can wait for another task", function()
    local inner = pacer.spawn(function() pacer.sleep(0.02) return "inner" end)
    local outer = pacer.spawn(function()
      local ok, v = inner:wait()
      return ok, v .. "+outer"
    end)
    local ok, iok, v = outer:wait()
    assert.is_true(ok)
    assert.is_true(iok)
    assert.are.equal("inner+outer", v)
  end)

  it("several tasks can wait for the same task", function()
    local target = pacer.spawn(function() pacer.sleep(0.03) return 99 end)
    local waiters = {}
    for i = 1, 5 do
      waiters[i] = pacer.spawn(function() local ok, v = target:wait() return ok and v + i end)
    end
    for i = 1, 5 do
      local ok, v = waiters[i]:wait()
      assert.is_true(ok)
      assert.are.equal(99 + i, v)
    end
  end)

  it("a failing task does not stop the others", function()
    local finished = {}
    local oks = {}
    for i = 1, 4 do
      oks[i] = pacer.spawn(function() pacer.sleep(0.03) finished[#finished + 1] = i return i end)
    end
    local bad = pacer.spawn(function() pacer.sleep(0.01) error("only me") end)
    local ok, err = bad:wait() -- waited on before it fails: not reported on stderr
    assert.is_false(ok)
    assert.truthy(err:find("only me", 1, true))
    for i = 1, 4 do
      local tok, v = oks[i]:wait()
      assert.is_true(tok)
      assert.are.equal(i, v)
    end
    assert.are.equal(4, #finished)
  end)

  it("runs 5000 tasks that each sleep 10 ms within a few seconds", function()
    local N = 5000
    local done = 0
    local tasks = {}
    local el = elapsed_of(function()
      for i = 1, N do
        tasks[i] = pacer.spawn(function() pacer.sleep(0.01) done = done + 1 return i end)
      end
      for i = 1, N do
        local ok, v = tasks[i]:wait()
        assert(ok and v == i, "task " .. i .. " gave " .. tostring(v))
      end
    end)
    assert.are.equal(N, done)
    assert.is_true(el >= 0.01, "took " .. el)
    assert.is_true(el < 3, "5000 concurrent 10 ms sleeps took " .. el .. " s")
  end)

  it("raises on a non-function", function()
    assert.has_error(function() pacer.spawn(42) end)
  end)
end)

describe("pacer.sleep", function()
  it("sleeps at least a number of seconds", function()
    local el = elapsed_of(function() pacer.sleep(0.05) end)
    assert.is_true(el >= 0.05, "slept " .. el)
    assert.is_true(el < 0.5, "slept " .. el)
  end)

  for _, case in ipairs{{"50ms", 0.05}, {"0.06s", 0.06}, {"40000us", 0.04}, {" 30 ms ", 0.03}} do
    it("sleeps at least the string duration " .. string.format("%q", case[1]), function()
      local el = elapsed_of(function() pacer.sleep(case[1]) end)
      assert.is_true(el >= case[2], "slept " .. el)
      assert.is_true(el < case[2] + 0.5, "slept " .. el)
    end)
  end

  it("lets other tasks run while sleeping", function()
    local ticks = 0
    local t = pacer.spawn(function()
      for _ = 1, 5 do ticks = ticks + 1 pacer.sleep(0.005) end
    end)
    pacer.sleep(0.2)
    assert.are.equal(5, ticks)
    assert.are.equal("done", t:status())
  end)

  it("sleep(0) yields to the other ready tasks", function()
    local ran = false
    pacer.spawn(function() ran = true end)
    pacer.sleep(0)
    assert.is_true(ran)
  end)

  it("wakes concurrent sleepers in deadline order", function()
    local order = {}
    local ts = {}
    for _, d in ipairs{0.06, 0.02, 0.04} do
      ts[#ts + 1] = pacer.spawn(function() pacer.sleep(d) order[#order + 1] = d end)
    end
    for _, t in ipairs(ts) do t:wait() end
    assert.are.same({0.02, 0.04, 0.06}, order)
  end)

  it("rejects a string that is not a duration, naming it", function()
    assert.are.equal(
      "pacer.sleep: invalid duration 'abc': expected a duration like 250ms, 30s, 5m, 1h or a number of seconds",
      errmsg(pacer.sleep, "abc"))
  end)

  it("rejects an unknown unit", function()
    assert.are.equal("pacer.sleep: invalid duration '5 fortnights': unknown unit (expected ms, s, m, h or d)",
      errmsg(pacer.sleep, "5 fortnights"))
  end)

  it("rejects a negative string duration", function()
    assert.are.equal("pacer.sleep: invalid duration '-5ms': a duration must not be negative",
      errmsg(pacer.sleep, "-5ms"))
  end)

  it("rejects a negative or NaN number", function()
    assert.are.equal("pacer.sleep: invalid duration -1: must be between 0 and 1e9 seconds", errmsg(pacer.sleep, -1))
    assert.are.equal("pacer.sleep: invalid duration " .. tostring(0 / 0) .. ": must be between 0 and 1e9 seconds",
      errmsg(pacer.sleep, 0 / 0))
  end)

  it("rejects a value of the wrong type", function()
    assert.are.equal('pacer.sleep: expected a duration (seconds or a string like "250ms"), got table',
      errmsg(pacer.sleep, {}))
    assert.are.equal('pacer.sleep: expected a duration (seconds or a string like "250ms"), got no value',
      errmsg(pacer.sleep))
  end)
end)

describe("pacer.now", function()
  it("is a float that never goes backwards", function()
    local prev = pacer.now()
    assert.are.equal("float", math.type(prev))
    for _ = 1, 10000 do
      local n = pacer.now()
      assert(n >= prev, "pacer.now went backwards: " .. prev .. " then " .. n)
      prev = n
    end
  end)

  it("advances by the time slept", function()
    local a = pacer.now()
    pacer.sleep(0.03)
    local b = pacer.now()
    assert.is_true(b - a >= 0.03)
    assert.is_true(b - a < 0.5)
  end)
end)

describe("pacer.each", function()
  it("returns {ok=, value=} per item in list order, whatever the finishing order", function()
    local list = {50, 10, 40, 0, 20, 30}
    local seen = {}
    local results = pacer.each(list, function(ms, i)
      pacer.sleep(ms / 1000)
      seen[#seen + 1] = i
      return ms * 2 + i
    end, {concurrency = 6})
    assert.are.equal(#list, #results)
    for i, ms in ipairs(list) do
      assert.are.same({ok = true, value = ms * 2 + i}, results[i])
    end
    -- they really finished out of order (shortest sleep first)
    assert.are.same({4, 2, 5, 6, 3, 1}, seen)
  end)

  it("never runs more than `concurrency` at once, and reaches it", function()
    local running, max_running, calls = 0, 0, 0
    local list = {}
    for i = 1, 20 do list[i] = i end
    local el = elapsed_of(function()
      local results = pacer.each(list, function(item)
        calls = calls + 1
        running = running + 1
        if running > max_running then max_running = running end
        pacer.sleep(0.02)
        running = running - 1
        return item
      end, {concurrency = 3})
      for i = 1, 20 do assert.are.same({ok = true, value = i}, results[i]) end
    end)
    assert.are.equal(20, calls)
    assert.are.equal(3, max_running)
    assert.are.equal(0, running)
    -- 20 items, 3 at a time, 20 ms each: at least 7 rounds
    assert.is_true(el >= 0.14, "took " .. el)
  end)

  it("concurrency = 1 runs the items one after another", function()
    local running, max_running = 0, 0
    local order = {}
    pacer.each({"a", "b", "c"}, function(x)
      running = running + 1
      max_running = math.max(max_running, running)
      pacer.sleep(0.005)
      order[#order + 1] = x
      running = running - 1
    end, {concurrency = 1})
    assert.are.equal(1, max_running)
    assert.are.same({"a", "b", "c"}, order)
  end)

  it("an error in one item does not stop the others", function()
    local ran = {}
    local results = pacer.each({1, 2, 3, 4, 5}, function(x)
      pacer.sleep(0.005)
      ran[#ran + 1] = x
      if x == 2 then error("item two failed") end
      if x == 4 then error({why = "table error"}) end
      return x * 10
    end, {concurrency = 2, on_error = "return"})
    assert.are.equal(5, #ran)
    assert.are.same({ok = true, value = 10}, results[1])
    assert.is_false(results[2].ok)
    assert.is_nil(results[2].value)
    assert.truthy(results[2].err:find("tasks_spec.lua:%d+: item two failed$"), results[2].err)
    assert.are.same({ok = true, value = 30}, results[3])
    assert.is_false(results[4].ok)
    assert.are.same({why = "table error"}, results[4].err)
    assert.are.same({ok = true, value = 50}, results[5])
  end)

  it("returns an empty table for an empty list without calling fn", function()
    local called = false
    local results = pacer.each({}, function() called = true end, {concurrency = 4})
    assert.are.same({}, results)
    assert.is_false(called)
  end)

  it("rejects concurrency = 0, naming the option", function()
    local err = errmsg(pacer.each, {1}, function() end, {concurrency = 0})
    assert.truthy(err:find("pacer.each: 'concurrency' must be >= 1, got 0", 1, true), err)
  end)

  it("rejects a non-integer concurrency, naming the option", function()
    local err = errmsg(pacer.each, {1}, function() end, {concurrency = 1.5})
    assert.truthy(err:find("pacer.each: option 'concurrency' must be an integer, got number", 1, true), err)
    err = errmsg(pacer.each, {1}, function() end, {concurrency = "4"})
    assert.truthy(err:find("pacer.each: option 'concurrency' must be an integer, got string", 1, true), err)
  end)

  it("rejects an unknown option and wrong argument types", function()
    local err = errmsg(pacer.each, {1}, function() end, {bogus = 1})
    assert.truthy(err:find("pacer.each: unknown option 'bogus' (known: concurrency, label, on_error, progress)", 1, true), err)
    err = errmsg(pacer.each, "nope", function() end)
    assert.truthy(err:find("pacer.each: expected a list, got string", 1, true), err)
    err = errmsg(pacer.each, {1}, 5)
    assert.truthy(err:find("pacer.each: expected a function, got number", 1, true), err)
  end)
end)

describe("user coroutines inside tasks", function()
  it("pacer.sleep inside coroutine.wrap reaches the scheduler and other tasks run", function()
    local ticks = 0
    local ticker = pacer.spawn(function()
      for _ = 1, 4 do ticks = ticks + 1 pacer.sleep(0.005) end
    end)
    local f = coroutine.wrap(function(a)
      pacer.sleep(0.05)
      return a + 1
    end)
    local el = elapsed_of(function() assert.are.equal(8, f(7)) end)
    assert.is_true(el >= 0.05, "slept " .. el)
    assert.are.equal(4, ticks)
    assert.are.equal("done", ticker:status())
  end)

  it("pacer.sleep inside coroutine.resume: the user's resume sees only the user's yields", function()
    local co = coroutine.create(function(x)
      pacer.sleep(0.02)
      local y = coroutine.yield(x * 2)
      pacer.sleep("20ms")
      return y + 1
    end)
    local t0 = pacer.now()
    local ok, v = coroutine.resume(co, 5)
    assert.is_true(ok)
    assert.are.equal(10, v)
    assert.are.equal("suspended", coroutine.status(co))
    ok, v = coroutine.resume(co, 41)
    assert.is_true(ok)
    assert.are.equal(42, v)
    assert.are.equal("dead", coroutine.status(co))
    assert.is_true(pacer.now() - t0 >= 0.04)
  end)

  it("a generator made with coroutine.wrap still works, with waits between its yields", function()
    local gen = coroutine.wrap(function()
      for i = 1, 3 do
        pacer.sleep(0.005)
        coroutine.yield(i)
      end
      return "end"
    end)
    assert.are.same({1, 2, 3, "end"}, {gen(), gen(), gen(), gen()})
  end)

  it("a plain generator without waits works as in Lua", function()
    local function range(n)
      return coroutine.wrap(function() for i = 1, n do coroutine.yield(i) end end)
    end
    local sum = 0
    for i in range(100) do sum = sum + i end
    assert.are.equal(5050, sum)
  end)

  it("task:wait and lim:acquire inside nested user coroutines", function()
    local t = pacer.spawn(function() pacer.sleep(0.01) return "from task" end)
    local lim = pacer.limiter{rate = "50/s"}
    local outer = coroutine.wrap(function()
      local inner = coroutine.wrap(function()
        local _, v = t:wait()
        coroutine.yield(v)
        lim:acquire()
        lim:acquire() -- the second one waits for the next 20 ms slot
        return "acquired"
      end)
      coroutine.yield(inner())
      return inner()
    end)
    local el = elapsed_of(function()
      assert.are.equal("from task", outer())
      assert.are.equal("acquired", outer())
    end)
    assert.is_true(el >= 0.02, "took " .. el)
  end)

  it("an error in a wrapped coroutine after a wait propagates to the caller", function()
    local f = coroutine.wrap(function()
      pacer.sleep(0.005)
      error("inside wrap")
    end)
    local ok, err = pcall(f)
    assert.is_false(ok)
    assert.truthy(err:find("tasks_spec.lua:%d+: inside wrap$"), err)
  end)

  it("coroutine.resume reports an error after a wait as false, err", function()
    local co = coroutine.create(function()
      pacer.sleep(0.005)
      error("inside resume")
    end)
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.truthy(err:find("inside resume", 1, true), err)
    assert.are.equal("dead", coroutine.status(co))
  end)

  it("a bare coroutine.yield() in a task lets other ready tasks run", function()
    local log = {}
    local a = pacer.spawn(function()
      for i = 1, 3 do log[#log + 1] = "a" .. i coroutine.yield() end
    end)
    local b = pacer.spawn(function()
      for i = 1, 3 do log[#log + 1] = "b" .. i coroutine.yield() end
    end)
    assert.is_true((a:wait()))
    assert.is_true((b:wait()))
    assert.are.same({"a1", "b1", "a2", "b2", "a3", "b3"}, log)
  end)

  it("a bare coroutine.yield() in the main task runs a spawned task", function()
    local ran = false
    pacer.spawn(function() ran = true end)
    coroutine.yield()
    assert.is_true(ran)
  end)
end)
