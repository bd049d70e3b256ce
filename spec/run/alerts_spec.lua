-- spec/run/alerts_spec.lua: pacer.alert: the quota alert (fires once below `below`, re-arms
-- above `rearm_above`), the exhaustion alert, event alerts ("throttled", "giveup", ...)
-- with a cooldown; the actions: a function, "log", {webhook = url}, {exec = argv}; a
-- failing action is logged and the job goes on; bad definitions raise. Servers are
-- pacer.serve listeners on 127.0.0.1 whose RateLimit headers the test sets per request.
-- Runs inside the pacer host: ./build/pacer tools/busted.lua -o TAP spec/run/alerts_spec.lua

local H = dofile("spec/support/helpers.lua")

local message = H.message

-- actions run in their own tasks: wait (bounded: 1 s) until `n` calls were collected
local function wait_calls(calls, n)
  for _ = 1, 50 do
    if #calls >= n then break end
    pacer.sleep(0.02)
  end
  pacer.sleep(0.05) -- and give a wrong extra call the chance to show up
end

local script = H.script
teardown(H.remove_scripts)

describe("pacer.alert.quota and exhaustion", function()
  local srv
  local quota -- {remaining, limit, reset} for the next answer
  local throttle

  setup(function()
    srv = pacer.serve{routes = {["GET /q"] = function()
      local h = {["RateLimit-Limit"] = tostring(quota[2]), ["RateLimit-Remaining"] = tostring(quota[1]),
        ["RateLimit-Reset"] = tostring(quota[3] or 600)}
      if throttle then h["Retry-After"] = "0" return 429, "slow", h end
      return 200, "ok", h
    end}}
  end)
  teardown(function() srv.close() end)
  before_each(function() throttle = false end)

  -- one request per entry of `remaining` (out of 100); returns the calls of the action
  local function drive(alert, remaining, calls)
    local api = pacer.client{base_url = srv.url, name = "svc", alerts = {alert}, retry = false}
    local fired = {}
    for i, r in ipairs(remaining) do
      quota = {r, 100}
      assert(api:get("/q"))
      pacer.sleep(0.01) -- let an action task run
      fired[i] = #calls
    end
    return fired
  end

  it("fires once below `below` and not again until the share rose above rearm_above", function()
    local calls = {}
    local a = pacer.alert.quota{below = 0.2, rearm_above = 0.5, action = function(info) calls[#calls + 1] = info end}
    --                 50  19  10  30  45  15  60  18   5
    local fired = drive(a, {50, 19, 10, 30, 45, 15, 60, 18, 5}, calls)
    assert.are.same({0, 1, 1, 1, 1, 1, 1, 2, 2}, fired)
    wait_calls(calls, 2)
    assert.are.equal(2, #calls)
    assert.are.equal("svc: quota low: 19 of 100 left (19%)", calls[1].message)
    assert.are.equal("quota", calls[1].alert)
    assert.are.equal("svc", calls[1].client)
    assert.are.equal(19, calls[1].remaining)
    assert.are.equal(100, calls[1].limit)
    assert.are.equal("svc: quota low: 18 of 100 left (18%)", calls[2].message)
  end)

  it("fires at exactly `below`, and re-arms at the default 2.5 x below", function()
    local calls = {}
    local a = pacer.alert.quota{below = 0.1, action = function(info) calls[#calls + 1] = info end}
    --                 11  10   5  24   8  25   9
    local fired = drive(a, {11, 10, 5, 24, 8, 25, 9}, calls)
    assert.are.same({0, 1, 1, 1, 1, 1, 2}, fired)
  end)

  it("looks at quotas of 429 answers too", function()
    local calls = {}
    local a = pacer.alert.quota{below = 0.1, action = function(info) calls[#calls + 1] = info end}
    local api = pacer.client{base_url = srv.url, name = "svc", alerts = {a}, retry = false}
    throttle = true
    quota = {0, 100}
    local res = assert(api:get("/q"))
    assert.are.equal(429, res.status)
    wait_calls(calls, 1)
    assert.are.equal(1, #calls)
    assert.are.equal("svc: quota low: 0 of 100 left (0%)", calls[1].message)
  end)

  it("the exhaustion alert fires when the pace would run the quota out within `within`", function()
    local calls = {}
    local a = pacer.alert.exhaustion{within = 10, action = function(info) calls[#calls + 1] = info end}
    local api = pacer.client{base_url = srv.url, name = "svc", alerts = {a}, retry = false}
    quota = {500, 1000, 60} -- 1 request in the last second: 500 s to go, past the reset
    assert(api:get("/q"))
    pacer.sleep(0.02)
    assert.are.equal(0, #calls)
    quota = {6, 1000, 60} -- 2 in the last second: 3 s to go
    assert(api:get("/q"))
    quota = {5, 1000, 60}
    assert(api:get("/q"))
    wait_calls(calls, 1)
    assert.are.equal(1, #calls)
    assert.are.equal("svc: quota runs out in 3s at this pace", calls[1].message)
    assert.are.equal("exhaustion", calls[1].alert)
    assert.are.equal(3, calls[1].exhausts_in)
    assert.are.equal(6, calls[1].remaining)
    -- re-armed once it is no longer close, then fires again
    quota = {900, 1000, 60}
    assert(api:get("/q"))
    quota = {4, 1000, 60}
    assert(api:get("/q"))
    wait_calls(calls, 2)
    assert.are.equal(2, #calls)
  end)
end)

describe("pacer.alert.on", function()
  local srv
  local hooks -- bodies POSTed to /hook
  local hook_status

  setup(function()
    srv = pacer.serve{routes = {
      ["GET /429"] = function() return 429, "slow" end,
      ["GET /503"] = function() return 503, "down" end,
      ["GET /ok"] = function() return 200, "ok" end,
      ["POST /hook"] = function(req)
        hooks[#hooks + 1] = {body = req.body, type = req.headers["content-type"]}
        return hook_status, "hook"
      end,
    }}
  end)
  teardown(function() srv.close() end)
  before_each(function() hooks, hook_status = {}, 200 end)

  local function client(alerts, extra)
    local o = {base_url = srv.url, name = "svc", alerts = alerts, retry = false}
    for k, v in pairs(extra or {}) do o[k] = v end
    return pacer.client(o)
  end

  it("calls a function on each event, at most once per cooldown", function()
    local calls = {}
    local api = client{pacer.alert.on("throttled", function(info) calls[#calls + 1] = info end, {cooldown = 0.3})}
    assert.are.equal(429, api:get("/429").status)
    assert.are.equal(429, api:get("/429").status) -- within the cooldown
    wait_calls(calls, 1)
    assert.are.equal(1, #calls)
    assert.are.equal("svc: throttled (429) on GET " .. srv.url .. "/429", calls[1].message)
    assert.are.equal("event", calls[1].alert)
    assert.are.equal("throttled", calls[1].event)
    assert.are.equal("svc", calls[1].client)
    pacer.sleep(0.3)
    assert.are.equal(429, api:get("/429").status) -- after it
    wait_calls(calls, 2)
    assert.are.equal(2, #calls)
  end)

  it("without a cooldown, every event counts; other events do not", function()
    local calls = {}
    local api = client{pacer.alert.on("throttled", function(info) calls[#calls + 1] = info end)}
    for _ = 1, 3 do api:get("/429") end
    api:get("/503")
    api:get("/ok")
    wait_calls(calls, 3)
    assert.are.equal(3, #calls)
  end)

  it("giveup fires when the retry policy gives up", function()
    local calls = {}
    local api = client({pacer.alert.on("giveup", function(info) calls[#calls + 1] = info end)},
      {retry = {max_tries = 2, base = 0.01, cap = 0.02}})
    local res, err = api:get("/503")
    assert.is_nil(res)
    assert.are.equal("gave_up", err.kind)
    wait_calls(calls, 1)
    assert.are.equal(1, #calls)
    assert.are.equal("svc: gave up: max_tries (2) reached", calls[1].message)
    assert.are.equal("max_tries (2) reached", calls[1].reason)
  end)

  it("{webhook = url} POSTs JSON with a text field", function()
    local api = client{pacer.alert.on("throttled", {webhook = srv.url .. "/hook"})}
    api:get("/429")
    wait_calls(hooks, 1)
    assert.are.equal(1, #hooks)
    assert.are.equal("application/json", hooks[1].type)
    local body = pacer.json.decode(hooks[1].body)
    assert.are.equal("pacer: svc: throttled (429) on GET " .. srv.url .. "/429", body.text)
    assert.are.equal("event", body.alert)
    assert.are.equal("throttled", body.event)
    assert.are.equal("svc", body.client)
  end)

  it("{exec = argv} runs the command with the message in PACER_ALERT", function()
    local out = os.tmpname()
    local api = client{pacer.alert.on("throttled", {exec = {"sh", "-c", "echo \"$PACER_ALERT\" > " .. out}})}
    api:get("/429")
    local text
    for _ = 1, 50 do -- bounded: 1 s
      text = H.read_file(out)
      if text and text ~= "" then break end
      pacer.sleep(0.02)
    end
    os.remove(out)
    assert.are.equal("svc: throttled (429) on GET " .. srv.url .. "/429\n", text)
  end)
end)

describe("alert actions in a subprocess", function()
  local JOB = [[
local srv = pacer.serve{routes = {
  ["GET /429"] = function() return 429, "slow" end,
  ["GET /ok"] = function() return 200, "ok" end,
  ["POST /hook"] = function() return 500, "broken" end,
}}
local api = pacer.client{base_url = srv.url, name = "svc", retry = false, alerts = {%s}}
api:get("/429")
pacer.sleep(0.2)
local res = api:get("/ok")
print("after the alert: " .. res.status)
srv.close()
]]

  -- with `loud`, no -q (which keeps warnings off stderr, errors still go)
  local function run(alerts, loud)
    local r = H.run_pacer({loud and "--progress=off" or "-q", script(JOB:format(alerts))}, {timeout = 20})
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("after the alert: 200\n", r.stdout)
    return r
  end

  it("\"log\" writes a warning on stderr", function()
    local r = run('pacer.alert.on("throttled", "log")', true)
    assert.is_truthy(r.stderr:find("pacer: warning: alert: svc: throttled %(429%) on GET http://127.0.0.1:%d+/429\n"),
      r.stderr)
  end)

  it("a function that errors is logged as a failed action", function()
    local r = run('pacer.alert.on("throttled", function() error("boom", 0) end)')
    assert.are.equal("pacer: error: alert action failed: boom\n", r.stderr)
  end)

  it("a webhook answering 500 is logged as a failed action", function()
    local r = run('pacer.alert.on("throttled", {webhook = srv.url .. "/hook"})')
    assert.are.equal("pacer: error: alert action failed: webhook answered HTTP 500\n", r.stderr)
  end)

  it("a command that fails is logged as a failed action", function()
    local r = run('pacer.alert.on("throttled", {exec = {"false"}})')
    assert.are.equal("pacer: error: alert action failed: 'false' exited 1\n", r.stderr)
  end)
end)

describe("bad alert definitions", function()
  it("raise with the function and what is wrong", function()
    assert.are.equal("pacer.alert.on: unknown event 'quota' (known: circuit_open, giveup, key_retired, throttled)",
      message(function() pacer.alert.on("quota", "log") end))
    assert.are.equal("pacer.alert.on: unknown event 'nil' (known: circuit_open, giveup, key_retired, throttled)",
      message(function() pacer.alert.on(nil, "log") end))
    local bad = "pacer.alert.on: action must be a function, \"log\", {webhook = url}, {exec = argv} or {email = {...}}"
    assert.are.equal(bad, message(function() pacer.alert.on("throttled", 42) end))
    assert.are.equal(bad, message(function() pacer.alert.on("throttled", "warn") end))
    assert.are.equal(bad, message(function() pacer.alert.on("throttled", {webhook = 5}) end))
    assert.are.equal(bad, message(function() pacer.alert.on("throttled", {exec = "echo hi"}) end))
    assert.are.equal(bad, message(function() pacer.alert.on("giveup", {email = "ops@example.com"}) end))
    assert.are.equal("pacer.alert.quota: action must be a function, \"log\", {webhook = url}, {exec = argv} or " ..
      "{email = {...}}",
      message(function() pacer.alert.quota{action = true} end))
    assert.are.equal("pacer.alert.exhaustion: email needs 'url'",
      message(function() pacer.alert.exhaustion{action = {email = {from = "a@x", to = "b@x"}}} end))
    assert.are.equal("pacer.alert.on: email 'url' must be smtp://host:port or smtps://host:port",
      message(function() pacer.alert.on("giveup", {email = {url = "http://x", from = "a@x", to = "b@x"}}) end))
    assert.are.equal("pacer.alert.on: email from, to and subject must be strings without CR or LF",
      message(function()
        pacer.alert.on("giveup", {email = {url = "smtp://x", from = "a@x", to = "b@x", subject = "x\r\nBcc: c@x"}})
      end))
    assert.are.equal("pacer.alert.quota: 'below' is a fraction of the quota (0..1, e.g. 0.10 for 10%), got 10",
      message(function() pacer.alert.quota{below = 10} end))
    assert.are.equal("pacer.alert.quota: 'rearm_above' is a fraction of the quota (0..1, e.g. 0.10 for 10%), got 25",
      message(function() pacer.alert.quota{rearm_above = 25} end))
    assert.are.equal("pacer.alert.quota: rearm_above (0.2) must be >= below (0.5)",
      message(function() pacer.alert.quota{below = 0.5, rearm_above = 0.2} end))
    assert.are.equal("pacer.alert.quota: unknown option 'above' (known: action, below, rearm_above)",
      message(function() pacer.alert.quota{above = 0.5} end))
    assert.are.equal("pacer.alert.on: unknown option 'every' (known: cooldown)",
      message(function() pacer.alert.on("giveup", "log", {every = 5}) end))
    assert.are.equal("pacer.client: alerts[2] is not a pacer.alert",
      message(function() pacer.client{alerts = {pacer.alert.on("giveup"), {kind = "event"}}} end))
  end)
end)

describe("alert actions regressions", function()
  it("an exec action does not stop the loop while its command runs", function()
    local srv = pacer.serve{routes = {["GET /429"] = function() return 429, "slow down" end}}
    local api = pacer.client{base_url = srv.url, retry = false,
      alerts = {pacer.alert.on("throttled", {exec = {"sleep", "1"}})}}
    api:get("/429")
    local t = pacer.now()
    pacer.sleep(0.01)
    local took = pacer.now() - t
    srv.close()
    assert.is_true(took < 0.5, "a 10 ms sleep took " .. took .. " s")
  end)
end)
