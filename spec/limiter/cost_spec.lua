-- spec/limiter/cost_spec.lua: a request's cost (n units of every rule), priorities
-- (1 first, FIFO within one) and max_wait at the C limiter, then end to end through a
-- client against pacer.mock's record of arrival times (mock.requests[i].t).
local function wait_all(tasks)
  for i, t in ipairs(tasks) do
    local ok, err = t:wait()
    assert(ok, "task " .. i .. " failed: " .. tostring(err))
  end
end

describe("limiter cost", function()
  it("acquire(n) takes n units: 10/s burst 5, cost 3 then 3 waits 100 ms", function()
    local lim = pacer.limiter{rate = "10/s", burst = 5}
    local t0 = pacer.now()
    assert.are.equal(0, lim:acquire(3))
    assert.are.equal(2, lim:state().remaining)
    lim:acquire(3)
    local el = pacer.now() - t0
    assert.is_true(el >= 0.099 and el < 0.3, "took " .. el)
  end)

  it("try_acquire(n) refuses what does not fit, with the wait", function()
    local lim = pacer.limiter{rate = "10/s", burst = 4}
    assert.is_true(lim:try_acquire(4))
    local ok, wait = lim:try_acquire(2)
    assert.is_false(ok)
    assert.is_true(wait > 0.19 and wait <= 0.2001, "wait " .. wait)
    assert.are.equal(4, lim:max_cost())
  end)

  it("a cost above the burst raises at the caller's line, not a hang", function()
    local lim = pacer.limiter{rate = "10/s", burst = 2}
    local ok, err = pcall(function() lim:acquire(3) end)
    assert.is_false(ok)
    assert.matches("^spec/limiter/cost_spec.lua:%d+: limiter:acquire: a cost of 3 is above the limiter's burst " ..
      "%(2%): it could never be granted$", err)
    ok, err = pcall(function() lim:try_acquire(0) end)
    assert.is_false(ok)
    assert.matches("the cost must be an integer >= 1", err, 1, true)
  end)

  it("several rules: cost n is taken from every rule", function()
    local lim = pacer.limiter{rules = {{rate = "100/s", burst = 5}, {rate = "5/s", burst = 5}}}
    lim:acquire(5)
    local t0 = pacer.now()
    lim:acquire(1) -- the 5/s rule is empty: 200 ms
    local el = pacer.now() - t0
    assert.is_true(el >= 0.199 and el < 0.4, "took " .. el)
  end)
end)

