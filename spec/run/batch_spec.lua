-- spec/run/batch_spec.lua: pacer.batch: sends at `size` or after `interval`, maps results
-- back to each pusher, reports rejected items and failed batches to every pusher, close,
-- stats, option checking; and a batch sent for real through pacer.client to pacer.mock.
-- Runs inside the pacer host: ./build/pacer tools/busted.lua -o TAP spec/run/batch_spec.lua
-- Flushes by size, flush() or close() leave the interval timer sleeping, and the host
-- waits for it before exiting: intervals here are kept at 2 s for that reason.

local message = dofile("spec/support/helpers.lua").message

local function wait_all(tasks)
  local out = {}
  for i, t in ipairs(tasks) do
    local r = table.pack(t:wait())
    assert(r[1], "task " .. i .. " failed: " .. tostring(r[2]))
    out[i] = {r[2], r[3]}
  end
  return out
end

-- Spawns one pusher per item (in order); returns the tasks.
local function push_all(b, items)
  local tasks = {}
  for i, item in ipairs(items) do tasks[i] = pacer.spawn(function() return b:push(item) end) end
  return tasks
end

-- A send that records each batch and answers "r:<item>" per item.
local function recorder()
  local rec = {batches = {}, at = {}}
  rec.send = function(items)
    local copy = {}
    for i, v in ipairs(items) do copy[i] = v end
    rec.batches[#rec.batches + 1] = copy
    rec.at[#rec.at + 1] = pacer.now()
    local out = {}
    for i, v in ipairs(items) do out[i] = "r:" .. tostring(v) end
    return out
  end
  return rec
end

describe("pacer.batch sending", function()
  it("sends as soon as `size` items are pending", function()
    local rec = recorder()
    local b = pacer.batch{size = 3, interval = "2s", send = rec.send}
    local t0 = pacer.now()
    local res = wait_all(push_all(b, {"a", "b", "c"}))
    local el = pacer.now() - t0
    assert.is_true(el < 0.5, "a full batch waited " .. el)
    assert.are.same({{"a", "b", "c"}}, rec.batches)
    assert.are.same({{"r:a"}, {"r:b"}, {"r:c"}}, res)
  end)

  it("sends what is pending after `interval`", function()
    local rec = recorder()
    local b = pacer.batch{size = 100, interval = "200ms", send = rec.send}
    local t0 = pacer.now()
    local tasks = push_all(b, {1, 2})
    pacer.sleep(0.1)
    assert.are.same({}, rec.batches) -- not yet
    assert.are.equal(2, b:stats().pending)
    local res = wait_all(tasks)
    local el = pacer.now() - t0
    assert.is_true(el >= 0.19 and el < 0.7, "the interval flush came after " .. el)
    assert.are.same({{1, 2}}, rec.batches)
    assert.are.same({{"r:1"}, {"r:2"}}, res)
  end)

  it("the interval counts from the first item of each batch", function()
    local rec = recorder()
    local b = pacer.batch{size = 100, interval = 0.15, send = rec.send}
    local t0 = pacer.now()
    local t1 = pacer.spawn(function() return b:push("x") end)
    pacer.sleep(0.1)
    local t2 = pacer.spawn(function() return b:push("y") end) -- joins the same batch
    wait_all{t1, t2}
    pacer.sleep(0.05)
    local t3 = pacer.spawn(function() return b:push("z") end) -- a new batch, a new interval
    local t3_at = pacer.now()
    wait_all{t3}
    assert.are.same({{"x", "y"}, {"z"}}, rec.batches)
    local first, second = rec.at[1] - t0, rec.at[2] - t3_at
    assert.is_true(first >= 0.14 and first < 0.5, "the first batch went after " .. first)
    assert.is_true(second >= 0.14 and second < 0.5, "the second batch went after " .. second)
  end)

  it("splits a stream into batches of `size`, keeping order, and maps results back", function()
    local rec = recorder()
    local b = pacer.batch{size = 5, interval = "100ms", send = rec.send}
    local items = {}
    for i = 1, 12 do items[i] = "m" .. i end
    local res = wait_all(push_all(b, items))
    assert.are.same({{"m1", "m2", "m3", "m4", "m5"}, {"m6", "m7", "m8", "m9", "m10"}, {"m11", "m12"}},
      rec.batches)
    for i = 1, 12 do assert.are.same({"r:m" .. i}, res[i], "pusher " .. i) end
    assert.are.same({batches = 3, sent = 12, rejected = 0, failed = 0, pending = 0}, b:stats())
  end)

  it("the pusher that fills the batch gets its own result too", function()
    local b = pacer.batch{size = 2, interval = "2s", send = function(items)
      return {items[1] * 10, items[2] * 10}
    end}
    local t = pacer.spawn(function() return b:push(1) end)
    pacer.sleep(0)
    -- this push, in the main task, fills the batch and sends it
    assert.are.equal(20, b:push(2))
    local ok, v, err = t:wait()
    assert.are.same({true, 10}, {ok, v})
    assert.is_nil(err)
  end)

  it("flush() sends at once what is pending", function()
    local rec = recorder()
    local b = pacer.batch{size = 100, interval = "2s", send = rec.send}
    local tasks = push_all(b, {"p", "q"})
    pacer.sleep(0)
    local t0 = pacer.now()
    b:flush()
    local res = wait_all(tasks)
    assert.is_true(pacer.now() - t0 < 0.1)
    assert.are.same({{"p", "q"}}, rec.batches)
    assert.are.same({{"r:p"}, {"r:q"}}, res)
    b:flush() -- nothing pending: no empty batch
    assert.are.equal(1, #rec.batches)
  end)
end)

describe("pacer.batch failures", function()
  it("a result with an `error` field rejects that item only; every pusher gets an answer", function()
    local b = pacer.batch{size = 4, interval = "2s", send = function(items)
      local out = {}
      for i, v in ipairs(items) do
        out[i] = v % 2 == 0 and {error = "odd one out: " .. v, index = i} or {ok = v}
      end
      return out
    end}
    local res = wait_all(push_all(b, {1, 2, 3, 4}))
    assert.are.same({{ok = 1}}, res[1])
    assert.are.same({{ok = 3}}, res[3])
    assert.is_nil(res[2][1])
    assert.are.same({kind = "rejected", message = "odd one out: 2", item = 2}, res[2][2])
    assert.is_nil(res[4][1])
    assert.are.same({kind = "rejected", message = "odd one out: 4", item = 4}, res[4][2])
    assert.are.same({batches = 1, sent = 2, rejected = 2, failed = 0, pending = 0}, b:stats())
  end)

  it("an item with no result is rejected, not dropped", function()
    local b = pacer.batch{size = 3, interval = "2s", send = function() return {"only first"} end}
    local res = wait_all(push_all(b, {"a", "b", "c"}))
    assert.are.same({"only first"}, res[1])
    for i = 2, 3 do
      assert.is_nil(res[i][1])
      assert.are.same({kind = "rejected", message = "no result for this item", item = ({"a", "b", "c"})[i]},
        res[i][2])
    end
  end)

  it("a send that raises fails the whole batch for every pusher", function()
    local b = pacer.batch{size = 3, interval = "2s", send = function() error("api down", 0) end}
    local res = wait_all(push_all(b, {"x", "y", "z"}))
    for i, item in ipairs{"x", "y", "z"} do
      assert.is_nil(res[i][1])
      assert.are.same({kind = "batch_failed", message = "api down", item = item}, res[i][2])
    end
    assert.are.same({batches = 1, sent = 0, rejected = 0, failed = 3, pending = 0}, b:stats())
  end)

  it("a send that returns nil, err fails the batch with err; nil alone with a fixed message", function()
    local b1 = pacer.batch{size = 2, interval = "2s", send = function() return nil, "HTTP 503" end}
    local res = wait_all(push_all(b1, {1, 2}))
    for i = 1, 2 do
      assert.is_nil(res[i][1])
      assert.are.same({kind = "batch_failed", message = "HTTP 503", item = i}, res[i][2])
    end
    local b2 = pacer.batch{size = 2, interval = "2s", send = function() end}
    res = wait_all(push_all(b2, {1, 2}))
    for i = 1, 2 do
      assert.are.same({kind = "batch_failed", message = "send returned nothing", item = i}, res[i][2])
    end
  end)

  it("a failed batch does not stop the next one", function()
    local n = 0
    local b = pacer.batch{size = 2, interval = "2s", send = function(items)
      n = n + 1
      if n == 1 then error("first fails", 0) end
      return {items[1], items[2]}
    end}
    local res1 = wait_all(push_all(b, {"a", "b"}))
    local res2 = wait_all(push_all(b, {"c", "d"}))
    assert.are.equal("batch_failed", res1[1][2].kind)
    assert.are.equal("batch_failed", res1[2][2].kind)
    assert.are.same({{"c"}, {"d"}}, res2)
    assert.are.same({batches = 2, sent = 2, rejected = 0, failed = 2, pending = 0}, b:stats())
  end)
end)

describe("pacer.batch through pacer.client and pacer.mock", function()
  local mock
  setup(function() mock = pacer.mock{rate = "1000/s"} end)
  teardown(function() mock:close() end)

  it("sends one POST per batch; the invalid number is rejected, the others queued", function()
    local api = pacer.client{base_url = mock.url, retry = false}
    local b = pacer.batch{size = 5, interval = "2s", send = function(items)
      local res, err = api:post("/v2/sms/batch", {json = {messages = items}})
      if not res then return nil, err.message end
      if res.status ~= 200 then return nil, "HTTP " .. res.status end
      return res:json().results
    end}
    local items = {
      {to = "+15550001", message = "one"},
      {to = "+15550002", message = "two"},
      {to = "not-a-number", message = "three"},
      {to = "+15550004", message = "four"},
      {to = "+15550005", message = "five"},
    }
    local res = wait_all(push_all(b, items))
    assert.are.equal(1, mock:count{method = "POST", path = "/v2/sms/batch"})
    assert.are.equal(1, #mock.requests)
    local sent = pacer.json.decode(mock.requests[1].body)
    assert.are.equal(5, #sent.messages)
    assert.are.equal("not-a-number", sent.messages[3].to)
    local ids = {}
    for i, item in ipairs(items) do
      if i == 3 then
        assert.is_nil(res[i][1])
        assert.are.same({kind = "rejected", message = "'to' must be a phone number like +15550100", item = item},
          res[i][2])
      else
        local r = res[i][1]
        assert.is_table(r, "pusher " .. i)
        assert.is_nil(res[i][2])
        assert.are.equal(item.to, r.to)
        assert.are.equal("queued", r.status)
        assert.truthy(r.id:match("^SM%d+$"), r.id)
        assert.is_nil(ids[r.id], "duplicate id " .. r.id)
        ids[r.id] = true
      end
    end
    assert.are.same({batches = 1, sent = 4, rejected = 1, failed = 0, pending = 0}, b:stats())
    -- what the mock says it sent agrees
    local usage = api:get("/v2/billing/usage"):json()
    assert.are.equal(4, usage.sms_sent)
  end)
end)

describe("pacer.batch close", function()
  it("close sends what is pending at once", function()
    local rec = recorder()
    local b = pacer.batch{size = 100, interval = "2s", send = rec.send}
    local tasks = push_all(b, {1, 2, 3})
    pacer.sleep(0)
    assert.are.equal(3, b:stats().pending)
    local t0 = pacer.now()
    b:close()
    local res = wait_all(tasks)
    assert.is_true(pacer.now() - t0 < 0.1)
    assert.are.same({{1, 2, 3}}, rec.batches)
    assert.are.same({{"r:1"}, {"r:2"}, {"r:3"}}, res)
    assert.are.same({batches = 1, sent = 3, rejected = 0, failed = 0, pending = 0}, b:stats())
  end)

  it("push after close raises; close with nothing pending sends nothing", function()
    local rec = recorder()
    local b = pacer.batch{size = 10, send = rec.send}
    b:close()
    assert.are.equal(0, #rec.batches)
    assert.are.equal("batch:push: the batch is closed", message(function() b:push("late") end))
    assert.are.equal(0, b:stats().pending)
  end)
end)

describe("pacer.batch errors", function()
  it("refuses bad options with exact messages", function()
    assert.are.equal("pacer.batch: 'send' is required", message(function() return pacer.batch{} end))
    assert.are.equal("pacer.batch: expected a table of options, got nil",
      message(function() return pacer.batch() end))
    assert.are.equal("pacer.batch: 'size' must be >= 1, got 0",
      message(function() return pacer.batch{size = 0, send = print} end))
    assert.are.equal("pacer.batch: option 'size' must be an integer, got number",
      message(function() return pacer.batch{size = 2.5, send = print} end))
    assert.are.equal("pacer.batch: option 'send' must be a callable, got string",
      message(function() return pacer.batch{send = "http://x"} end))
    assert.are.equal("pacer.batch: unknown option 'sise' (known: cost, interval, send, size)",
      message(function() return pacer.batch{sise = 5, send = print} end))
  end)

  it("accepts a callable table as send", function()
    local seen
    local sender = setmetatable({}, {__call = function(_, items) seen = items return {"ok"} end})
    local b = pacer.batch{size = 1, send = sender}
    assert.are.equal("ok", b:push("one"))
    assert.are.same({"one"}, seen)
  end)
end)

describe("pacer.batch regressions", function()
  it("a send that returns a non-list fails the batch for every pusher", function()
    local b = pacer.batch{size = 3, send = function() return true end}
    local tasks = {}
    for i = 1, 3 do tasks[i] = pacer.spawn(function() return b:push(i) end) end
    for i = 1, 3 do
      local ok, v, err = tasks[i]:wait()
      assert.is_true(ok)
      assert.is_nil(v)
      assert.are.equal("batch_failed", err.kind)
      assert.are.equal("send returned a boolean, not a list of results", err.message)
    end
  end)

  it("close() stops the interval timer: nothing waits for it", function()
    local b = pacer.batch{size = 2, interval = "5s", send = function(items) return items end}
    local t0 = pacer.now()
    local t = pacer.spawn(function() return b:push("x") end)
    pacer.sleep(0)
    b:close()
    assert.are.same({true, "x"}, {t:wait()})
    -- the timer task is gone too: a script ending here would not wait 5 s
    local script = dofile("spec/support/helpers.lua")
    local path = script.script([[
local b = pacer.batch{size = 2, interval = "5s", send = function(items) return items end}
local t = pacer.spawn(function() return b:push("x") end)
pacer.sleep(0)
b:close()
print((select(2, t:wait())))
]])
    local r = script.run_pacer({path}, {timeout = 20})
    os.remove(path)
    assert.are.equal("x\n", r.stdout)
    assert.is_true(pacer.now() - t0 < 3, "took " .. (pacer.now() - t0))
  end)

  it("refuses to push nil, and names a bad interval", function()
    local b = pacer.batch{send = function(items) return items end}
    assert.are.equal("batch:push: cannot push nil", message(function() b:push(nil) end))
    assert.are.equal("pacer.batch: option 'interval': invalid duration -1: must be between 0 and 1e9 seconds",
      message(function() pacer.batch{send = function() end, interval = -1} end))
  end)
end)
