-- spec/policy/partition_spec.lua: pacer.client{adaptive = true, partition = fn}: one pace
-- per IETF quota partition (the RateLimit fields' pk), learnt from the answers of that
-- partition; qu = "content-bytes" charging a request's body size; the default partition
-- when the script maps nothing. The server (pacer.serve on 127.0.0.1) enforces a fixed
-- window per partition, answers 429 past it, and records every arrival per partition.
-- Runs inside the pacer host: ./build/pacer tools/busted.lua -o TAP spec/policy/partition_spec.lua
-- Timing bounds are loose: the machine is shared and noisy.

local helpers = dofile("spec/support/helpers.lua")
local message = helpers.message
local b64 = require("pacer.c.crypto").base64 -- the server side encodes the pk

-- A server whose quota is per partition (the X-User header): quotas[user] units per
-- window of `w` seconds, in fixed windows; `unit` "requests" or "content-bytes".
-- Returns the server and its record: arrivals[user] = {times}, status[user][code] = n.
local function partitioned_server(quotas, w, unit)
  local rec = {arrivals = {}, status = {}, bytes = {}}
  local win = {}
  local t0 = pacer.now()
  local srv = pacer.serve{routes = {["* /q"] = function(req)
    local user = req.headers["x-user"] or "anonymous"
    local now = pacer.now()
    local q = quotas[user] or quotas.anonymous
    local start = t0 + math.floor((now - t0) / w) * w
    local cur = win[user]
    if not cur or cur.start ~= start then cur = {start = start, used = 0}; win[user] = cur end
    local cost = unit == "content-bytes" and #(req.body or "") or 1
    rec.arrivals[user] = rec.arrivals[user] or {}
    table.insert(rec.arrivals[user], now)
    rec.status[user] = rec.status[user] or {}
    local code = 200
    if cur.used + cost > q then
      code = 429
    else
      cur.used = cur.used + cost
      rec.bytes[user] = (rec.bytes[user] or 0) + (unit == "content-bytes" and cost or 0)
    end
    rec.status[user][code] = (rec.status[user][code] or 0) + 1
    local pk = ":" .. b64(user) .. ":"
    local left = math.max(0, q - cur.used)
    local t = math.max(1, math.ceil(start + w - now))
    return code, "ok", {
      ["RateLimit-Policy"] = string.format('"peruser";q=%d;w=%d;qu="%s";pk=%s', q, w, unit or "requests", pk),
      ["RateLimit"] = string.format('"peruser";r=%d;t=%d;pk=%s', left, t, pk),
      ["Retry-After"] = code == 429 and tostring(t) or nil,
    }
  end}}
  return srv, rec
end

-- Sends the jobs, `conc` at once; a 429 is an answer here (one try), counted by the server.
local function run(api, jobs, conc)
  pacer.each(jobs, function(job)
    return api:post("/q", {headers = {["X-User"] = job.user}, body = job.body, retry = false})
  end, {concurrency = conc, progress = false})
end

-- seconds from the first arrival to the last
local function span(times)
  table.sort(times)
  return times[#times] - times[1]
end

describe("IETF quota partitions (pk)", function()
  it("paces each partition to its own quota, with no 429", function()
    -- alice may send 10 a second, bob 1: one pace for both would hold alice to bob's (each
    -- of his answers says his quota is spent: the whole client would wait for his reset)
    local srv, rec = partitioned_server({alice = 10, bob = 1}, 1)
    local api = pacer.client{base_url = srv.url, adaptive = true, retry = {max_tries = 1},
      partition = function(req) return req.headers and req.headers["X-User"] end}
    local function stream(user, n, conc)
      local jobs = {}
      for i = 1, n do jobs[i] = {user = user} end
      return pacer.spawn(run, api, jobs, conc)
    end
    local t0 = pacer.now()
    local a_task, b_task = stream("alice", 30, 4), stream("bob", 5, 2)
    assert(a_task:wait())
    assert(b_task:wait())
    local took = pacer.now() - t0
    srv:close()
    local a, b = span(rec.arrivals.alice), span(rec.arrivals.bob)
    if os.getenv("PACER_SPEC_VERBOSE") then print(string.format("# alice %.2fs, bob %.2fs, run %.2fs", a, b, took)) end
    assert.are.same({[200] = 30}, rec.status.alice)
    assert.are.same({[200] = 5}, rec.status.bob)
    -- bob at 1/s: 5 requests span about 4 s; alice at ~10/s spans about 3 s (30 / 10),
    -- not bob's 4 s or more
    assert.is_true(b >= 3.5, string.format("bob's 5 requests spanned %.2fs: faster than 1/s", b))
    assert.is_true(a >= 1.8, string.format("alice's 30 requests spanned %.2fs: faster than 10/s", a))
    assert.is_true(a <= 5, string.format("alice's 30 requests spanned %.2fs: held back (her pace is 10/s)", a))
    local parts = api:stats().partitions
    assert.are.equal(30, parts.alice.sent)
    assert.are.equal(5, parts.bob.sent)
    assert.are.equal("partition#1", parts.alice.id == "partition#1" and parts.alice.id or parts.bob.id)
  end)

  it("charges a request its body size under qu = content-bytes", function()
    -- 3000 bytes a second; each request carries 500: about 6 requests a second
    local srv, rec = partitioned_server({carol = 3000}, 1, "content-bytes")
    local api = pacer.client{base_url = srv.url, adaptive = true, retry = {max_tries = 1},
      partition = function(req) return req.headers and req.headers["X-User"] end}
    local jobs = {}
    for i = 1, 20 do jobs[i] = {user = "carol", body = string.rep("x", 500)} end
    run(api, jobs, 4)
    srv:close()
    assert.are.same({[200] = 20}, rec.status.carol)
    local s = span(rec.arrivals.carol)
    -- 10000 bytes at 3000 B/s is > 3 s, minus the first window's quota taken at once
    assert.is_true(s >= 2, string.format("20 x 500 bytes spanned %.2fs: faster than 3000 B/s", s))
    assert.is_true(s <= 9, string.format("20 x 500 bytes spanned %.2fs", s))
  end)

  it("paces by the default partition when the script maps none", function()
    local srv, rec = partitioned_server({anonymous = 4}, 1)
    local api = pacer.client{base_url = srv.url, adaptive = true, retry = {max_tries = 1}}
    local jobs = {}
    for i = 1, 10 do jobs[i] = {} end
    run(api, jobs, 4)
    srv:close()
    assert.are.same({[200] = 10}, rec.status.anonymous)
    assert.is_true(span(rec.arrivals.anonymous) >= 1.2, "10 requests at 4/s came too fast")
    assert.is_nil(api:stats().partitions)
  end)

  it("rejects a bad partition option or answer at the caller's line", function()
    assert.are.equal("pacer.client: 'partition' goes with adaptive = true: a partition's pace is learnt " ..
      "from the server's quota headers",
      message(function() pacer.client{base_url = "http://127.0.0.1:9", partition = function() end} end))
    local api = pacer.client{base_url = "http://127.0.0.1:9", adaptive = true, partition = function() return 7 end}
    assert.are.equal("api:get: the client's partition function must return a string or nil, got number",
      message(function() api:get("/x") end))
    api = pacer.client{base_url = "http://127.0.0.1:9", adaptive = true, partition = function() error("boom", 0) end}
    assert.are.equal("api:get: the client's partition function failed: boom", message(function() api:get("/x") end))
  end)

  it("warns once, naming no partition, when the server's pk is malformed or another unit is used", function()
    local path = helpers.script([[
      local n = 0
      local srv = pacer.serve{routes = {["GET /q"] = function()
        n = n + 1
        if n % 2 == 1 then return 200, "ok", {RateLimit = '"u";r=5;t=1;pk=:c2VjcmV0LWFjY291bnQ$:'} end
        return 200, "ok", {["RateLimit-Policy"] = '"c";q=4;qu="concurrent-requests";pk=:c2VjcmV0LWFjY291bnQ=:',
          RateLimit = '"c";r=3;t=1;pk=:c2VjcmV0LWFjY291bnQ=:'}
      end}}
      local api = pacer.client{base_url = srv.url, adaptive = true, retry = false,
        partition = function() return "secret-account" end}
      for _ = 1, 4 do assert(api:get("/q")) end
      srv:close()
    ]])
    local r = helpers.run_pacer({path})
    helpers.remove_scripts()
    assert.are.equal(0, r.code, r.stderr)
    local _, malformed = r.stderr:gsub("the server's quota header was ignored: RateLimit: a byte sequence holds " ..
      "a character that is not base64 %(at byte 35%)", "")
    assert.are.equal(1, malformed, r.stderr)
    local _, unit = r.stderr:gsub('partition#1: policy "c" counts "concurrent%-requests": pacer paces by ' ..
      "requests and content%-bytes only", "")
    assert.are.equal(1, unit, r.stderr)
    assert.is_nil(r.stderr:find("secret", 1, true), r.stderr) -- partitions are named partition#N
  end)
end)
