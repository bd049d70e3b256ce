-- spec/policy/keys_spec.lua: the `keys` option of pacer.client: a pool of API keys with a rate
-- per key; the key header (Authorization: Bearer by default, key_header / key_prefix);
-- requests spread over the keys; a key answered 401/403 is retired and the request goes
-- out again on another key; all keys retired; a key whose quota ran out waits for its
-- reset; api:stats().keys; key values never printed (a subprocess with -vv and --events).
-- A pacer.serve listener on 127.0.0.1 records which key each request carried.
-- Runs inside the pacer host: ./build/pacer tools/busted.lua -o TAP spec/policy/keys_spec.lua

local H = dofile("spec/support/helpers.lua")

local message = H.message

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

local FAST = {base = 0.01, cap = 0.05}
local KEYS = {"sk-live-AAAA1111", "sk-live-BBBB2222", "sk-live-CCCC3333"}

describe("pacer.client keys", function()
  local srv
  local log     -- per request: {t=, auth=, key=(value found after the prefix), header=}
  local status  -- key value -> status to answer with (default 200)
  local quota   -- key value -> {remaining, reset} to send as RateLimit headers

  setup(function()
    srv = pacer.serve{routes = {["GET /x"] = function(req)
      local auth = req.headers["authorization"]
      local api_key = req.headers["x-api-key"]
      local value = api_key or (auth and (auth:match("^Bearer (.*)$") or auth:match("^Token (.*)$") or auth))
      log[#log + 1] = {t = pacer.now(), auth = auth, api_key = api_key, key = value}
      local headers = {}
      local q = quota[value]
      if q then
        headers["RateLimit-Limit"] = "100"
        headers["RateLimit-Remaining"] = tostring(q[1])
        headers["RateLimit-Reset"] = tostring(q[2])
      end
      return status[value] or 200, "ok", headers
    end}}
  end)
  teardown(function() srv.close() end)
  before_each(function() log, status, quota = {}, {}, {} end)

  local function client(extra)
    local o = {base_url = srv.url, name = "svc", keys = KEYS, retry = FAST}
    for k, v in pairs(extra or {}) do o[k] = v end
    return pacer.client(o)
  end

  local function per_key()
    local n = {}
    for _, l in ipairs(log) do n[l.key] = (n[l.key] or 0) + 1 end
    return n
  end

  it("sends each key as Authorization: Bearer <key>", function()
    local api = client()
    for _ = 1, 3 do assert.are.equal(200, assert(api:get("/x")).status) end
    local seen = {}
    for i, l in ipairs(log) do seen[i] = l.auth end
    table.sort(seen)
    assert.are.same({"Bearer sk-live-AAAA1111", "Bearer sk-live-BBBB2222", "Bearer sk-live-CCCC3333"}, seen)
  end)

  it("key_header and key_prefix choose the header", function()
    local api = client{keys = {"k1"}, key_header = "X-Api-Key"}
    assert(api:get("/x"))
    assert.are.equal("k1", log[1].api_key) -- no prefix on another header
    assert.is_nil(log[1].auth)
    api = client{keys = {"k2"}, key_prefix = "Token "}
    assert(api:get("/x"))
    assert.are.equal("Token k2", log[2].auth)
    api = client{keys = {"k3"}, key_header = "X-Api-Key", key_prefix = "v1:"}
    assert(api:get("/x"))
    assert.are.equal("v1:k3", log[3].api_key)
  end)

  it("spreads requests over the keys: three keys give three times one key's rate", function()
    local api = client{rate = "5/s"}
    local t0 = pacer.now()
    local out = pacer.each(range(15), function() return assert(api:get("/x")).status end,
      {concurrency = 15, progress = false})
    local took = pacer.now() - t0
    for i, r in ipairs(out) do assert(r.ok and r.value == 200, "request " .. i .. ": " .. tostring(r.err)) end
    -- 5 per key at 5/s: 0.8 s (one key alone would need 2.8 s)
    assert.is_true(took >= 0.75 and took < 1.5, "15 requests on 3 keys at 5/s each took " .. took)
    assert.are.same({[KEYS[1]] = 5, [KEYS[2]] = 5, [KEYS[3]] = 5}, per_key())
    -- and each key on its own never went faster than its rate
    for _, key in ipairs(KEYS) do
      local prev
      for _, l in ipairs(log) do
        if l.key == key then
          if prev then assert.is_true(l.t - prev >= 0.19, key .. ": two requests " .. (l.t - prev) .. " s apart") end
          prev = l.t
        end
      end
    end
  end)

  it("retires a key answered 401 or 403 and sends the request again on another key", function()
    status[KEYS[2]] = 401
    status[KEYS[3]] = 403
    local calls = {}
    local api = client{alerts = {pacer.alert.on("key_retired", function(info) calls[#calls + 1] = info end)}}
    for i = 1, 4 do
      local res, err = api:get("/x")
      assert(res, "request " .. i .. ": " .. tostring(err and err.message))
      assert.are.equal(200, res.status, "request " .. i)
    end
    -- each bad key was tried once, then only the good one
    assert.are.same({[KEYS[1]] = 4, [KEYS[2]] = 1, [KEYS[3]] = 1}, per_key())
    for _ = 1, 20 do -- the actions run in their own tasks (bounded: 1 s)
      if #calls >= 2 then break end
      pacer.sleep(0.05)
    end
    assert.are.equal(2, #calls)
    table.sort(calls, function(a, b) return a.key < b.key end)
    assert.are.equal("key#2", calls[1].key)
    assert.are.equal("svc: key#2 retired after HTTP 401", calls[1].message)
    assert.are.equal("key#3", calls[2].key)
    assert.are.equal("svc: key#3 retired after HTTP 403", calls[2].message)
    for _, info in ipairs(calls) do
      for k, v in pairs(info) do
        for _, key in ipairs(KEYS) do
          assert.is_nil(tostring(v):find(key, 1, true), "alert field " .. k .. " holds a key value")
        end
      end
    end
    local s = api:stats().keys
    assert.is_true(s["key#2"].retired)
    assert.is_true(s["key#3"].retired)
    assert.is_falsy(s["key#1"].retired)
    assert.are.equal(4, s["key#1"].sent)
    assert.are.equal(1, s["key#2"].sent)
  end)

  it("raises once every key of the pool has been retired", function()
    for _, key in ipairs(KEYS) do status[key] = 401 end
    local api = client()
    local want = "pacer.client: every key of the pool has been retired (401/403)"
    assert.are.equal(want, message(function() return api:get("/x") end))
    assert.are.equal(3, #log) -- each key tried once
    assert.are.equal(want, message(function() return api:get("/x") end))
    assert.are.equal(3, #log) -- and nothing more is sent
    for _, k in pairs(api:stats().keys) do assert.is_true(k.retired) end
  end)

  it("does not use a key whose quota says remaining = 0 until its reset", function()
    local two = {KEYS[1], KEYS[2]}
    quota[KEYS[1]] = {0, 1}
    quota[KEYS[2]] = {0, 1}
    local api = client{keys = two}
    local t0 = pacer.now()
    for _ = 1, 3 do assert.are.equal(200, assert(api:get("/x")).status) end
    local took = pacer.now() - t0
    assert.are.equal(3, #log)
    assert.are_not.equal(log[1].key, log[2].key) -- the second went out on the other key at once
    assert.is_true(log[2].t - log[1].t < 0.3, "second request after " .. (log[2].t - log[1].t))
    local gap = log[3].t - log[1].t
    assert.is_true(gap >= 0.95 and gap < 1.6, "third request (both keys out) after " .. gap)
    assert.is_true(took >= 0.95)
    local s = api:stats().keys
    assert.are.equal(0, s["key#1"].remaining)
    assert.are.equal(100, s["key#1"].limit)
  end)

  it("prefers the key with the most quota left", function()
    quota[KEYS[1]] = {5, 60}
    quota[KEYS[2]] = {90, 60}
    quota[KEYS[3]] = {40, 60}
    local api = client()
    for _ = 1, 3 do assert(api:get("/x")) end -- one on each: their quotas are learnt
    for _ = 1, 4 do assert(api:get("/x")) end
    for i = 4, 7 do assert.are.equal(KEYS[2], log[i].key, "request " .. i) end
  end)

  it("api:stats().keys sums up each key by id", function()
    quota[KEYS[1]] = {70, 60}
    local api = client{keys = {KEYS[1], KEYS[2]}}
    for _ = 1, 4 do assert(api:get("/x")) end
    local s = api:stats().keys
    assert.are.same({"key#1", "key#2"}, (function()
      local ids = {}
      for id in pairs(s) do ids[#ids + 1] = id end
      table.sort(ids)
      return ids
    end)())
    assert.are.equal(70, s["key#1"].remaining)
    assert.are.equal(100, s["key#1"].limit)
    assert.is_nil(s["key#2"].remaining)
    assert.are.equal(4, s["key#1"].sent + s["key#2"].sent)
    assert.is_true(s["key#1"].sent >= 1 and s["key#2"].sent >= 1)
  end)

  it("rejects an empty pool and bad key values", function()
    assert.are.equal("pacer.client: 'keys' must hold at least one key",
      message(function() pacer.client{keys = {}} end))
    assert.are.equal("pacer.client: keys[2] must be a non-empty string without CR/LF",
      message(function() pacer.client{keys = {"ok", "bad\r\nInjected: 1"}} end))
    assert.are.equal("pacer.client: keys[1] must be a non-empty string without CR/LF",
      message(function() pacer.client{keys = {""}} end))
    assert.are.equal("pacer.client: keys[1] must be a non-empty string without CR/LF",
      message(function() pacer.client{keys = {42}} end))
    assert.are.equal("pacer.client: option 'keys' must be a table, got string",
      message(function() pacer.client{keys = "k1"} end))
  end)
end)

describe("key values in what pacer prints", function()
  it("never appear on stdout, stderr or in --events with -vv", function()
    local events = os.tmpname()
    local script = H.script([[
local srv = pacer.serve{routes = {["GET /x"] = function(req)
  if req.headers["authorization"] == "Bearer sk-dead-ZZZZ9999" then return 401, "no" end
  if req.headers["authorization"] == "Bearer sk-live-AAAA1111" then
    return 429, "slow", {["Retry-After"] = "0", ["RateLimit-Limit"] = "10", ["RateLimit-Remaining"] = "0",
      ["RateLimit-Reset"] = "0"}
  end
  return 200, "ok", {["RateLimit-Limit"] = "10", ["RateLimit-Remaining"] = "9", ["RateLimit-Reset"] = "1"}
end}}
local api = pacer.client{base_url = srv.url, name = "svc", keys = {"sk-dead-ZZZZ9999", "sk-live-AAAA1111", "sk-live-BBBB2222"},
  retry = {base = 0.01, cap = 0.02}, alerts = {pacer.alert.on("key_retired", "log"), pacer.alert.on("throttled", "log")}}
for i = 1, 4 do
  local res, err = api:get("/x")
  print("result", i, res and res.status, err and err.message)
end
print(pacer.json.encode(api:stats().keys))
local dead = pacer.client{base_url = srv.url, keys = {"sk-dead-ZZZZ9999"}, retry = {base = 0.01, cap = 0.02}}
local ok, err = pcall(function() return dead:get("/x") end)
print("dead", ok, err)
pacer.sleep(0.1)
srv.close()
]])
    local r = H.run_pacer({"-vv", "--events", events, script}, {timeout = 20})
    local ev = H.read_file(events) or ""
    os.remove(events)
    os.remove(script)
    os.remove((script:gsub("%.lua$", "")))
    assert.are.equal(0, r.code, r.stderr)
    -- it did what we think: a key was retired, requests succeeded, events were written
    assert.is_truthy(r.stderr:find("pacer: warning: alert: svc: key#1 retired after HTTP 401", 1, true), r.stderr)
    assert.is_truthy(r.stdout:find("result\t4\t200", 1, true), r.stdout)
    assert.is_truthy(r.stdout:find("every key of the pool has been retired", 1, true), r.stdout)
    assert.is_truthy(ev:find('"status":401', 1, true), ev)
    assert.is_truthy(ev:find('"status":429', 1, true), ev)
    for _, secret in ipairs{"sk-dead-ZZZZ9999", "sk-live-AAAA1111", "sk-live-BBBB2222", "ZZZZ", "AAAA", "BBBB"} do
      assert.is_nil(r.stdout:find(secret, 1, true), secret .. " on stdout:\n" .. r.stdout)
      assert.is_nil(r.stderr:find(secret, 1, true), secret .. " on stderr:\n" .. r.stderr)
      assert.is_nil(ev:find(secret, 1, true), secret .. " in --events:\n" .. ev)
    end
  end)
end)

describe("key pool regressions", function()
  it("refuses adaptive with keys, and header injection through key_header / key_prefix", function()
    assert.are.equal("pacer.client: adaptive = true does not go with keys: each key already follows its own quota",
      message(function() pacer.client{keys = {"a"}, adaptive = true} end))
    assert.are.equal("pacer.client: key_prefix contains CR, LF or NUL (header injection?)",
      message(function() pacer.client{keys = {"a"}, key_prefix = "x\r\nInjected: yes\r\nA: "} end))
    assert.are.equal('pacer.client: invalid key_header "Bad Name" (header injection?)',
      message(function() pacer.client{keys = {"a"}, key_header = "Bad Name"} end))
  end)

  it("with retry = false a retired key's request still goes out on another key", function()
    local srv = pacer.serve{routes = {["GET /x"] = function(req)
      if req.headers["authorization"] == "Bearer dead" then return 401, "no" end
      return 200, "yes"
    end}}
    local api = pacer.client{base_url = srv.url, keys = {"dead", "live"}, retry = false}
    local res = assert(api:get("/x"))
    srv.close()
    assert.are.equal(200, res.status)
    local s = api:stats()
    assert.is_true(s.keys["key#1"].retired)
    assert.is_false(s.keys["key#2"].retired)
  end)
end)
