-- spec/limiter/sendpace_spec.lua: the send-spacing guarantee (runtime/mod/sendpace.c):
-- with a burst of 1, no two requests reach the server closer than 1/R, even when the
-- time from a grant to the wire varies (here: an auth step that sometimes takes 12 ms,
-- so a late send would otherwise be followed by a punctual one). Checked against the
-- mock's record of arrival times. Loose on purpose (0.8/R): the machine is shared, and
-- the mock runs on the same loop as the client. A regression check, not a benchmark.
local H = dofile("spec/support/helpers.lua")

local R, N = 50, 60

-- the gaps between the arrivals at `path` the mock recorded: smallest, and how many
-- were closer than `floor` seconds
local function gaps(mock, path, floor)
  local t = {}
  for _, r in ipairs(mock.requests) do
    if r.path == path then t[#t + 1] = r.t end
  end
  table.sort(t)
  local min, close = math.huge, 0
  for i = 2, #t do
    local g = t[i] - t[i - 1]
    if g < min then min = g end
    if g < floor then close = close + 1 end
  end
  return #t, min, close
end

-- an auth whose header line takes 12 ms on every third request, after the grant
local function slow_auth()
  local n = 0
  return {kind = "slow", header = function()
    n = n + 1
    if n % 3 == 0 then pacer.sleep(0.012) end
    return "X-Auth-Token: k"
  end}
end

local function run(api, url)
  local items = {}
  for i = 1, N do items[i] = i end
  local t0 = pacer.now()
  local out = pacer.each(items, function() return api:get(url).status end, {concurrency = 4, progress = false})
  assert.are.equal(N, #out)
  return pacer.now() - t0
end

describe("send spacing at a burst of 1", function()
  local mock
  before_each(function() mock = pacer.mock{rate = "1000/s"} end)
  after_each(function() mock.close() end)

  it("50/s, concurrency 4: no two arrivals closer than 0.8/R", function()
    local api = pacer.client{base_url = mock.url, rate = R .. "/s", concurrency = 4, retry = false}
    local took = run(api, "/v2/numbers")
    local n, min, close = gaps(mock, "/v2/numbers", 0.8 / R)
    assert.are.equal(N, n)
    assert.are.equal(0, close, string.format("%d gaps under %.1f ms (smallest %.2f ms)", close, 800 / R, min * 1e3))
    -- and not slower for it: N requests at R/s take (N - 1)/R and a little
    assert.is_true(took < (N - 1) / R * 1.5, "took " .. took)
    assert.are.equal(N, api.limiter:state().sent)
    assert.are.equal(0, api.limiter:state().margin) -- no 429: nothing learnt
  end)

  it("holds when the grant-to-wire time varies (a slow auth step)", function()
    local api = pacer.client{base_url = mock.url, rate = R .. "/s", concurrency = 4, retry = false, auth = slow_auth()}
    run(api, "/v2/numbers")
    local n, min, close = gaps(mock, "/v2/numbers", 0.8 / R)
    assert.are.equal(N, n)
    assert.are.equal(0, close, string.format("%d gaps under %.1f ms (smallest %.2f ms)", close, 800 / R, min * 1e3))
  end)

  it("a stalled loop does not turn into a burst: the grants due are sent 1/R apart", function()
    local api = pacer.client{base_url = mock.url, rate = R .. "/s", concurrency = 4, retry = false}
    pacer.spawn(function() -- 150 ms of Lua that never yields, while 4 requests wait for slots
      pacer.sleep(0.3)
      local t = os.clock()
      while os.clock() - t < 0.15 do end
    end)
    run(api, "/v2/numbers")
    local n, min, close = gaps(mock, "/v2/numbers", 0.8 / R)
    assert.are.equal(N, n)
    assert.are.equal(0, close, string.format("%d gaps under %.1f ms (smallest %.2f ms)", close, 800 / R, min * 1e3))
    -- the late answers moved the schedule, and the state says by how much
    local st = api.limiter:state()
    assert.is_true(st.stalls >= 1 and st.pushed > 0, string.format("stalls %s, pushed %s", st.stalls, st.pushed))
  end)

  it("holds for a Redis-shared limiter", function()
    local redis = H.redis()
    local ok, err = pcall(function()
      local lim = pacer.limiter{rate = R .. "/s", redis = redis.url, key = "sendpace-" .. math.random(1e9)}
      local api = pacer.client{base_url = mock.url, limiter = lim, concurrency = 4, retry = false, auth = slow_auth()}
      run(api, "/v2/numbers")
      local n, min, close = gaps(mock, "/v2/numbers", 0.8 / R)
      assert.are.equal(N, n)
      assert.are.equal(0, close, string.format("%d gaps under %.1f ms (smallest %.2f ms)", close, 800 / R, min * 1e3))
    end)
    redis.cleanup()
    assert(ok, err)
  end)

  it("a grant no request follows is forgotten: the limiter keeps its pace", function()
    local lim = pacer.limiter{rate = R .. "/s"}
    lim:acquire() -- taken, never sent on
    local api = pacer.client{base_url = mock.url, limiter = lim, concurrency = 4, retry = false}
    local took = run(api, "/v2/numbers")
    assert.is_true(took < (N - 1) / R * 1.5, "took " .. took)
  end)

  it("a 429 at a burst of 1 widens the spacing: 0.2 %, doubling to at most 2 %", function()
    local strict = pacer.mock{rate = (R // 2) .. "/s", burst = 1} -- refuses about half of them
    local api = pacer.client{base_url = strict.url, rate = R .. "/s", concurrency = 4, retry = false}
    local ok, err = pcall(run, api, "/v2/numbers")
    local refused = 0
    for _, r in ipairs(strict.requests) do
      if r.status == 429 then refused = refused + 1 end
    end
    strict.close()
    assert(ok, err)
    assert.is_true(refused >= 5, refused .. " refused")
    assert.are.equal(0.02, api.limiter:state().margin)
  end)
end)
