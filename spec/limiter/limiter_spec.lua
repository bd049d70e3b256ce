-- spec/limiter/limiter_spec.lua: pacer.limiter (GCRA rules, FIFO waiters), timed with pacer.now.
-- Runs inside the pacer host: ./build/pacer tools/busted.lua -o TAP spec/limiter/limiter_spec.lua
-- Timing bounds are generous at the top: the machine is shared and noisy. The lower
-- bounds are exact: a limiter must never let requests go faster than asked.

local function errmsg(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

-- pacer.limiter re-raises at the caller's line: strip "file:line: ".
local function limiter_error(o)
  local err = errmsg(pacer.limiter, o)
  assert.are.equal("string", type(err))
  return (err:gsub("^[^:]*:%d+: ", ""))
end

-- Runs `n` acquires in the current task; returns the time from before the first to
-- after the last, and the grant times relative to the start.
local function acquire_n(lim, n)
  local t0 = pacer.now()
  local at = {}
  for i = 1, n do
    lim:acquire()
    at[i] = pacer.now() - t0
  end
  return pacer.now() - t0, at
end

-- Spins without yielding (so the loop cannot run) for `s` seconds.
local function busy(s)
  local t0 = pacer.now()
  while pacer.now() - t0 < s do end
end

local function wait_all(tasks)
  for i, t in ipairs(tasks) do
    local ok, err = t:wait()
    assert(ok, "task " .. i .. " failed: " .. tostring(err))
  end
end

describe("pacer.limiter pacing", function()
  it("10/s with burst 1: 11 acquires take 1.0 s", function()
    local lim = pacer.limiter{rate = "10/s", burst = 1}
    local el, at = acquire_n(lim, 11)
    assert.is_true(el >= 1.0, "11 acquires at 10/s took " .. el)
    assert.is_true(el < 1.3, "11 acquires at 10/s took " .. el)
    -- evenly spaced: no two grants closer than the interval
    for i = 2, 11 do
      assert(at[i] - at[i - 1] >= 0.0999, "grants " .. (i - 1) .. " and " .. i .. " were "
        .. (at[i] - at[i - 1]) .. " s apart")
    end
  end)

  it("the first acquire on a fresh limiter does not wait and returns 0", function()
    local lim = pacer.limiter{rate = "1/min"}
    local t0 = pacer.now()
    assert.are.equal(0, lim:acquire())
    assert.is_true(pacer.now() - t0 < 0.05)
  end)

  it("acquire returns the seconds it waited", function()
    local lim = pacer.limiter{rate = "20/s"}
    lim:acquire()
    local waited = lim:acquire()
    assert.are.equal("number", type(waited))
    assert.is_true(waited >= 0.045 and waited < 0.3, "waited " .. waited)
  end)

  it("accepts a number as a rate per second", function()
    local lim = pacer.limiter{rate = 5}
    assert.are.equal(5, lim:state().rate)
    local el = acquire_n(lim, 3)
    assert.is_true(el >= 0.4, "3 acquires at 5/s took " .. el)
    assert.is_true(el < 0.7, "3 acquires at 5/s took " .. el)
  end)

  it("accepts a fractional number as a rate", function()
    local lim = pacer.limiter{rate = 12.5}
    local el = acquire_n(lim, 3) -- 80 ms apart
    assert.is_true(el >= 0.16 and el < 0.45, "took " .. el)
  end)

  it("accepts N/min, N/h, N/day and N/<duration> strings", function()
    assert.are.equal(5, pacer.limiter{rate = "300/min"}:state().rate)
    assert.are.equal(2, pacer.limiter{rate = "7200/h"}:state().rate)
    assert.are.equal(1, pacer.limiter{rate = "86400/day"}:state().rate)
    assert.is_true(math.abs(pacer.limiter{rate = "3/300ms"}:state().rate - 10) < 1e-9)
    assert.is_true(math.abs(pacer.limiter{rate = "100/30s"}:state().rate - 100 / 30) < 1e-9)
    local lim = pacer.limiter{rate = "2/100ms"} -- 20/s
    local el = acquire_n(lim, 4)
    assert.is_true(el >= 0.15 and el < 0.45, "4 acquires at 2/100ms took " .. el)
  end)

  it("a burst lets N go at once, then paces", function()
    local lim = pacer.limiter{rate = "5/s", burst = 4}
    local t0 = pacer.now()
    for _ = 1, 4 do lim:acquire() end
    local burst_time = pacer.now() - t0
    assert.is_true(burst_time < 0.05, "the burst of 4 took " .. burst_time)
    lim:acquire()
    local el = pacer.now() - t0
    assert.is_true(el >= 0.2 and el < 0.5, "the 5th acquire came after " .. el)
  end)

  it("a burst is refilled at the rate after idling", function()
    local lim = pacer.limiter{rate = "20/s", burst = 3}
    for _ = 1, 3 do assert.is_true((lim:try_acquire())) end
    assert.is_false((lim:try_acquire()))
    pacer.sleep(0.16) -- three intervals of 50 ms
    for _ = 1, 3 do assert.is_true((lim:try_acquire())) end
    assert.is_false((lim:try_acquire()))
  end)

  it("holds 2000/s exactly: 2000 acquires take about 1 s", function()
    local lim = pacer.limiter{rate = "2000/s", burst = 1}
    local el = acquire_n(lim, 2000)
    assert.is_true(el >= 0.9, "2000 acquires at 2000/s took " .. el)
    assert.is_true(el < 1.3, "2000 acquires at 2000/s took " .. el)
    assert.are.equal(2000, lim:state().granted)
  end)

  it("holds 2000/s shared by 20 tasks", function()
    local lim = pacer.limiter{rate = "2000/s", burst = 1}
    local count = 0
    local t0 = pacer.now()
    local tasks = {}
    for i = 1, 20 do
      tasks[i] = pacer.spawn(function()
        for _ = 1, 100 do lim:acquire() count = count + 1 end
      end)
    end
    wait_all(tasks)
    local el = pacer.now() - t0
    assert.are.equal(2000, count)
    assert.is_true(el >= 0.9 and el < 1.3, "2000 acquires from 20 tasks took " .. el)
  end)
end)

describe("pacer.limiter try_acquire", function()
  it("returns true while there is room, then false and the seconds to wait", function()
    local lim = pacer.limiter{rate = "5/s", burst = 2}
    local r = table.pack(lim:try_acquire())
    assert.are.same({n = 1, true}, r)
    assert.is_true((lim:try_acquire()))
    local ok, wait = lim:try_acquire()
    assert.is_false(ok)
    assert.are.equal("number", type(wait))
    assert.is_true(wait > 0.15 and wait <= 0.2, "wait " .. wait)
    -- a refused try_acquire takes nothing: after the wait there is room again
    pacer.sleep(wait)
    assert.is_true((lim:try_acquire()))
    assert.is_false((lim:try_acquire()))
  end)

  it("does not jump ahead of a queued waiter whose slot has come", function()
    local lim = pacer.limiter{rate = "10/s"}
    lim:acquire()
    local got = {}
    local t = pacer.spawn(function() lim:acquire() got[#got + 1] = "waiter" end)
    pacer.sleep(0) -- the waiter queues
    assert.are.equal(1, lim:state().waiting)
    busy(0.12) -- past the waiter's slot, without letting the loop grant it
    assert.are.equal(1, lim:state().waiting)
    local ok, wait = lim:try_acquire()
    assert.is_false(ok)
    assert.is_true(wait > 0)
    wait_all{t}
    assert.are.same({"waiter"}, got)
    assert.are.equal(2, lim:state().granted)
  end)
end)

describe("pacer.limiter set_rate", function()
  it("a faster rate speeds up tasks already queued", function()
    local lim = pacer.limiter{rate = "2/s"}
    lim:acquire()
    local t0 = pacer.now()
    local tasks = {}
    for i = 1, 6 do tasks[i] = pacer.spawn(function() lim:acquire() end) end
    pacer.sleep(0.01)
    assert.are.equal(6, lim:state().waiting)
    lim:set_rate("50/s")
    wait_all(tasks)
    local el = pacer.now() - t0
    -- at 2/s the six would need 3 s; at 50/s they take a small part of a second
    assert.is_true(el < 1.0, "six queued acquires after set_rate(\"50/s\") took " .. el)
    assert.are.equal(50, lim:state().rate)
  end)

  it("a slower rate slows down tasks already queued", function()
    local lim = pacer.limiter{rate = "100/s"}
    lim:acquire()
    local t0 = pacer.now()
    local tasks = {}
    for i = 1, 5 do tasks[i] = pacer.spawn(function() lim:acquire() end) end
    pacer.sleep(0) -- let them queue
    assert.are.equal(5, lim:state().waiting)
    lim:set_rate("5/s")
    wait_all(tasks)
    local el = pacer.now() - t0
    -- at 100/s the five would take 50 ms; at 5/s the last four are 200 ms apart
    assert.is_true(el >= 0.8, "five queued acquires after set_rate(\"5/s\") took " .. el)
    assert.is_true(el < 1.2, "five queued acquires after set_rate(\"5/s\") took " .. el)
  end)

  it("keeps the burst unless it is given", function()
    local lim = pacer.limiter{rate = "10/s", burst = 5}
    lim:set_rate("20/s")
    assert.are.equal(5, lim:state().remaining)
    lim:set_rate("20/s", 2)
    assert.are.equal(2, lim:state().remaining)
  end)

  it("keeps the debt in requests: a minute owed at 1/min is 10 ms at 100/s", function()
    local lim = pacer.limiter{rate = "1/min"}
    lim:acquire()
    lim:set_rate("100/s")
    local ok, wait = lim:try_acquire()
    assert.is_false(ok)
    assert.is_true(wait > 0 and wait <= 0.0101, "wait " .. wait)
  end)

  it("accepts a number and rejects a bad rate with the limiter's message", function()
    local lim = pacer.limiter{rate = "1/s"}
    lim:set_rate(4)
    assert.are.equal(4, lim:state().rate)
    local err = errmsg(lim.set_rate, lim, "abc")
    assert.truthy(err:find("pacer.limiter: invalid rate 'abc': expected N/s, N/min, N/h, N/day, N/<duration> or a number",
      1, true), err)
    assert.are.equal(4, lim:state().rate) -- unchanged by the failed call
  end)
end)

describe("pacer.limiter with several rules", function()
  it("obeys the tightest rule", function()
    local lim = pacer.limiter{rules = {"50/s", "4/s"}}
    assert.are.equal(4, lim:state().rate)
    local el = acquire_n(lim, 5)
    assert.is_true(el >= 1.0, "5 acquires under 50/s + 4/s took " .. el)
    assert.is_true(el < 1.3, "5 acquires under 50/s + 4/s took " .. el)
  end)

  it("obeys every rule: a fast rule paces the burst of a slow one", function()
    -- 10/s (burst 1) spaces the first three of the 2/s burst of 3; then 2/s paces
    local lim = pacer.limiter{rules = {"10/s", {rate = "2/s", burst = 3}}}
    local el, at = acquire_n(lim, 6)
    assert.is_true(at[1] < 0.05, "first at " .. at[1])
    assert.is_true(at[2] >= 0.1 and at[2] < 0.3, "second at " .. at[2])
    assert.is_true(at[3] >= 0.2 and at[3] < 0.4, "third at " .. at[3])
    assert.is_true(at[4] >= 0.5 and at[4] < 0.7, "fourth at " .. at[4])
    assert.is_true(el >= 1.5 and el < 1.8, "six acquires took " .. el)
  end)

  it("a rule of the form N/<duration> is honoured next to a per-second rule", function()
    local lim = pacer.limiter{rules = {"100/s", {rate = "3/1s", burst = 3}}}
    local t0 = pacer.now()
    for _ = 1, 3 do lim:acquire() end
    assert.is_true(pacer.now() - t0 < 0.1)
    local ok, wait = lim:try_acquire()
    assert.is_false(ok)
    assert.is_true(wait > 0.25 and wait <= 0.34, "wait " .. wait)
  end)
end)

describe("pacer.limiter fairness", function()
  it("grants waiting tasks in FIFO order", function()
    local lim = pacer.limiter{rate = "40/s"}
    lim:acquire()
    local order = {}
    local tasks = {}
    for i = 1, 5 do
      tasks[i] = pacer.spawn(function()
        for _ = 1, 3 do
          lim:acquire()
          order[#order + 1] = i
        end
      end)
    end
    wait_all(tasks)
    assert.are.same({1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5}, order)
  end)

  it("a task that arrives late waits behind the queue even when a slot is free", function()
    local lim = pacer.limiter{rate = "20/s"}
    lim:acquire()
    local order = {}
    local early = {}
    for i = 1, 3 do
      early[i] = pacer.spawn(function() lim:acquire() order[#order + 1] = "early" .. i end)
    end
    pacer.sleep(0) -- the three queue
    assert.are.equal(3, lim:state().waiting)
    local t0 = pacer.now()
    busy(0.07) -- the first waiter's slot (50 ms) has passed but the loop has not run
    lim:acquire() -- must queue behind the three, not take the free slot
    order[#order + 1] = "late"
    local el = pacer.now() - t0
    wait_all(early)
    assert.are.same({"early1", "early2", "early3", "late"}, order)
    assert.is_true(el >= 0.15, "the late acquire went after " .. el)
  end)
end)

describe("pacer.limiter state", function()
  it("reports rate, remaining, reset, waiting and granted", function()
    local lim = pacer.limiter{rate = "10/s", burst = 3}
    local s = lim:state()
    assert.are.equal(10, s.rate)
    assert.are.equal(3, s.remaining)
    assert.are.equal(0, s.reset)
    assert.are.equal(0, s.waiting)
    assert.are.equal(0, s.granted)

    lim:acquire()
    s = lim:state()
    assert.are.equal(2, s.remaining)
    assert.is_true(s.reset > 0.05 and s.reset <= 0.1, "reset " .. s.reset)
    assert.are.equal(1, s.granted)

    lim:acquire()
    lim:acquire()
    s = lim:state()
    assert.are.equal(0, s.remaining)
    assert.is_true(s.reset > 0.25 and s.reset <= 0.3, "reset " .. s.reset)
    assert.are.equal(3, s.granted)

    local tasks = {}
    for i = 1, 3 do tasks[i] = pacer.spawn(function() lim:acquire() end) end
    pacer.sleep(0)
    s = lim:state()
    assert.are.equal(3, s.waiting)
    assert.are.equal(3, s.granted)
    wait_all(tasks)
    s = lim:state()
    assert.are.equal(0, s.waiting)
    assert.are.equal(6, s.granted)
    assert.is_true(s.waited > 0, "waited " .. tostring(s.waited))
  end)

  it("try_acquire counts in granted only when it succeeds", function()
    local lim = pacer.limiter{rate = "1/s"}
    assert.is_true((lim:try_acquire()))
    assert.is_false((lim:try_acquire()))
    assert.is_false((lim:try_acquire()))
    assert.are.equal(1, lim:state().granted)
  end)

  it("reports the tightest rule's rate", function()
    local s = pacer.limiter{rules = {"100/s", "60/min", "7200/h"}}:state()
    assert.are.equal(1, s.rate)
  end)
end)

describe("pacer.limiter errors", function()
  local RATE_HELP = "expected N/s, N/min, N/h, N/day, N/<duration> or a number"

  it("rejects a rate string that is not a rate", function()
    assert.are.equal("pacer.limiter: invalid rate 'abc': " .. RATE_HELP, limiter_error{rate = "abc"})
    assert.are.equal("pacer.limiter: invalid rate '10/': " .. RATE_HELP, limiter_error{rate = "10/"})
  end)

  it("rejects a zero rate", function()
    assert.are.equal("pacer.limiter: invalid rate '0/s': a rate must be positive", limiter_error{rate = "0/s"})
  end)

  it("rejects a negative rate", function()
    assert.are.equal("pacer.limiter: invalid rate '-5/s': a rate must be positive", limiter_error{rate = "-5/s"})
  end)

  it("rejects an unknown period", function()
    assert.are.equal("pacer.limiter: invalid rate '10/fortnight': unknown period (expected s, min, h, day or a duration)",
      limiter_error{rate = "10/fortnight"})
  end)

  it("rejects a zero or negative number rate", function()
    assert.are.equal("pacer.limiter: rate must be a positive number, got 0.0", limiter_error{rate = 0})
    assert.are.equal("pacer.limiter: rate must be a positive number, got -5.0", limiter_error{rate = -5})
  end)

  it("rejects a rate of the wrong type", function()
    assert.are.equal('pacer.limiter: rate must be a string like "10/s" or a number, got boolean',
      limiter_error{rate = true})
  end)

  it("rejects an unknown option by name", function()
    assert.are.equal("pacer.limiter: unknown option 'rat' (known: rate, rules, burst, shared)",
      limiter_error{rat = "10/s"})
  end)

  it("requires a rate or rules", function()
    assert.are.equal('pacer.limiter: a \'rate\' (e.g. "10/s") or \'rules\' (e.g. {"5/s", "100/min"}) is required',
      limiter_error{})
    assert.are.equal('pacer.limiter: a \'rate\' (e.g. "10/s") or \'rules\' (e.g. {"5/s", "100/min"}) is required',
      limiter_error{burst = 2})
  end)

  it("rejects burst 0 and a non-integer burst", function()
    assert.are.equal("pacer.limiter: 'burst' must be an integer >= 1, got 0", limiter_error{rate = "1/s", burst = 0})
    assert.are.equal("pacer.limiter: 'burst' must be an integer >= 1, got 1.5", limiter_error{rate = "1/s", burst = 1.5})
    assert.are.equal("pacer.limiter: 'burst' must be an integer >= 1",
      limiter_error{rules = {{rate = "1/s", burst = 0}}})
  end)

  it("rejects both rate and rules", function()
    assert.are.equal("pacer.limiter: give 'rate' or 'rules', not both",
      limiter_error{rate = "10/s", rules = {"5/s"}})
  end)

  it("rejects an empty or too long list of rules", function()
    assert.are.equal("pacer.limiter: 'rules' must hold 1 to 8 rates", limiter_error{rules = {}})
    local nine = {}
    for i = 1, 9 do nine[i] = i .. "/s" end
    assert.are.equal("pacer.limiter: 'rules' must hold 1 to 8 rates", limiter_error{rules = nine})
  end)

  it("rejects a bad rule inside rules", function()
    assert.are.equal("pacer.limiter: invalid rate 'x/s': " .. RATE_HELP, limiter_error{rules = {"5/s", "x/s"}})
  end)

  it("reports the error at the caller's line", function()
    local ok, err = pcall(function() return pacer.limiter{rate = "abc"} end)
    assert.is_false(ok)
    assert.truthy(err:find("^spec/limiter/limiter_spec%.lua:%d+: pacer%.limiter: invalid rate 'abc'"), err)
  end)

  it("answered(n) counts answers that got through; state().answered gives the count", function()
    local lim = pacer.limiter{rate = "10/s"}
    assert.are.equal(0, lim:state().answered)
    lim:answered()
    lim:answered(3)
    assert.are.equal(4, lim:state().answered)
    assert.are.equal(0, lim:state().granted) -- a count of its own, not of grants
    local err = errmsg(lim.answered, lim, -1)
    assert.truthy(tostring(err):find("count must be >= 0", 1, true), err)
  end)
end)