describe("limiter priority", function()
  it("serves priority 1 before 9 and FIFO within one priority", function()
    local lim = pacer.limiter{rate = "50/s"}
    lim:acquire()
    local order, tasks = {}, {}
    local plan = {{"bg1", 9}, {"bg2", 9}, {"mid", 5}, {"ui1", 1}, {"ui2", 1}, {"bg3", 9}}
    for i, p in ipairs(plan) do
      tasks[i] = pacer.spawn(function()
        lim:acquire(1, {priority = p[2]})
        order[#order + 1] = p[1]
      end)
    end
    wait_all(tasks)
    assert.are.same({"ui1", "ui2", "mid", "bg1", "bg2", "bg3"}, order)
  end)

  it("rejects a priority outside 1..9", function()
    local lim = pacer.limiter{rate = "50/s"}
    local ok, err = pcall(lim.acquire, lim, 1, {priority = 0})
    assert.is_false(ok)
    assert.matches("'priority' must be an integer 1..9", err, 1, true)
  end)
end)

describe("limiter max_wait", function()
  it("refuses at once with kind deadline and takes no slot", function()
    local lim = pacer.limiter{rate = "2/s"}
    lim:acquire()
    local t0 = pacer.now()
    local w, err = lim:acquire(1, {max_wait = "100ms"})
    assert.is_nil(w)
    assert.are.equal("deadline", err.kind)
    assert.is_true(err.wait > 0.4 and err.wait <= 0.5001, "wait " .. err.wait)
    assert.is_true(pacer.now() - t0 < 0.02)
    assert.are.equal(1, lim:state().granted) -- nothing taken
    -- within max_wait it waits as usual
    w = lim:acquire(1, {max_wait = 1})
    assert.is_true(w > 0.4, "waited " .. tostring(w))
  end)

  it("counts the queue ahead of it", function()
    local lim = pacer.limiter{rate = "10/s"}
    lim:acquire()
    local tasks = {}
    for i = 1, 5 do tasks[i] = pacer.spawn(function() lim:acquire() end) end
    pacer.sleep(0)
    local w, err = lim:acquire(1, {max_wait = 0.45}) -- five ahead: 0.6 s
    assert.is_nil(w)
    assert.are.equal("deadline", err.kind)
    wait_all(tasks)
  end)
end)

describe("cost, priority and deadline through a client", function()
  it("cost = 3 spaces arrivals at the mock by 3 intervals", function()
    local mock = pacer.mock{rate = "1000/s"}
    local api = pacer.client{base_url = mock.url .. "/v2", rate = "20/s", burst = 3, retry = false}
    for _ = 1, 3 do assert.are.equal(200, api:post("/sms/send", {json = {to = "+15550100", message = "hi"}, cost = 3}).status) end
    local t = {}
    for i, r in ipairs(mock.requests) do t[i] = r.t end
    mock:close()
    assert.are.equal(3, #t)
    -- full bucket: the first at once, then 3 x 50 ms apart
    assert.is_true(t[2] - t[1] >= 0.145, "gap " .. (t[2] - t[1]))
    assert.is_true(t[3] - t[2] >= 0.145, "gap " .. (t[3] - t[2]))
  end)

  it("cost = function(req) on the client; a cost above the burst raises at the caller's line", function()
    local mock = pacer.mock{rate = "1000/s"}
    local api = pacer.client{base_url = mock.url .. "/v2", rate = "20/s", burst = 4, retry = false,
      cost = function(req) return #req.json.to end}
    local t0 = pacer.now()
    api:post("/sms/send", {json = {to = {"a", "b", "c", "d"}}})
    api:post("/sms/send", {json = {to = {"a", "b"}}})
    local el = pacer.now() - t0
    assert.is_true(el >= 0.095, "took " .. el)
    local ok, err = pcall(function() api:post("/sms/send", {json = {to = {1, 2, 3, 4, 5}}}) end)
    mock:close()
    assert.is_false(ok)
    assert.matches("^spec/limiter/cost_spec.lua:%d+: api:post: a cost of 5 is above the burst of ", err)
  end)

  it("priority 1 requests overtake queued background work at the mock", function()
    local mock = pacer.mock{rate = "1000/s"}
    local api = pacer.client{base_url = mock.url .. "/v2", rate = "40/s", retry = false}
    local tasks = {}
    for i = 1, 6 do tasks[#tasks + 1] = pacer.spawn(function() api:get("/numbers", {query = {bg = i}}) end) end
    pacer.sleep(0.01)
    tasks[#tasks + 1] = pacer.spawn(function()
      api:post("/sms/send", {json = {to = "+15550100", message = "hi"}, priority = 1})
    end)
    wait_all(tasks)
    local pos
    for i, r in ipairs(mock.requests) do
      if r.method == "POST" then pos = i end
    end
    mock:close()
    assert.is_true(pos ~= nil and pos <= 3, "the priority-1 request arrived " .. tostring(pos))
  end)

  it("max_wait = '100ms' returns nil, {kind = 'deadline'} at once and sends nothing", function()
    local mock = pacer.mock{rate = "1000/s"}
    local api = pacer.client{base_url = mock.url .. "/v2", rate = "2/s", retry = false}
    assert.are.equal(200, api:get("/numbers").status)
    local t0 = pacer.now()
    local res, err = api:get("/numbers", {max_wait = "100ms"})
    assert.is_nil(res)
    assert.are.equal("deadline", err.kind)
    assert.matches("^GET http://127.0.0.1:%d+/v2/numbers: the limiter's next slot is", err.message)
    assert.is_true(pacer.now() - t0 < 0.05)
    assert.are.equal(1, #mock.requests)
    assert.are.equal(1, api:stats().requests)
    mock:close()
  end)
end)

describe("pacer.batch{cost = 'items'}", function()
  it("charges one unit per item to the requests send() makes", function()
    local mock = pacer.mock{rate = "1000/s"}
    local api = pacer.client{base_url = mock.url .. "/v2", rate = "20/s", burst = 4, retry = false}
    local b = pacer.batch{size = 4, interval = "50ms", cost = "items", send = function(items)
      local res = api:post("/sms/send", {json = {to = "+15550100", message = "batch of " .. #items}})
      local out = {}
      for i = 1, #items do out[i] = res.status end
      return out
    end}
    local tasks = {}
    for i = 1, 8 do tasks[i] = pacer.spawn(function() return b:push(i) end) end
    wait_all(tasks)
    local t = {mock.requests[1].t, mock.requests[2].t}
    mock:close()
    -- two batches of 4: the second waits for 4 units at 20/s (200 ms)
    assert.is_true(t[2] - t[1] >= 0.195, "gap " .. (t[2] - t[1]))
    assert.are.equal("pacer.batch: 'cost' must be \"items\" (one unit per item), got \"rows\"",
      (select(2, pcall(pacer.batch, {cost = "rows", send = print})):gsub("^[^:]+:%d+: ", "")))
  end)
end)
