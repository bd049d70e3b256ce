-- spec/host/badinput_spec.lua: a catalogue of bad inputs and what pacer says about each.
-- Misuse raises at the caller's line with a message naming the function, the option and
-- what it accepts; messages are compared exactly after stripping the "file:line: "
-- prefix. Whole scripts run as a subprocess (H.run_pacer): exit code and stderr.
-- Runs inside the pacer host: ./build/pacer -q tools/busted.lua -o TAP spec/host/badinput_spec.lua
local H = dofile("spec/support/helpers.lua")

local THIS = debug.getinfo(1, "S").short_src -- "spec/host/badinput_spec.lua"

-- error text without the "file:line: " prefix, and the full text
local function message(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  return (tostring(err):gsub("^[^\n]-:%d+: ", "")), tostring(err)
end

-- the error is raised at a line of this file, not inside pacer
local function at_this_file(full)
  assert.truthy(full:find("^" .. THIS:gsub("%p", "%%%0") .. ":%d+: "), "not raised at a line of " .. THIS .. ": " .. full)
end

local has, contains = H.has, H.contains
local function lacks(s, needle)
  assert(not has(s, needle), string.format("did not expect %q in:\n%s", needle, s))
end

local script = H.script
teardown(H.remove_scripts)

local REQUEST_KNOWN = "auth, body, connect_timeout, cost, follow, form, headers, idempotency_key, json, limiter, "
  .. "max_body, max_wait, method, priority, query, retry, timeout, url, verify"
local CLIENT_KNOWN = "adaptive, alerts, auth, base_url, breaker, burst, cache, concurrency, connect_timeout, cost, "
  .. "follow, groups, headers, idempotency, key_header, key_prefix, keys, limiter, max_body, max_wait, name, "
  .. "partition, priority, rate, retry, rules, state, target, timeout, verify, window"
local RATE_FORMS = "expected N/s, N/min, N/h, N/day, N/<duration> or a number"
local DURATION_FORMS = "expected a duration like 250ms, 30s, 5m, 1h or a number of seconds"

describe("whole scripts (run as a subprocess)", function()
  it("a syntax error exits 1 and names file:line and the token", function()
    local path = script("local ok = true\nlocal = 2\nprint('never')\n")
    local r = H.run_pacer{path}
    assert.are.equal(1, r.code)
    assert.are.equal("", r.stdout)
    contains(r.stderr, "pacer: " .. path .. ":2: <name> expected near '='")
  end)

  it("an unclosed block exits 1, naming the line where the file ended", function()
    local path = script("for i = 1, 3 do\n  print(i)\n")
    local r = H.run_pacer{path}
    assert.are.equal(1, r.code)
    assert.are.equal("", r.stdout)
    contains(r.stderr, "pacer: " .. path .. ":3: 'end' expected (to close 'for' at line 1) near <eof>")
  end)

  it("an unknown command-line option exits 2 before running anything", function()
    local path = script("print('ran')\n")
    local r = H.run_pacer{"--tiemout", "5", path}
    assert.are.equal(2, r.code)
    assert.are.equal("", r.stdout)
    assert.are.equal("pacer: unknown option '--tiemout'\ntry 'pacer --help'\n", r.stderr)
  end)

  it("a bad --progress value and an option missing its file exit 2", function()
    local r = H.run_pacer{"--progress=loud", "-e", "print(1)"}
    assert.are.equal(2, r.code)
    assert.are.equal("", r.stdout)
    assert.are.equal("pacer: --progress takes auto, plain or off, not 'loud'\ntry 'pacer --help'\n", r.stderr)
    r = H.run_pacer{"--events"}
    assert.are.equal(2, r.code)
    assert.are.equal("pacer: option needs a file name: '--events'\ntry 'pacer --help'\n", r.stderr)
  end)

  it("misuse at the top of a script exits 1 and names the script's line", function()
    local path = script("print('before')\n\nlocal api = pacer.client{base_url = 'http://127.0.0.1:1', rats = '5/s'}\n")
    local r = H.run_pacer{path}
    assert.are.equal(1, r.code)
    assert.are.equal("before\n", r.stdout)
    contains(r.stderr, "pacer: " .. path .. ":3: pacer.client: unknown option 'rats' (known: " .. CLIENT_KNOWN .. ")\n")
    contains(r.stderr, "stack traceback")
  end)

  it("pacer report on a file that is not an events log exits 1 naming file:line", function()
    local path = script("{\"t\": 1, \"method\": \"GET\"}\nnot json\n{\"t\": 2}\n") -- (a torn last line is skipped)
    local out = os.tmpname() .. ".svg"
    local r = H.run_pacer{"report", path, "-o", out}
    os.remove(out)
    os.remove((out:gsub("%.svg$", "")))
    assert.are.equal(1, r.code)
    assert.are.equal("pacer report: " .. path .. ":2: not an event line (JSON with a numeric 't')\n", r.stderr)
  end)
end)

describe("unknown option names", function()
  it("pacer.request", function()
    local msg, full = message(function() local r = pacer.request{url = "http://127.0.0.1:1/", tiemout = 1}; return r end)
    assert.are.equal("pacer.request: unknown option 'tiemout' (known: " .. REQUEST_KNOWN .. ")", msg)
    at_this_file(full)
  end)

  it("pacer.client, and a request option on a client method", function()
    local msg, full = message(function() local c = pacer.client{base_url = "http://127.0.0.1:1", rats = "5/s"}; return c end)
    assert.are.equal("pacer.client: unknown option 'rats' (known: " .. CLIENT_KNOWN .. ")", msg)
    at_this_file(full)
    local api = pacer.client{base_url = "http://127.0.0.1:1"}
    assert.are.equal("api:post: unknown option 'jsno' (known: auth, body, connect_timeout, cost, follow, form, "
      .. "headers, idempotency_key, json, max_body, max_wait, priority, query, retry, timeout, verify)",
      message(function() return api:post("/x", {jsno = {}}) end))
  end)

  it("a retry policy", function()
    assert.are.equal("pacer.client.retry: unknown option 'max_retries' (known: backoff, base, cap, factor, jitter, "
      .. "max_retry_after, max_time, max_tries, on, on_giveup, on_retry, on_success, random, retry_after, "
      .. "retry_after_jitter, seed, unsafe)",
      message(function() return pacer.client{retry = {max_retries = 3}} end))
  end)

  it("pacer.limiter", function()
    local msg, full = message(function() local l = pacer.limiter{rate = "10/s", brust = 5}; return l end)
    assert.are.equal("pacer.limiter: unknown option 'brust' (known: rate, rules, burst, shared)", msg)
    at_this_file(full)
  end)

  it("pacer.cache", function()
    local msg, full = message(function() local c = pacer.cache{max_entires = 10}; return c end)
    assert.are.equal("pacer.cache: unknown option 'max_entires' (known: clock, max_bytes, max_entries, "
      .. "negative_ttl, stale_while_revalidate, ttl)", msg)
    at_this_file(full)
  end)

  it("pacer.queue, and an option that is not built yet", function()
    local msg, full = message(function() local q = pacer.queue{max_atempts = 2}; return q end)
    assert.are.equal("pacer.queue: unknown option 'max_atempts' (known: capacity, durable, full, lease, max_attempts, "
      .. "name, poll, redis, redis_timeout, retry_delay, store_timeout)", msg)
    at_this_file(full)
    assert.are.equal("pacer.queue: option 'durable' must be a string, got boolean",
      message(function() return pacer.queue{durable = true} end))
  end)

  it("pacer.serve", function()
    local msg, full = message(function() local s = pacer.serve{routes = {}, max_bdy = 10}; return s end)
    assert.are.equal("pacer.serve: unknown option 'max_bdy' (known: body_timeout, handler, header_timeout, host, "
      .. "idle_timeout, max_body, max_connections, max_header_bytes, max_headers, port, routes)", msg)
    at_this_file(full)
  end)

  it("pacer.mock", function()
    local msg, full = message(function() local m = pacer.mock{fial = 0.5}; return m end)
    assert.are.equal("pacer.mock: unknown option 'fial' (known: burst, drop, fail, fail_status, headers, host, key, "
      .. "latency, max_batch, mode, numbers, port, rate, retry_after)", msg)
    at_this_file(full)
  end)

  it("pacer.each and pacer.batch", function()
    assert.are.equal("pacer.each: unknown option 'concurency' (known: concurrency, label, on_error, progress)",
      message(function() return pacer.each({1}, function() end, {concurency = 2}) end))
    assert.are.equal("pacer.batch: unknown option 'sise' (known: cost, interval, send, size)",
      message(function() return pacer.batch{send = function() end, sise = 10} end))
  end)
end)

describe("wrong option types", function()
  it("pacer.request: retry, follow, max_body, a body that cannot be JSON", function()
    local u = "http://127.0.0.1:1/"
    assert.are.equal("pacer.request: option 'retry' must be a table or a boolean, got string",
      message(function() return pacer.request{url = u, retry = "yes"} end))
    assert.are.equal("pacer.request: option 'follow' must be a boolean, an integer or a table, got string",
      message(function() return pacer.request{url = u, follow = "yes"} end))
    assert.are.equal("pacer.request: option 'max_body' must be an integer, got number",
      message(function() return pacer.request{url = u, max_body = 1.5} end))
    assert.are.equal("pacer.request: cannot encode 'json': Cannot serialise function: type not supported",
      message(function() return pacer.request{url = u, method = "POST", json = {f = print}} end))
    assert.are.equal("pacer.request: expected a table of options, got string",
      message(function() return pacer.request(u) end))
  end)

  it("pacer.client: base_url, concurrency, burst, idempotency", function()
    assert.are.equal("pacer.client: option 'base_url' must be a string, got number",
      message(function() return pacer.client{base_url = 8080} end))
    assert.are.equal("pacer.client: option 'concurrency' must be an integer, got string",
      message(function() return pacer.client{concurrency = "4"} end))
    assert.are.equal("pacer.client: option 'burst' must be an integer, got number",
      message(function() return pacer.client{rate = "10/s", burst = 1.5} end))
    assert.are.equal("pacer.client: option 'idempotency' must be a boolean or a function, got string",
      message(function() return pacer.client{idempotency = "yes"} end))
  end)

  it("pacer.limiter: a rate of the wrong type, a bad burst", function()
    assert.are.equal("pacer.limiter: rate must be a string like \"10/s\" or a number, got boolean",
      message(function() return pacer.limiter{rate = true} end))
    assert.are.equal("pacer.limiter: 'burst' must be an integer >= 1, got x",
      message(function() return pacer.limiter{rate = "10/s", burst = "x"} end))
    assert.are.equal("pacer.limiter: 'burst' must be an integer >= 1, got 0",
      message(function() return pacer.limiter{rate = "10/s", burst = 0} end))
    assert.are.equal("pacer.limiter: a 'rate' (e.g. \"10/s\") or 'rules' (e.g. {\"5/s\", \"100/min\"}) is required",
      message(function() return pacer.limiter{} end))
  end)

  it("pacer.cache, pacer.queue", function()
    assert.are.equal("pacer.cache: option 'max_entries' must be an integer, got string",
      message(function() return pacer.cache{max_entries = "10"} end))
    assert.are.equal("pacer.cache: option 'ttl' must be a duration (seconds or \"250ms\"), got table",
      message(function() return pacer.cache{ttl = {}} end))
    assert.are.equal("pacer.cache: 'max_entries' must be at least 1",
      message(function() return pacer.cache{max_entries = 0} end))
    assert.are.equal("pacer.queue: option 'capacity' must be an integer, got string",
      message(function() return pacer.queue{capacity = "10"} end))
    assert.are.equal("pacer.queue: 'full' must be \"wait\" or \"error\", got \"drop\"",
      message(function() return pacer.queue{full = "drop"} end))
    assert.are.equal("pacer.queue: 'max_attempts' must be >= 1, got 0",
      message(function() return pacer.queue{max_attempts = 0} end))
  end)

  it("pacer.serve, pacer.mock", function()
    assert.are.equal("pacer.serve: option 'handler' must be a callable, got number",
      message(function() return pacer.serve{handler = 5} end))
    assert.are.equal("pacer.serve: option 'max_body' must be an integer, got number",
      message(function() return pacer.serve{routes = {}, max_body = 1.5} end))
    assert.are.equal("pacer.serve: 'max_body' must be positive",
      message(function() return pacer.serve{routes = {}, max_body = 0} end))
    assert.are.equal("pacer.serve: port must be 0..65535",
      message(function() return pacer.serve{routes = {}, port = 70000} end))
    assert.are.equal("pacer.mock: option 'fail' must be a number, got string",
      message(function() return pacer.mock{fail = "20%"} end))
    assert.are.equal("pacer.mock: 'fail' must be between 0 and 1, got 2",
      message(function() return pacer.mock{fail = 2} end))
    assert.are.equal("pacer.mock: 'drop' must be between 0 and 1, got -0.1",
      message(function() return pacer.mock{drop = -0.1} end))
    assert.are.equal("pacer.mock: mode must be \"gcra\" or \"fixed\", got \"sliding\"",
      message(function() return pacer.mock{mode = "sliding"} end))
  end)

  it("pacer.each", function()
    assert.are.equal("pacer.each: expected a list, got string",
      message(function() return pacer.each("1,2,3", function() end) end))
    assert.are.equal("pacer.each: expected a function, got nil",
      message(function() return pacer.each({1}) end))
    assert.are.equal("pacer.each: 'concurrency' must be >= 1, got 0",
      message(function() return pacer.each({1}, function() end, {concurrency = 0}) end))
  end)
end)

describe("rates: zero, negative, garbage, overflowing", function()
  it("zero", function()
    assert.are.equal("pacer.limiter: rate must be a positive number, got 0.0",
      message(function() return pacer.limiter{rate = 0} end))
    assert.are.equal("pacer.limiter: invalid rate '0/s': a rate must be positive",
      message(function() return pacer.limiter{rate = "0/s"} end))
    assert.are.equal("pacer.client: invalid rate '0/min': a rate must be positive",
      message(function() return pacer.client{rate = "0/min"} end))
    assert.are.equal("pacer.mock: invalid rate 0: a rate must be positive",
      message(function() return pacer.mock{rate = 0} end))
    assert.are.equal("pacer.limiter: invalid rate '1/0s': a rate's period must be positive",
      message(function() return pacer.limiter{rate = "1/0s"} end))
  end)

  it("negative", function()
    assert.are.equal("pacer.limiter: rate must be a positive number, got -1.0",
      message(function() return pacer.limiter{rate = -1} end))
    assert.are.equal("pacer.limiter: invalid rate '-5/s': a rate must be positive",
      message(function() return pacer.limiter{rate = "-5/s"} end))
    assert.are.equal("pacer.mock: invalid rate '-1/s': a rate must be positive",
      message(function() return pacer.mock{rate = "-1/s"} end))
  end)

  it("'abc' and other strings that are not rates", function()
    local msg, full = message(function() local l = pacer.limiter{rate = "abc"}; return l end)
    assert.are.equal("pacer.limiter: invalid rate 'abc': " .. RATE_FORMS, msg)
    at_this_file(full)
    assert.are.equal("pacer.client: invalid rate 'abc': " .. RATE_FORMS,
      message(function() return pacer.client{rate = "abc"} end))
    assert.are.equal("pacer.client: invalid rate 'abc': " .. RATE_FORMS,
      message(function() return pacer.client{rules = {"10/s", "abc"}} end))
    assert.are.equal("pacer.mock: invalid rate 'abc': " .. RATE_FORMS,
      message(function() return pacer.mock{rate = "abc"} end))
    assert.are.equal("pacer.limiter: invalid rate '10 per second': " .. RATE_FORMS,
      message(function() return pacer.limiter{rate = "10 per second"} end))
    assert.are.equal("pacer.limiter: invalid rate '5/fortnight': unknown period (expected s, min, h, day or a duration)",
      message(function() return pacer.limiter{rate = "5/fortnight"} end))
    assert.are.equal("pacer.limiter: invalid rate '': " .. RATE_FORMS,
      message(function() return pacer.limiter{rate = ""} end))
  end)

  it("overflowing: 1e400/s (no exponents), 10^20/s, infinity", function()
    assert.are.equal("pacer.limiter: invalid rate '1e400/s': " .. RATE_FORMS,
      message(function() return pacer.limiter{rate = "1e400/s"} end))
    assert.are.equal("pacer.client: invalid rate '1e400/s': " .. RATE_FORMS,
      message(function() return pacer.client{rate = "1e400/s"} end))
    assert.are.equal("pacer.limiter: invalid rate '99999999999999999999/s': rate too large",
      message(function() return pacer.limiter{rate = "99999999999999999999/s"} end))
    assert.are.equal("pacer.limiter: invalid rate '2000000000/s': rate too large",
      message(function() return pacer.limiter{rate = "2000000000/s"} end))
    assert.are.equal("pacer.limiter: rate must be a positive number, got inf",
      message(function() return pacer.limiter{rate = math.huge} end))
  end)
end)

describe("durations: zero, negative, garbage, overflowing", function()
  local u = "http://127.0.0.1:1/"

  it("zero: a timeout must be greater than 0", function()
    assert.are.equal("pacer.request: option 'timeout' must be greater than 0",
      message(function() return pacer.request{url = u, timeout = 0} end))
    assert.are.equal("pacer.request: option 'connect_timeout' must be greater than 0",
      message(function() return pacer.request{url = u, connect_timeout = "0s"} end))
    assert.are.equal("pacer.every: interval must be a positive duration, got 0",
      message(function() return pacer.every(0, function() end) end))
    assert.are.equal("pacer.serve: 'header_timeout' must be positive",
      message(function() return pacer.serve{routes = {}, header_timeout = 0} end))
  end)

  it("negative", function()
    assert.are.equal("pacer.request: option 'timeout': invalid duration -1: must be between 0 and 1e9 seconds",
      message(function() return pacer.request{url = u, timeout = -1} end))
    assert.are.equal("pacer.request: option 'timeout': invalid duration '-1s': a duration must not be negative",
      message(function() return pacer.request{url = u, timeout = "-1s"} end))
    assert.are.equal("pacer.sleep: invalid duration -1: must be between 0 and 1e9 seconds",
      message(function() return pacer.sleep(-1) end))
    assert.are.equal("pacer.cache: option 'ttl': invalid duration -1: must be between 0 and 1e9 seconds",
      message(function() return pacer.cache{ttl = -1} end))
    assert.are.equal("pacer.queue: option 'retry_delay': invalid duration -1: must be between 0 and 1e9 seconds",
      message(function() return pacer.queue{retry_delay = -1} end))
    assert.are.equal("pacer.every: interval must be a positive duration, got -1s",
      message(function() return pacer.every("-1s", function() end) end))
  end)

  it("'abc' and unknown units", function()
    local msg, full = message(function() local r = pacer.request{url = u, timeout = "abc"}; return r end)
    assert.are.equal("pacer.request: option 'timeout': invalid duration 'abc': " .. DURATION_FORMS, msg)
    at_this_file(full)
    assert.are.equal("pacer.sleep: invalid duration 'abc': " .. DURATION_FORMS,
      message(function() return pacer.sleep("abc") end))
    assert.are.equal("pacer.cache: option 'ttl': invalid duration 'abc': " .. DURATION_FORMS,
      message(function() return pacer.cache{ttl = "abc"} end))
    assert.are.equal("pacer.queue: option 'retry_delay': invalid duration 'abc': " .. DURATION_FORMS,
      message(function() return pacer.queue{retry_delay = "abc"} end))
    assert.are.equal("pacer.batch: option 'interval': invalid duration 'abc': " .. DURATION_FORMS,
      message(function() return pacer.batch{send = function() end, interval = "abc"} end))
    assert.are.equal("pacer.request: option 'timeout': invalid duration '5 fortnights': unknown unit (expected ms, s, m, h or d)",
      message(function() return pacer.request{url = u, timeout = "5 fortnights"} end))
    assert.are.equal("cache:set: invalid duration 'abc': " .. DURATION_FORMS,
      message(function() return pacer.cache{}:set("k", "v", "abc") end))
  end)

  it("overflowing: 99999999999999999999h, 1e400, infinity", function()
    assert.are.equal("pacer.request: option 'timeout': invalid duration '99999999999999999999h': duration too large",
      message(function() return pacer.request{url = u, timeout = "99999999999999999999h"} end))
    assert.are.equal("pacer.sleep: invalid duration '99999999999999999999h': duration too large",
      message(function() return pacer.sleep("99999999999999999999h") end))
    assert.are.equal("pacer.cache: option 'ttl': invalid duration '99999999999999999999h': duration too large",
      message(function() return pacer.cache{ttl = "99999999999999999999h"} end))
    assert.are.equal("pacer.queue: option 'retry_delay': invalid duration '99999999999999999999h': duration too large",
      message(function() return pacer.queue{retry_delay = "99999999999999999999h"} end))
    assert.are.equal("pacer.request: option 'timeout': invalid duration '1e400': " .. DURATION_FORMS,
      message(function() return pacer.request{url = u, timeout = "1e400"} end))
    assert.are.equal("pacer.request: option 'timeout': invalid duration inf: must be between 0 and 1e9 seconds",
      message(function() return pacer.request{url = u, timeout = math.huge} end))
    assert.are.equal("pacer.sleep: invalid duration inf: must be between 0 and 1e9 seconds",
      message(function() return pacer.sleep(math.huge) end))
  end)
end)

describe("absurd Retry-After values from a pacer.serve route", function()
  local srv
  local hits = {}
  local TEN_YEARS = 10 * 365 * 86400
  setup(function()
    srv = pacer.serve{routes = {["GET /ra/*"] = function(req)
      local name = req.path:match("^/ra/(.*)$")
      hits[name] = (hits[name] or 0) + 1
      local value = ({
        negative = "-5",
        garbage = "soon, I promise",
        exponent = "1e3",
        zero = "0",
        decade = tostring(TEN_YEARS),
        decade_date = os.date("!%a, %d %b %Y %H:%M:%S GMT", math.floor(pacer.wall()) + TEN_YEARS),
        huge = "99999999999999999999999",
      })[name]
      if hits[name] >= 3 then return 200, {ok = true} end
      return 503, {error = "busy"}, {["Retry-After"] = value}
    end}}
  end)
  teardown(function() srv.close() end)

  -- the delays chosen before each retry; jitter "none" makes the backoff 0.01, 0.02
  local function run(name)
    local delays = {}
    local t0 = pacer.now()
    local res, err = pacer.request{url = srv.url .. "/ra/" .. name, retry = {base = 0.01, cap = 0.05,
      jitter = "none", on_retry = function(i) delays[#delays + 1] = i.delay end}}
    return res, err, delays, pacer.now() - t0
  end

  for _, name in ipairs{"negative", "garbage", "exponent"} do
    it("a " .. name .. " Retry-After is ignored and the normal backoff is used", function()
      local res, err, delays, took = run(name)
      assert.is_nil(err)
      assert.are.equal(200, res.status)
      assert.are.equal(3, res.attempts)
      assert.are.same({0.01, 0.02}, delays)
      assert.are.equal(3, hits[name])
      assert.is_true(took < 1, "took " .. took)
    end)
  end

  it("Retry-After: 0 is honoured: no wait at all (not the backoff)", function()
    local res, _, delays = run("zero")
    assert.are.equal(200, res.status)
    assert.are.same({0, 0}, delays)
  end)

  it("ten years in delta-seconds gives up at once: it passes max_time", function()
    local res, err, delays, took = run("decade")
    assert.is_nil(res)
    assert.are.equal("gave_up", err.kind)
    assert.are.equal(1, err.attempts)
    assert.are.equal(503, err.status)
    assert.are.equal("Retry-After (3.15e+08s) would pass max_time (300s)", err.reason)
    assert.are.equal("GET " .. srv.url .. "/ra/decade: gave up after 1 attempt (last: HTTP 503): "
      .. "Retry-After (3.15e+08s) would pass max_time (300s)", err.message)
    assert.are.same({}, delays)
    assert.are.equal(1, hits.decade)
    assert.is_true(took < 1, "took " .. took)
  end)

  it("ten years as an HTTP-date gives up at once too", function()
    local res, err = run("decade_date")
    assert.is_nil(res)
    assert.are.equal("gave_up", err.kind)
    assert.are.equal(1, err.attempts)
    assert.are.equal("Retry-After (3.15e+08s) would pass max_time (300s)", err.reason)
    assert.are.equal(1, hits.decade_date)
  end)

  it("a 23-digit Retry-After gives up at once, without overflowing", function()
    local res, err = run("huge")
    assert.is_nil(res)
    assert.are.equal("gave_up", err.kind)
    assert.are.equal("Retry-After (1e+23s) would pass max_time (300s)", err.reason)
    assert.are.equal(1, hits.huge)
  end)
end)

describe("bodies: not JSON, binary, NUL bytes", function()
  local srv
  local seen = {}
  setup(function()
    srv = pacer.serve{routes = {
      ["POST /echo"] = function(req)
        seen[#seen + 1] = #req.body
        return 200, req.body, {["Content-Type"] = "application/octet-stream"}
      end,
      ["POST /json"] = function(req)
        local v, err = req:json()
        return 200, {got = v, err = err}
      end,
      ["GET /html"] = function() return 502, "<html><body>Bad Gateway</body></html>\n", {["Content-Type"] = "text/html"} end,
      ["GET /empty"] = function() return 204 end,
      ["GET /nul"] = function() return 200, "\0\1\2 binary \0\255", {["Content-Type"] = "application/octet-stream"} end,
    }}
  end)
  teardown(function() srv.close() end)

  it("res:json() on an HTML error page names the request, status, size and start", function()
    local res = assert(pacer.request{url = srv.url .. "/html", retry = false})
    assert.are.equal(502, res.status)
    local msg, full = message(function() local v = res:json(); return v end)
    assert.are.equal(string.format("res:json(): the body of GET %s/html (HTTP 502, 38 bytes) is not valid JSON: "
      .. "Expected value but found invalid token at character 1; it starts \"<html><body>Bad Gateway</body></html>?\"",
      srv.url), msg)
    at_this_file(full)
  end)

  it("res:json() on an empty body", function()
    local res = assert(pacer.request{url = srv.url .. "/empty", retry = false})
    assert.are.equal(204, res.status)
    assert.are.equal(string.format("res:json(): the body of GET %s/empty (HTTP 204, 0 bytes) is not valid JSON: "
      .. "Expected value but found T_END at character 1; it starts \"\"", srv.url),
      message(function() return res:json() end))
  end)

  it("res:json() on a binary body shows control bytes as '?'", function()
    local res = assert(pacer.request{url = srv.url .. "/nul", retry = false})
    assert.are.equal("\0\1\2 binary \0\255", res.body)
    assert.are.equal(string.format("res:json(): the body of GET %s/nul (HTTP 200, 13 bytes) is not valid JSON: "
      .. "JSON parser does not support UTF-16 or UTF-32; it starts \"??? binary ?\255\"", srv.url),
      message(function() return res:json() end))
  end)

  it("req:json() in a route returns nil and a message for a body that is not JSON", function()
    local res = assert(pacer.request{method = "POST", url = srv.url .. "/json", body = "to=+15550100",
      headers = {["Content-Type"] = "application/json"}, retry = false})
    assert.are.same({err = "request body is not valid JSON"}, res:json())
  end)

  it("a binary body with NUL bytes goes through a route and back intact", function()
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local body = "\0head\0" .. table.concat(bytes) .. string.rep("\0", 4096) .. table.concat(bytes):reverse() .. "\0"
    local res = assert(pacer.request{method = "POST", url = srv.url .. "/echo", body = body, retry = false})
    assert.are.equal(200, res.status)
    assert.are.equal(#body, seen[#seen])
    assert.are.equal(#body, #res.body)
    assert.is_true(body == res.body, "the body came back changed")
    assert.are.equal(tostring(#body), res.headers["content-length"])
  end)
end)

describe("header injection: CR, LF and NUL", function()
  local srv
  local hits = 0
  setup(function()
    srv = pacer.serve{routes = {
      ["* /*"] = function() hits = hits + 1 return 200, "ok" end,
      ["GET /evil-value"] = function() return 200, "x", {["X-A"] = "a\r\nSet-Cookie: pwned=1"} end,
      ["GET /evil-name"] = function() return 200, "x", {["X-A\r\nSet-Cookie"] = "pwned=1"} end,
    }}
  end)
  teardown(function() srv.close() end)

  it("CR/LF or NUL in a request header value is refused before anything is sent", function()
    local before = hits
    for _, v in ipairs{"a\r\nX-Injected: 1", "a\rb", "a\nb", "a\0b"} do
      local msg, full = message(function()
        local r = pacer.request{url = srv.url .. "/h", headers = {["X-A"] = v}}; return r
      end)
      assert.are.equal("pacer.request: header 'X-A' contains CR, LF or NUL (header injection?)", msg)
      at_this_file(full)
    end
    assert.are.equal(before, hits)
  end)

  it("CR/LF or a colon in a request header name is refused", function()
    local before = hits
    assert.are.equal("pacer.request: invalid header name \"X-A\\\nX-Injected\" (header injection?)",
      message(function() return pacer.request{url = srv.url .. "/h", headers = {["X-A\nX-Injected"] = "1"}} end))
    assert.are.equal("pacer.request: invalid header name \"X-A:\" (header injection?)",
      message(function() return pacer.request{url = srv.url .. "/h", headers = {["X-A:"] = "1"}} end))
    assert.are.equal("pacer.request: invalid header name \"\" (header injection?)",
      message(function() return pacer.request{url = srv.url .. "/h", headers = {[""] = "1"}} end))
    assert.are.equal(before, hits)
  end)

  it("CR/LF in an idempotency key, a method, a URL or a query string is refused", function()
    local before = hits
    assert.are.equal("pacer.request: header 'Idempotency-Key' contains CR, LF or NUL (header injection?)",
      message(function() return pacer.request{method = "POST", url = srv.url .. "/h", body = "x",
        idempotency_key = "k1\r\nX-Injected: 1"} end))
    assert.are.equal("pacer.request: invalid method \"GET\\13\\\nX: 1\"",
      message(function() return pacer.request{url = srv.url .. "/h", method = "GET\r\nX: 1"} end))
    assert.are.equal("pacer.request: invalid URL '" .. srv.url .. "/h\r\nX-Injected: 1': Bad path",
      message(function() return pacer.request{url = srv.url .. "/h\r\nX-Injected: 1"} end))
    assert.are.equal("pacer.request: invalid URL '" .. srv.url .. "/h?a=1\r\nX: 1': Bad query",
      message(function() return pacer.request{url = srv.url .. "/h", query = "a=1\r\nX: 1"} end))
    local api = pacer.client{base_url = srv.url}
    assert.are.equal("api:get: header 'X-A' contains CR, LF or NUL (header injection?)",
      message(function() return api:get("/h", {headers = {["X-A"] = "a\r\nb"}}) end))
    assert.are.equal(before, hits)
  end)

  it("a query table with CR/LF is percent-encoded, not injected", function()
    local res = assert(pacer.request{url = srv.url .. "/q", query = {a = "1\r\nX-Injected: 1"}, retry = false})
    assert.are.equal(200, res.status)
    assert.is_nil(res.headers["x-injected"])
  end)

  it("a route answering with CR/LF in a header value or name gets a 500, not a split response", function()
    for _, path in ipairs{"/evil-value", "/evil-name"} do
      local res = assert(pacer.request{url = srv.url .. path, retry = false})
      assert.are.equal(500, res.status, path)
      assert.are.same({error = "internal error"}, res:json())
      assert.is_nil(res.headers["set-cookie"])
    end
  end)
end)

describe("URLs with credentials", function()
  local srv
  setup(function()
    srv = pacer.serve{routes = {["GET /who"] = function(req)
      return 200, "plain text, not json", {["X-Auth-Seen"] = req.headers["authorization"] or "none"}
    end}}
  end)
  teardown(function() srv.close() end)

  it("are used on the wire but redacted in tostring(res) and res:json() errors", function()
    local u = "http://alice:s3cret@127.0.0.1:" .. srv.port .. "/who?token=t0k3n&page=2"
    local res = assert(pacer.request{url = u, retry = false})
    assert.are.equal(200, res.status)
    assert.are.equal("Basic YWxpY2U6czNjcmV0", res.headers["x-auth-seen"]) -- alice:s3cret
    local s = tostring(res)
    assert.truthy(s:find("^<response 200 GET http://%*%*%*@127%.0%.0%.1:" .. srv.port
      .. "/who%?token=%*%*%*&page=2, 20 bytes in %d+%.%d+s>$"), s)
    local msg = message(function() return res:json() end)
    contains(msg, "GET http://***@127.0.0.1:" .. srv.port .. "/who?token=***&page=2 (HTTP 200, 20 bytes)")
    lacks(msg, "s3cret")
    lacks(msg, "t0k3n")
  end)

  it("are redacted in err.message and err.url after retries", function()
    local port = H.free_port()
    local u = "http://alice:s3cret@127.0.0.1:" .. port .. "/x?api_key=k3y"
    local res, err = pacer.request{url = u, retry = {base = 0.01, cap = 0.01, max_tries = 2}}
    assert.is_nil(res)
    assert.are.equal("connect", err.kind)
    assert.are.equal(2, err.attempts)
    local redacted = "http://***@127.0.0.1:" .. port .. "/x?api_key=***"
    assert.are.equal(redacted, err.url)
    assert.are.equal("GET " .. redacted .. ": Failed to connect to 127.0.0.1 port " .. port .. " after ",
      err.message:sub(1, #("GET " .. redacted .. ": Failed to connect to 127.0.0.1 port " .. port .. " after ")))
    lacks(err.message, "s3cret")
    lacks(err.message, "k3y")
  end)

  it("are redacted in an invalid-URL message and a DNS failure", function()
    assert.are.equal("pacer.request: invalid URL 'htp://***@127.0.0.1/': Unsupported URL scheme",
      message(function() return pacer.request{url = "htp://alice:s3cret@127.0.0.1/"} end))
    local _, err = pacer.request{url = "http://alice:s3cret@no-such-host.invalid/x", retry = false, timeout = 5}
    assert.are.equal("dns", err.kind)
    assert.are.equal("GET http://***@no-such-host.invalid/x: Could not resolve host: no-such-host.invalid",
      err.message)
  end)

  it("never reach --events, --stats, -v retry lines or the summary (subprocess)", function()
    local dir = os.tmpname()
    local path = script([[
local mock = pacer.mock{rate = "100/s"}
local base = mock.url:gsub("^http://", "http://alice:s3cret@") .. "/v2"
local api = pacer.client{base_url = base, rate = "100/s", retry = {base = 0.01, cap = 0.01, max_tries = 2}}
assert(api:get("/numbers", {query = {page = 1, access_token = "t0k3n"}}))
local dead = "http://alice:s3cret@127.0.0.1:]] .. H.free_port() .. [[/x?password=hunter2"
local _, err = pacer.request{url = dead, retry = {base = 0.01, cap = 0.01, max_tries = 2}}
print(err.kind, err.attempts)
]])
    local r = H.run_pacer{"-v", "--events", dir .. ".events", "--stats", dir .. ".stats", path}
    local events = H.read_file(dir .. ".events") or ""
    local stats = H.read_file(dir .. ".stats") or ""
    os.remove(dir .. ".events")
    os.remove(dir .. ".stats")
    os.remove(dir)
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("connect\t2\n", r.stdout)
    -- every place a URL is printed: redacted, and the URL is still recognisable
    contains(events, "http:\\/\\/***@127.0.0.1:")
    contains(events, "access_token=***")
    contains(r.stderr, "pacer: retry 1/1 of GET http://***@127.0.0.1:")
    contains(r.stderr, "pacer: quota left at http://***@127.0.0.1:")
    contains(r.stderr, "pacer: 3 requests in ")
    for _, secret in ipairs{"s3cret", "t0k3n", "hunter2"} do
      lacks(events, secret)
      lacks(stats, secret)
      lacks(r.stderr, secret)
    end
  end)
end)

describe("errors inside callbacks", function()
  it("a pacer.each callback: that item fails with its error, the others finish", function()
    local ran = {}
    local results = pacer.each({1, 2, 3, 4}, function(i)
      ran[#ran + 1] = i
      pacer.sleep(0.01)
      if i == 2 then error("item two broke") end
      return i * 10
    end, {concurrency = 2, progress = false, on_error = "return"})
    assert.are.equal(4, #ran)
    assert.are.same({ok = true, value = 10}, results[1])
    assert.is_false(results[2].ok)
    local msg, full = results[2].err:gsub("^[^\n]-:%d+: ", ""), results[2].err
    assert.are.equal("item two broke", msg)
    at_this_file(full)
    assert.are.same({ok = true, value = 30}, results[3])
    assert.are.same({ok = true, value = 40}, results[4])
  end)

  it("a cache loader returning nil, err: every waiting task gets the error; it is not cached", function()
    local c = pacer.cache{}
    local calls = 0
    local function loader()
      calls = calls + 1
      pacer.sleep(0.05)
      return nil, "upstream said no"
    end
    local tasks = {}
    for i = 1, 3 do tasks[i] = pacer.spawn(function() return c:fetch("numbers", loader) end) end
    for i = 1, 3 do
      local ok, v, err = tasks[i]:wait()
      assert.is_true(ok)
      assert.is_nil(v)
      assert.are.equal("upstream said no", err)
    end
    assert.are.equal(1, calls)
    assert.is_nil(c:get("numbers"))
    local v, err = c:fetch("numbers", loader)
    assert.is_nil(v)
    assert.are.equal("upstream said no", err)
    assert.are.equal(2, calls)
  end)

  it("a cache loader that raises or returns nothing: fetch returns nil and the reason", function()
    local c = pacer.cache{}
    local v, err = c:fetch("a", function() error("loader blew up") end)
    assert.is_nil(v)
    assert.are.equal("loader blew up", (err:gsub("^[^\n]-:%d+: ", "")))
    at_this_file(err)
    v, err = c:fetch("b", function() end)
    assert.is_nil(v)
    assert.are.equal("loader returned nil", err)
    assert.are.equal(0, #c)
  end)

  it("a queue worker: the item is retried, then kept as a dead letter; the others are done", function()
    local q = pacer.queue{max_attempts = 2}
    for _, item in ipairs{"a", "bad", "c"} do q:push(item) end
    q:close()
    local tries = {}
    local r = q:work(2, function(item, attempt)
      tries[#tries + 1] = item .. attempt
      if item == "bad" then error("cannot send " .. item .. " (attempt " .. attempt .. ")") end
    end, {on_error = "return"})
    assert.are.same({done = 2, failed = 1}, r)
    local dead = q:dead()
    assert.are.equal(1, #dead)
    assert.are.equal("bad", dead[1].item)
    assert.are.equal(2, dead[1].attempts)
    assert.are.equal("cannot send bad (attempt 2)", (dead[1].err:gsub("^[^\n]-:%d+: ", "")))
    at_this_file(dead[1].err)
    table.sort(tries)
    assert.are.same({"a1", "bad1", "bad2", "c1"}, tries)
  end)

  it("a route handler: 500 for that request, the server keeps answering", function()
    local srv = pacer.serve{routes = {
      ["GET /boom"] = function() error("route exploded") end,
      ["GET /fine"] = function() return 200, "fine" end,
    }}
    local a = assert(pacer.request{url = srv.url .. "/boom", retry = false})
    local b = assert(pacer.request{url = srv.url .. "/fine", retry = false})
    srv.close()
    assert.are.equal(500, a.status)
    assert.are.same({error = "internal error"}, a:json())
    assert.are.equal(200, b.status)
    assert.are.equal("fine", b.body)
  end)

  it("a route handler's error is printed with file:line and a traceback (subprocess)", function()
    local path = script([[
local srv = pacer.serve{routes = {["GET /boom"] = function()
  error("route exploded")
end}}
local res = assert(pacer.request{url = srv.url .. "/boom", retry = false})
srv.close()
print(res.status)
]])
    local r = H.run_pacer{"-q", path}
    assert.are.equal(0, r.code)
    assert.are.equal("500\n", r.stdout)
    contains(r.stderr, "pacer: error: handler for GET /boom failed: " .. path .. ":2: route exploded\nstack traceback:")
  end)

  it("an alert action: the failure is logged and the job goes on (subprocess)", function()
    local path = script([[
local mock = pacer.mock{rate = "100/s"}
local calls = 0
local api = pacer.client{base_url = mock.url .. "/v2", alerts = {
  pacer.alert.quota{below = 1, action = function(info)
    calls = calls + 1
    error("pager is down")
  end}}}
for i = 1, 3 do assert(api:get("/numbers")) pacer.sleep(0.02) end
print("job done", calls)
]])
    local r = H.run_pacer{"-q", path}
    assert.are.equal(0, r.code)
    assert.are.equal("job done\t1\n", r.stdout)
    assert.are.equal("pacer: error: alert action failed: " .. path .. ":6: pager is down\n", r.stderr)
  end)

  it("a spawned task: reported with its traceback, the others finish, exit 1 (subprocess)", function()
    local path = script([[
local mock = pacer.mock{rate = "100/s"}
local t = pacer.spawn(function()
  local res = assert(pacer.request{url = mock.url .. "/v2/numbers", retry = false})
  local body = res:json()
  error(#body.numbers .. " numbers were not what I wanted")
end)
pacer.spawn(function() pacer.sleep(0.1) print("other task done") end)
]])
    local r = H.run_pacer{"-q", path}
    assert.are.equal(1, r.code)
    assert.are.equal("other task done\n", r.stdout)
    contains(r.stderr, "pacer: task failed: " .. path .. ":5: 50 numbers were not what I wanted\nstack traceback:")
    contains(r.stderr, path .. ":5: in function <" .. path .. ":2>")
  end)
end)
