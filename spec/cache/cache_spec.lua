-- spec/cache/cache_spec.lua: pacer.cache: get/set/delete, LRU eviction by count and by bytes,
-- TTLs on a controllable clock, reclaiming of expired entries, counters, single-flight
-- fetch (errors, negative caching, stale-while-revalidate) and option checking.
-- Runs inside the pacer host: ./build/pacer tools/busted.lua -o TAP spec/cache/cache_spec.lua
-- TTL tests move a fake clock (the `clock` option) instead of sleeping.

local message = dofile("spec/support/helpers.lua").message

-- A clock the test moves by hand: clk.t is "now", in seconds.
local function fake_clock()
  local clk = {t = 0}
  clk.fn = function() return clk.t end
  return clk
end

local function wait_all(tasks)
  local out = {}
  for i, t in ipairs(tasks) do
    local r = table.pack(t:wait())
    assert(r[1], "task " .. i .. " failed: " .. tostring(r[2]))
    out[i] = r
  end
  return out
end

describe("pacer.cache get/set/delete", function()
  it("set stores, get returns, a missing key gives nil", function()
    local c = pacer.cache{}
    assert.is_true(c:set("a", "alpha"))
    assert.are.equal("alpha", c:get("a"))
    assert.is_nil(c:get("b"))
    -- get returns exactly one value
    assert.are.equal(1, select("#", c:get("a")))
    assert.are.equal(0, select("#", c:get("b")))
  end)

  it("keeps any Lua value, tables by identity, and false", function()
    local c = pacer.cache{}
    local t = {1, 2, 3}
    c:set("t", t)
    c:set("n", 42.5)
    c:set("f", false)
    c:set("fn", print)
    assert.are.equal(t, c:get("t"))
    assert.are.equal(42.5, c:get("n"))
    assert.is_false(c:get("f"))
    assert.are.equal(print, c:get("fn"))
  end)

  it("set on an existing key replaces the value without adding an entry", function()
    local c = pacer.cache{}
    c:set("k", "one")
    c:set("k", "two")
    assert.are.equal("two", c:get("k"))
    assert.are.equal(1, #c)
    assert.are.equal(1, c:stats().entries)
  end)

  it("delete returns true when the key was there, false otherwise", function()
    local c = pacer.cache{}
    c:set("k", "v")
    assert.is_true(c:delete("k"))
    assert.is_nil(c:get("k"))
    assert.is_false(c:delete("k"))
    assert.is_false(c:delete("never"))
    assert.are.equal(0, #c)
  end)

  it("set(key, nil) deletes the entry", function()
    local c = pacer.cache{}
    c:set("k", "v")
    assert.is_true(c:set("k", nil))
    assert.is_nil(c:get("k"))
    assert.are.equal(0, #c)
  end)

  it("accepts numbers and the empty string as keys", function()
    local c = pacer.cache{}
    c:set(7, "seven")
    c:set("", "empty")
    assert.are.equal("seven", c:get(7))
    assert.are.equal("empty", c:get(""))
    assert.are.equal(2, #c)
  end)

  it("lookup tells fresh from stale without counting hits or misses", function()
    local clk = fake_clock()
    local c = pacer.cache{ttl = 10, stale_while_revalidate = 5, clock = clk.fn}
    c:set("k", "v")
    assert.are.same({"v", "fresh", n = 2}, table.pack(c:lookup("k")))
    clk.t = 12
    assert.are.same({"v", "stale", 2, n = 3}, table.pack(c:lookup("k")))
    assert.are.equal(0, select("#", c:lookup("missing")))
    local s = c:stats()
    assert.are.equal(0, s.hits)
    assert.are.equal(0, s.misses)
  end)

  it("clear empties the cache", function()
    local c = pacer.cache{}
    for i = 1, 20 do c:set("k" .. i, i) end
    assert.are.equal(20, #c)
    c:clear()
    assert.are.equal(0, #c)
    assert.is_nil(c:get("k1"))
    local s = c:stats()
    assert.are.equal(0, s.entries)
    assert.are.equal(0, s.bytes)
    -- and it still works afterwards
    c:set("k1", "again")
    assert.are.equal("again", c:get("k1"))
  end)
end)

describe("pacer.cache LRU eviction", function()
  it("evicts the least recently set entry at max_entries", function()
    local c = pacer.cache{max_entries = 3}
    c:set("a", 1)
    c:set("b", 2)
    c:set("c", 3)
    c:set("d", 4)
    assert.is_nil(c:get("a"))
    assert.are.equal(2, c:get("b"))
    assert.are.equal(3, c:get("c"))
    assert.are.equal(4, c:get("d"))
    assert.are.equal(3, #c)
    assert.are.equal(1, c:stats().evictions)
  end)

  it("a get protects an entry: the untouched one goes instead", function()
    local c = pacer.cache{max_entries = 3}
    c:set("a", 1)
    c:set("b", 2)
    c:set("c", 3)
    assert.are.equal(1, c:get("a")) -- a is now the most recent; b the least
    c:set("d", 4)
    assert.is_nil(c:get("b"))
    assert.are.equal(1, c:get("a"))
    c:set("e", 5) -- now c is the least recently used
    assert.is_nil(c:get("c"))
    assert.are.equal(1, c:get("a"))
    assert.are.equal(4, c:get("d"))
    assert.are.equal(5, c:get("e"))
    assert.are.equal(2, c:stats().evictions)
  end)

  it("setting an existing key also makes it the most recent", function()
    local c = pacer.cache{max_entries = 3}
    c:set("a", 1)
    c:set("b", 2)
    c:set("c", 3)
    c:set("a", 10)
    c:set("d", 4)
    assert.is_nil(c:get("b"))
    assert.are.equal(10, c:get("a"))
  end)

  it("evicts in exact LRU order over many entries", function()
    local c = pacer.cache{max_entries = 100}
    for i = 1, 100 do c:set(i, i) end
    -- touch the even ones, in order
    for i = 2, 100, 2 do assert.are.equal(i, c:get(i)) end
    -- 50 new entries push out exactly the 50 odd (untouched) ones
    for i = 101, 150 do c:set(i, i) end
    for i = 1, 100 do
      if i % 2 == 1 then assert.is_nil(c:get(i), "odd key " .. i .. " should be gone")
      else assert.are.equal(i, c:get(i)) end
    end
    assert.are.equal(100, #c)
    assert.are.equal(50, c:stats().evictions)
  end)

  it("max_entries = 1 keeps only the latest", function()
    local c = pacer.cache{max_entries = 1}
    for i = 1, 10 do c:set("k" .. i, i) end
    assert.are.equal(1, #c)
    assert.are.equal(10, c:get("k10"))
    assert.is_nil(c:get("k9"))
  end)
end)

describe("pacer.cache max_bytes", function()
  it("charges a string entry its key length plus value length", function()
    local c = pacer.cache{}
    c:set("key", "12345")
    assert.are.equal(8, c:stats().bytes)
    c:set("k2", string.rep("x", 100))
    assert.are.equal(110, c:stats().bytes)
    c:set("key", "1") -- a smaller value: the charge follows
    assert.are.equal(106, c:stats().bytes)
    c:delete("k2")
    assert.are.equal(4, c:stats().bytes)
  end)

  it("charges other values 16 bytes plus the key", function()
    local c = pacer.cache{}
    c:set("t", {string.rep("x", 1000)})
    c:set("nn", 12345)
    assert.are.equal(17 + 18, c:stats().bytes)
  end)

  it("evicts least recently used entries to stay within max_bytes", function()
    local c = pacer.cache{max_bytes = 30}
    c:set("a", "123456789") -- 10 bytes each
    c:set("b", "123456789")
    c:set("c", "123456789")
    assert.are.equal(30, c:stats().bytes)
    assert.are.equal("123456789", c:get("a")) -- a protected: b is the oldest now
    c:set("d", "123456789")
    assert.is_nil(c:get("b"))
    assert.are.equal(3, #c)
    assert.are.equal(30, c:stats().bytes)
    -- one larger value pushes out as many as needed
    c:set("e", string.rep("y", 24)) -- 25 bytes: only e fits with nothing else
    assert.are.equal(1, #c)
    assert.are.equal(25, c:stats().bytes)
    assert.are.equal(string.rep("y", 24), c:get("e"))
    assert.are.equal(4, c:stats().evictions) -- b, then c, a and d for e
  end)

  it("a value that exactly fills max_bytes is kept", function()
    local c = pacer.cache{max_bytes = 50}
    assert.is_true(c:set("k", string.rep("x", 49)))
    assert.are.equal(50, c:stats().bytes)
    assert.are.equal(49, #c:get("k"))
  end)

  it("refuses a value larger than max_bytes with false and keeps no old copy", function()
    local c = pacer.cache{max_bytes = 50}
    c:set("other", "o")
    c:set("k", "small")
    local r = table.pack(c:set("k", string.rep("x", 50))) -- 51 bytes with the key
    assert.are.same({false, n = 1}, r)
    assert.is_nil(c:get("k"))
    -- nothing else was evicted for it
    assert.are.equal("o", c:get("other"))
    local s = c:stats()
    assert.are.equal(1, s.entries)
    assert.are.equal(6, s.bytes)
    assert.are.equal(0, s.evictions)
    assert.are.equal(2, s.sets)
  end)
end)

describe("pacer.cache TTL", function()
  it("an entry is fresh until ttl seconds have passed, then a miss", function()
    local clk = fake_clock()
    local c = pacer.cache{ttl = 10, clock = clk.fn}
    c:set("k", "v")
    clk.t = 9.999
    assert.are.equal("v", c:get("k"))
    clk.t = 10
    assert.is_nil(c:get("k"))
    clk.t = 5 -- gone for good, even if the clock were to go back
    assert.is_nil(c:get("k"))
  end)

  it("accepts ttl as a duration string", function()
    local clk = fake_clock()
    local c = pacer.cache{ttl = "1m", clock = clk.fn}
    c:set("k", "v")
    clk.t = 59
    assert.are.equal("v", c:get("k"))
    clk.t = 60.5
    assert.is_nil(c:get("k"))
  end)

  it("a per-set ttl overrides the default, both ways", function()
    local clk = fake_clock()
    local c = pacer.cache{ttl = 10, clock = clk.fn}
    c:set("short", 1, 2)
    c:set("default", 2)
    c:set("long", 3, "30s")
    clk.t = 3
    assert.is_nil(c:get("short"))
    assert.are.equal(2, c:get("default"))
    clk.t = 11
    assert.is_nil(c:get("default"))
    assert.are.equal(3, c:get("long"))
    clk.t = 30
    assert.is_nil(c:get("long"))
  end)

  it("setting again restarts the ttl", function()
    local clk = fake_clock()
    local c = pacer.cache{ttl = 10, clock = clk.fn}
    c:set("k", "v1")
    clk.t = 8
    c:set("k", "v2")
    clk.t = 15
    assert.are.equal("v2", c:get("k"))
    clk.t = 18
    assert.is_nil(c:get("k"))
  end)

  it("ttl = 0 (and no ttl) means no expiry", function()
    local clk = fake_clock()
    local c0 = pacer.cache{ttl = 0, clock = clk.fn}
    local cn = pacer.cache{clock = clk.fn}
    local c10 = pacer.cache{ttl = 10, clock = clk.fn}
    c0:set("k", "v")
    cn:set("k", "v")
    c10:set("forever", "v", 0) -- per-set 0 as well
    c10:set("brief", "v")
    clk.t = 1e8
    assert.are.equal("v", c0:get("k"))
    assert.are.equal("v", cn:get("k"))
    assert.are.equal("v", c10:get("forever"))
    assert.is_nil(c10:get("brief"))
    assert.are.equal(0, c0:stats().expirations)
  end)

  it("reclaims expired entries without a lookup of them", function()
    local clk = fake_clock()
    local c = pacer.cache{ttl = 10, clock = clk.fn}
    for i = 1, 5 do c:set("old" .. i, string.rep("x", 10)) end
    clk.t = 5
    for i = 1, 3 do c:set("new" .. i, "y") end
    assert.are.equal(8, c:stats().entries)
    clk.t = 11
    local s = c:stats()
    assert.are.equal(3, s.entries)
    assert.are.equal(5, s.expirations)
    assert.are.equal(3 * 5, s.bytes) -- "newN" + "y"
    assert.are.equal(3, #c)
    clk.t = 16
    s = c:stats()
    assert.are.equal(0, s.entries)
    assert.are.equal(8, s.expirations)
    assert.are.equal(0, s.bytes)
    assert.are.equal(0, s.misses) -- nothing was looked up
  end)

  it("a set of another key also reclaims what has expired", function()
    local clk = fake_clock()
    local c = pacer.cache{ttl = 1, clock = clk.fn}
    for i = 1, 50 do c:set(i, i) end
    clk.t = 2
    c:set("fresh", 1)
    assert.are.equal(1, #c)
  end)

  it("stale_while_revalidate keeps an expired entry (for lookup) that long", function()
    local clk = fake_clock()
    local c = pacer.cache{ttl = 10, stale_while_revalidate = 5, clock = clk.fn}
    c:set("k", "v")
    clk.t = 12
    assert.is_nil(c:get("k")) -- get answers fresh entries only
    assert.are.equal(1, c:stats().entries)
    local v, state, past = c:lookup("k")
    assert.are.equal("v", v)
    assert.are.equal("stale", state)
    assert.are.equal(2, past)
    clk.t = 15
    assert.is_nil(c:lookup("k"))
    assert.are.equal(0, c:stats().entries)
    assert.are.equal(1, c:stats().expirations)
  end)
end)

describe("pacer.cache stats", function()
  it("counts hits, misses, sets, evictions and expirations", function()
    local clk = fake_clock()
    local c = pacer.cache{ttl = 10, max_entries = 2, max_bytes = 1000, clock = clk.fn}
    c:set("a", "1")
    c:set("b", "2")
    c:set("c", "3") -- evicts a
    c:get("a") -- miss
    c:get("b") -- hit
    c:get("c") -- hit
    c:get("zz") -- miss
    clk.t = 10
    c:get("b") -- expired: miss
    assert.are.same({entries = 0, bytes = 0, hits = 2, misses = 3, sets = 3, evictions = 1,
      expirations = 2, max_entries = 2, max_bytes = 1000}, c:stats())
  end)

  it("reports the defaults", function()
    local s = pacer.cache{}:stats()
    assert.are.equal(10000, s.max_entries)
    assert.are.equal(64 * 1024 * 1024, s.max_bytes)
  end)
end)

describe("pacer.cache fetch", function()
  it("runs the loader once for 100 concurrent tasks; all get its value", function()
    local c = pacer.cache{}
    local calls = 0
    local function loader(key)
      calls = calls + 1
      pacer.sleep(0.05)
      return "value of " .. key
    end
    local tasks = {}
    for i = 1, 100 do tasks[i] = pacer.spawn(function() return c:fetch("k", loader) end) end
    local res = wait_all(tasks)
    assert.are.equal(1, calls)
    for i = 1, 100 do
      assert.are.same({true, "value of k"}, {res[i][1], res[i][2]}, "task " .. i)
      assert.is_nil(res[i][3])
    end
    -- now cached
    assert.are.equal("value of k", c:fetch("k", loader))
    assert.are.equal(1, calls)
    local s = c:stats()
    assert.are.equal(100, s.misses)
    assert.are.equal(1, s.hits)
    assert.are.equal(1, s.sets)
  end)

  it("returns a cached value without calling the loader", function()
    local c = pacer.cache{}
    c:set("k", "set before")
    local called = false
    assert.are.equal("set before", c:fetch("k", function() called = true return "x" end))
    assert.is_false(called)
  end)

  it("caches the loaded value with the ttl given to fetch", function()
    local clk = fake_clock()
    local c = pacer.cache{ttl = 100, clock = clk.fn}
    local calls = 0
    local function loader() calls = calls + 1 return calls end
    assert.are.equal(1, c:fetch("k", loader, 5))
    clk.t = 4
    assert.are.equal(1, c:fetch("k", loader, 5))
    clk.t = 6
    assert.are.equal(2, c:fetch("k", loader, 5))
    assert.are.equal(2, calls)
  end)

  it("hands a loader error to every waiter and does not cache it", function()
    local c = pacer.cache{}
    local calls = 0
    local fail = true
    local function loader()
      calls = calls + 1
      pacer.sleep(0.05)
      if fail then error("backend down", 0) end
      return "recovered"
    end
    local tasks = {}
    for i = 1, 20 do tasks[i] = pacer.spawn(function() return c:fetch("k", loader) end) end
    local res = wait_all(tasks)
    assert.are.equal(1, calls)
    for i = 1, 20 do
      assert.are.same({true, nil, "backend down", n = 3}, res[i], "task " .. i)
    end
    assert.are.equal(0, #c)
    -- the next fetch calls the loader again
    fail = false
    assert.are.equal("recovered", c:fetch("k", loader))
    assert.are.equal(2, calls)
    assert.are.equal("recovered", c:get("k"))
  end)

  it("a loader that returns nil, err gives that error; nil alone a fixed message", function()
    local c = pacer.cache{}
    local v, err = c:fetch("a", function() return nil, "not found" end)
    assert.is_nil(v)
    assert.are.equal("not found", err)
    v, err = c:fetch("b", function() return nil end)
    assert.is_nil(v)
    assert.are.equal("loader returned nil", err)
    assert.are.equal(0, #c)
  end)

  it("a raised error keeps its position so it can be traced", function()
    local c = pacer.cache{}
    local _, err = c:fetch("k", function() error("boom") end)
    assert.truthy(err:find("cache_spec.lua:%d+: boom$"), err)
  end)

  it("negative_ttl caches a loader error for that long", function()
    local clk = fake_clock()
    local c = pacer.cache{ttl = 100, negative_ttl = 5, clock = clk.fn}
    local calls = 0
    local function loader()
      calls = calls + 1
      if calls == 1 then error("no such user", 0) end
      return "user"
    end
    assert.are.same({nil, "no such user", n = 2}, table.pack(c:fetch("u", loader)))
    clk.t = 4.9
    assert.are.same({nil, "no such user", n = 2}, table.pack(c:fetch("u", loader)))
    assert.are.equal(1, calls)
    clk.t = 5
    assert.are.equal("user", c:fetch("u", loader))
    assert.are.equal(2, calls)
    clk.t = 50 -- the value has the ordinary ttl
    assert.are.equal("user", c:fetch("u", loader))
    assert.are.equal(2, calls)
  end)

  it("negative_ttl applies to concurrent waiters too: one loader call", function()
    local c = pacer.cache{negative_ttl = 60}
    local calls = 0
    local function loader()
      calls = calls + 1
      pacer.sleep(0.02)
      return nil, "gone"
    end
    local tasks = {}
    for i = 1, 10 do tasks[i] = pacer.spawn(function() return c:fetch("k", loader) end) end
    local res = wait_all(tasks)
    for i = 1, 10 do assert.are.same({true, nil, "gone", n = 3}, res[i]) end
    assert.are.same({nil, "gone", n = 2}, table.pack(c:fetch("k", loader)))
    assert.are.equal(1, calls)
  end)

  it("stale_while_revalidate serves the stale value at once and refreshes in the background once",
    function()
    local clk = fake_clock()
    local c = pacer.cache{ttl = 10, stale_while_revalidate = 30, clock = clk.fn}
    local calls = 0
    local function loader()
      calls = calls + 1
      pacer.sleep(0.1)
      return "v" .. calls
    end
    assert.are.equal("v1", c:fetch("k", loader))
    clk.t = 15 -- stale, within the window
    local t0 = pacer.now()
    assert.are.equal("v1", c:fetch("k", loader))
    assert.is_true(pacer.now() - t0 < 0.05, "the stale answer took " .. (pacer.now() - t0))
    pacer.sleep(0) -- the refresh starts
    -- more fetches while it runs: the stale value, and no second refresh
    local tasks = {}
    for i = 1, 20 do tasks[i] = pacer.spawn(function() return c:fetch("k", loader) end) end
    local res = wait_all(tasks)
    for i = 1, 20 do assert.are.same({true, "v1", n = 2}, res[i]) end
    for _ = 1, 50 do
      if c:get("k") == "v2" then break end
      pacer.sleep(0.02)
    end
    assert.are.equal("v2", c:get("k"))
    assert.are.equal(2, calls)
    -- past ttl + window: a plain miss, the caller waits for the loader
    clk.t = 15 + 10 + 30
    t0 = pacer.now()
    assert.are.equal("v3", c:fetch("k", loader))
    assert.is_true(pacer.now() - t0 >= 0.09, "a miss should wait for the loader")
  end)

  it("fetches many keys from many tasks: one loader call per key", function()
    local c = pacer.cache{}
    local calls = {}
    local function loader(key)
      calls[key] = (calls[key] or 0) + 1
      pacer.sleep(0.01 * (#key % 3 + 1))
      return key:upper()
    end
    local tasks, keys = {}, {}
    for i = 1, 100 do
      local key = "key" .. (i % 10)
      keys[i] = key
      tasks[i] = pacer.spawn(function() return c:fetch(key, loader) end)
    end
    local res = wait_all(tasks)
    for i = 1, 100 do
      assert.are.same({true, keys[i]:upper()}, {res[i][1], res[i][2]})
      assert.is_nil(res[i][3])
    end
    local n = 0
    for k, v in pairs(calls) do
      n = n + 1
      assert.are.equal(1, v, "loader calls for " .. k)
    end
    assert.are.equal(10, n)
    assert.are.equal(10, #c)
  end)
end)

describe("pacer.cache errors", function()
  it("refuses unknown options, naming the known ones", function()
    assert.are.equal("pacer.cache: unknown option 'tll' (known: clock, max_bytes, max_entries, negative_ttl, "
      .. "stale_while_revalidate, ttl)", message(function() return pacer.cache{tll = 1} end))
  end)

  it("refuses bad option values", function()
    assert.are.equal("pacer.cache: expected a table of options, got number",
      message(function() return pacer.cache(5) end))
    assert.are.equal("pacer.cache: option 'ttl': invalid duration -1: must be between 0 and 1e9 seconds",
      message(function() return pacer.cache{ttl = -1} end))
    assert.are.equal("pacer.cache: option 'ttl': invalid duration 'soon': expected a duration like 250ms, 30s, 5m, 1h "
      .. "or a number of seconds", message(function() return pacer.cache{ttl = "soon"} end))
    assert.are.equal("pacer.cache: option 'stale_while_revalidate': invalid duration -2: must be between 0 and 1e9 seconds",
      message(function() return pacer.cache{stale_while_revalidate = -2} end))
    assert.are.equal("pacer.cache: 'max_entries' must be at least 1",
      message(function() return pacer.cache{max_entries = 0} end))
    assert.are.equal("pacer.cache: 'max_entries' must be a non-negative integer",
      message(function() return pacer.cache{max_entries = -3} end))
    assert.are.equal("pacer.cache: 'max_bytes' must be a non-negative integer",
      message(function() return pacer.cache{max_bytes = -1} end))
    assert.are.equal("pacer.cache: option 'max_entries' must be an integer, got number",
      message(function() return pacer.cache{max_entries = 1.5} end))
    assert.are.equal("pacer.cache: option 'clock' must be a function, got number",
      message(function() return pacer.cache{clock = 1} end))
    assert.are.equal("pacer.cache: option 'ttl' must be a duration (seconds or \"250ms\"), got table",
      message(function() return pacer.cache{ttl = {}} end))
  end)

  it("refuses keys that are not strings or numbers", function()
    local c = pacer.cache{}
    assert.are.equal("cache:get: key must be a string or a number, got table",
      message(function() return c:get({}) end))
    assert.are.equal("cache:set: key must be a string or a number, got boolean",
      message(function() return c:set(true, 1) end))
    assert.are.equal("cache:delete: key must be a string or a number, got nil",
      message(function() return c:delete(nil) end))
    assert.are.equal("cache:lookup: key must be a string or a number, got nil",
      message(function() return c:lookup(nil) end))
    assert.are.equal(0, #c)
  end)

  it("refuses a negative or unreadable ttl on set, storing nothing", function()
    local c = pacer.cache{}
    assert.are.equal("cache:set: invalid duration -1: must be between 0 and 1e9 seconds",
      message(function() return c:set("k", 1, -1) end))
    assert.are.equal("cache:set: invalid duration 'zz': expected a duration like 250ms, 30s, 5m, 1h "
      .. "or a number of seconds", message(function() return c:set("k", 1, "zz") end))
    assert.is_nil(c:get("k"))
    assert.are.equal(0, c:stats().sets)
  end)

  it("fetch requires a loader function", function()
    local c = pacer.cache{}
    assert.are.equal("cache:fetch: loader must be a function, got number",
      message(function() return c:fetch("k", 5) end))
    assert.are.equal("cache:fetch: loader must be a function, got nil",
      message(function() return c:fetch("k") end))
  end)
end)

describe("pacer.cache regressions", function()
  it("stale-while-revalidate refreshes once however many tasks read the stale entry", function()
    local clk = fake_clock()
    local c = pacer.cache{ttl = 10, stale_while_revalidate = 100, clock = clk.fn}
    local n = 0
    local function loader() n = n + 1; pacer.sleep(0.05); return n end
    c:fetch("k", loader)
    clk.t = 20
    local tasks = {}
    for i = 1, 5 do tasks[i] = pacer.spawn(function() return c:fetch("k", loader) end) end
    local got = wait_all(tasks)
    for i = 1, 5 do assert.are.equal(1, got[i][2]) end -- the stale value, at once
    pacer.sleep(0.2)
    assert.are.equal(2, n)
  end)

  it("refuses a bad negative_ttl at construction", function()
    assert.are.equal("pacer.cache: option 'negative_ttl': invalid duration -1: must be between 0 and 1e9 seconds",
      message(function() pacer.cache{negative_ttl = -1} end))
    assert.are.equal("pacer.cache: option 'negative_ttl': invalid duration 'soon': expected a duration like 250ms, "
      .. "30s, 5m, 1h or a number of seconds", message(function() pacer.cache{negative_ttl = "soon"} end))
    assert.are.equal("pacer.cache: 'negative_ttl' must be greater than 0",
      message(function() pacer.cache{negative_ttl = 0} end))
  end)

  it("keeps cached loader errors out of get()", function()
    local c = pacer.cache{negative_ttl = 60}
    local v, err = c:fetch("k", function() error("down", 0) end)
    assert.is_nil(v)
    assert.are.equal("down", err)
    assert.is_nil(c:get("k"))
    v, err = c:fetch("k", function() return "never called" end)
    assert.is_nil(v)
    assert.are.equal("down", err)
  end)

  it("names fetch in the error for a bad key", function()
    assert.are.equal("cache:fetch: key must be a string or a number, got table",
      message(function() pacer.cache{}:fetch({}, function() end) end))
  end)

  it("does not count expired entries in #c", function()
    local clk = fake_clock()
    local c = pacer.cache{ttl = 1, clock = clk.fn}
    for i = 1, 3 do c:set("k" .. i, i) end
    clk.t = 5
    assert.are.equal(0, #c)
  end)
end)
