-- Caches kept in a real redis-server (Debian's, on a loopback port): pacer.cache{redis =}
-- shared by processes, fetch single-flight across processes, failing open while Redis is
-- down; a client's HTTP cache with store = "redis://…".
local H = dofile("spec/support/helpers.lua")

local message = H.message

describe("pacer.cache{redis = ...}", function()
  local redis
  setup(function() redis = H.redis() end)
  teardown(function()
    redis.cleanup()
    H.remove_scripts()
  end)

  local function fresh_name() return "c" .. math.random(1e9) end

  it("gets, sets, expires, deletes and clears JSON values", function()
    local c = pacer.cache{redis = redis.url, name = fresh_name()}
    c:set("plan", {name = "pro", limits = {sms = 100, burst = 5}, on = true})
    assert.are.same({name = "pro", limits = {sms = 100, burst = 5}, on = true}, c:get("plan"))
    assert.are.equal("integer", math.type(c:get("plan").limits.sms))
    c:set(7, "seven")
    assert.are.equal("seven", c:get("7")) -- keys are compared as strings
    c:set("short", 1.5, 0.2)
    assert.are.equal(1.5, c:get("short"))
    assert.are.equal(3, #c)
    pacer.sleep(0.3)
    assert.is_nil(c:get("short"))
    c:set("plan", nil)
    assert.is_nil(c:get("plan"))
    c:clear()
    assert.are.equal(0, #c)
    assert.is_nil(c:get("7"))
  end)

  it("is shared: what one process stores another reads", function()
    local name = fresh_name()
    local writer = H.script(string.format([[
local c = pacer.cache{redis = %q, name = %q, ttl = "1m"}
c:set("token", {value = arg[1], n = 42})
]], redis.url, name))
    local _, code = H.sh(string.format("%s -q %s abc123", H.PACER, writer), 10)
    assert.are.equal(0, code)
    local c = pacer.cache{redis = redis.url, name = name}
    assert.are.same({value = "abc123", n = 42}, c:get("token"))
    local other = pacer.cache{redis = redis.url, name = fresh_name()}
    assert.is_nil(other:get("token")) -- names keep caches apart
  end)

  it("loads once across 3 processes fetching the same key at the same time", function()
    local mock = pacer.mock{rate = "100/s", latency = 0.4}
    local name = fresh_name()
    local fetcher = H.script(string.format([[
local c = pacer.cache{redis = %q, name = %q, ttl = "1m"}
local api = pacer.client{base_url = %q}
local v = assert(c:fetch("usage", function() return api:get("/v2/billing/usage"):json() end))
print(v.sms_sent ~= nil and "got usage" or "no usage")
]], redis.url, name, mock.url))
    local done = {}
    local tasks = {}
    for i = 1, 3 do
      tasks[i] = pacer.spawn(function()
        local out, code = H.sh(string.format("%s -q %s", H.PACER, fetcher), 15)
        done[i] = {out, code}
      end)
    end
    for _, t in ipairs(tasks) do t:wait() end
    for i = 1, 3 do
      assert.are.equal(0, done[i][2])
      assert.are.equal("got usage\n", done[i][1])
    end
    assert.are.equal(1, mock:count{path = "/v2/billing/usage"})
    mock:close()
  end)

  it("single-flights within a process and counts hits and misses", function()
    local c = pacer.cache{redis = redis.url, name = fresh_name()}
    local calls = 0
    local function loader(key)
      calls = calls + 1
      pacer.sleep(0.1)
      return key .. "!"
    end
    local got = {}
    local ts = {}
    for i = 1, 5 do ts[i] = pacer.spawn(function() got[i] = c:fetch("k", loader) end) end
    for _, t in ipairs(ts) do t:wait() end
    assert.are.same({"k!", "k!", "k!", "k!", "k!"}, got)
    assert.are.equal(1, calls)
    assert.are.equal("k!", c:fetch("k", loader))
    local s = c:stats()
    assert.are.same({1, 5, 1, 1}, {s.hits, s.misses, s.loads, s.entries})
  end)

  it("keeps loader errors for negative_ttl, and only then", function()
    local c = pacer.cache{redis = redis.url, name = fresh_name(), negative_ttl = 0.3}
    local calls = 0
    local function failing()
      calls = calls + 1
      return nil, "upstream down"
    end
    assert.are.same({nil, "upstream down"}, {c:fetch("x", failing)})
    assert.are.same({nil, "upstream down"}, {c:fetch("x", failing)})
    assert.are.equal(1, calls)
    assert.is_nil(c:get("x")) -- an error is not a value
    pacer.sleep(0.4)
    c:fetch("x", failing)
    assert.are.equal(2, calls)
  end)

  it("fails open while Redis is unreachable: misses, the loader runs, one warning", function()
    local port = H.free_port() -- nothing listens there
    local s = H.script(string.format([[
local c = pacer.cache{redis = "redis://127.0.0.1:%d", name = "down"}
c:set("a", 1)
print(c:get("a"), c:fetch("b", function() return "loaded" end), c:fetch("b", function() return "again" end))
]], port))
    local out, code = H.sh(string.format("%s %s 2>&1", H.PACER, s), 10)
    assert.are.equal(0, code, out)
    assert.matches("nil\tloaded\tagain", out, 1, true)
    local _, warnings = out:gsub("unreachable for cache 'down'", "")
    assert.are.equal(1, warnings, out)
  end)

  it("fails open within redis_timeout when Redis freezes, and uses it again after", function()
    local c = pacer.cache{redis = redis.url, name = fresh_name(), redis_timeout = "300ms"}
    c:set("a", 1)
    assert.are.equal(1, c:get("a"))
    redis.freeze()
    finally(function() redis.thaw() end)
    local t0 = pacer.now()
    assert.is_nil(c:get("a"))
    local took = pacer.now() - t0
    assert.is_true(took >= 0.25 and took < 1, "the first get with Redis frozen took " .. took)
    t0 = pacer.now()
    assert.are.equal("loaded", c:fetch("b", function() return "loaded" end))
    assert.is_nil(c:get("a"))
    took = pacer.now() - t0
    assert.is_true(took < 0.2, "the next calls (Redis known to be out) took " .. took)
    redis.thaw()
    pacer.sleep(1.1) -- past the pause between tries
    assert.are.equal(1, c:get("a"))
  end)

  it("refuses bad options by name", function()
    assert.are.equal(
      "pacer.cache: a Redis cache takes redis, name, ttl, negative_ttl, lock and redis_timeout, not 'max_entries'",
      message(function() pacer.cache{redis = redis.url, max_entries = 10} end))
    assert.are.equal('pacer.cache: \'redis\' must look like redis://HOST:PORT, got "localhost:6379"',
      message(function() pacer.cache{redis = "localhost:6379"} end))
    assert.are.equal("pacer.cache: option 'ttl': invalid duration 'soon': expected a duration like 250ms, 30s, 5m, 1h "
      .. "or a number of seconds",
      message(function() pacer.cache{redis = redis.url, ttl = "soon"} end))
    local c = pacer.cache{redis = redis.url, name = fresh_name()}
    assert.are.equal("cache:set: a Redis cache stores JSON: Cannot serialise function: type not supported",
      message(function() c:set("f", {f = print}) end))
    assert.are.equal("cache:get: key must be a string or a number, got table",
      message(function() c:get({}) end))
  end)
end)

describe("pacer.client cache kept in Redis", function()
  local redis
  setup(function() redis = H.redis() end)
  teardown(function()
    redis.cleanup()
    H.remove_scripts()
  end)

  it("answers another process's GET from Redis without asking the API", function()
    local mock = pacer.mock{rate = "100/s"}
    local s = H.script(string.format([[
local api = pacer.client{base_url = %q, cache = {ttl = "1m", store = %q}}
local res = assert(api:get("/v2/numbers", {query = {page = 1}}))
print(res.status, res.cached and "cached" or "fetched", #res:json().numbers)
]], mock.url, redis.url))
    local first, c1 = H.sh(string.format("%s -q %s", H.PACER, s), 10)
    local second, c2 = H.sh(string.format("%s -q %s", H.PACER, s), 10)
    assert.are.same({0, 0}, {c1, c2})
    assert.matches("^200\tfetched\t%d+", first)
    assert.are.equal(first:gsub("fetched", "cached"), second)
    assert.are.equal(1, mock:count{path = "/v2/numbers"})
    mock:close()
  end)
end)
