-- What a run leaves behind: the summary, --stats, --events, progress modes, log levels,
-- and never a secret in any of them.
local H = dofile("spec/support/helpers.lua")

local function tmp(ext)
  local p = os.tmpname()
  os.remove(p)
  return p .. ext
end

describe("run outputs", function()
  it("never print a key, a token or a secret query value, whatever the verbosity", function()
    local script = H.script([[
local mock = pacer.mock{rate = "50/s", key = "sk_live_TOPSECRET", fail = 0.3}
local api = pacer.client{base_url = "http://user:hunter2@127.0.0.1:" .. mock.port .. "/v2",
  headers = {["X-Auth-Token"] = "sk_live_TOPSECRET", Authorization = "Bearer tok_SECRET2"},
  rate = "50/s", retry = {base = 0.01, cap = 0.05, max_tries = 2}}
for i = 1, 20 do
  local res, err = api:get("/numbers", {query = {api_key = "qk_SECRET3", page = i}})
  if not res then print(err.message) else print(tostring(res)) end
end
local _, err = api:get("/numbers", {timeout = 0.001, query = {token = "qk_SECRET3"}})
print(err and err.message)
mock:close()
]])
    local events, statsf = tmp(".jsonl"), tmp(".json")
    local r = H.run_pacer({"-vv", "--events", events, "--stats", statsf, script}, {timeout = 60})
    os.remove(script)
    assert.are.equal(0, r.code, r.stderr)
    local all = r.stdout .. r.stderr .. (H.read_file(events) or "") .. (H.read_file(statsf) or "")
    os.remove(events) os.remove(statsf)
    for _, secret in ipairs{"sk_live_TOPSECRET", "tok_SECRET2", "qk_SECRET3", "hunter2"} do
      assert.is_nil(all:find(secret, 1, true), secret .. " leaked into the output")
    end
    assert.matches("http://***@127.0.0.1", all, 1, true)
    assert.matches("api_key=***", all, 1, true)
  end)

  it("never print a JWT, an OAuth2 client secret or token, whatever the verbosity", function()
    local script = H.script([[
local pretty = require "pacer.repl.pretty"
local n = 0
local srv = pacer.serve{port = 0, routes = {
  ["POST /token"] = function(req)
    n = n + 1
    if n == 1 then return 400, {error = "invalid_request", echo = req.body} end -- a server that echoes secrets
    return 200, {access_token = "at_OAUTHSECRET4", expires_in = 60}
  end,
  ["GET /api"] = function(req)
    if req.headers.authorization == "Bearer at_OAUTHSECRET4" and n == 2 then n = 3 return 401, "" end
    return 200, {seen = req.headers.authorization ~= nil}
  end}}
local oauth = pacer.auth.oauth2{token_url = srv.url .. "/token", client_id = "cid", client_secret = "cs_OAUTHSECRET5",
  retry = false}
local jwt = pacer.auth.jwt{alg = "HS256", key = "hs_JWTSECRET6"}
local api = pacer.client{base_url = srv.url, auth = oauth, retry = {base = 0.01, max_tries = 2}}
for _ = 1, 3 do
  local res, err = api:get("/api")
  print(res and tostring(res) or err.message)
end
local res = api:get("/api", {auth = jwt})
print(pretty.show(res, oauth, jwt, pacer.auth.bearer("tok_BEARERSECRET7"))) -- as the REPL echoes them
print(pretty.table(api:stats()), pretty.table(pacer.stats()))
srv:close()
]])
    local events, statsf = tmp(".jsonl"), tmp(".json")
    local r = H.run_pacer({"-vv", "--events", events, "--stats", statsf, script}, {timeout = 60})
    os.remove(script)
    assert.are.equal(0, r.code, r.stderr)
    local all = r.stdout .. r.stderr .. (H.read_file(events) or "") .. (H.read_file(statsf) or "")
    os.remove(events) os.remove(statsf)
    for _, secret in ipairs{"at_OAUTHSECRET4", "cs_OAUTHSECRET5", "hs_JWTSECRET6", "eyJ", "tok_BEARERSECRET7"} do
      assert.is_nil(all:find(secret, 1, true), secret .. " leaked into the output")
    end
    assert.matches("answered HTTP 400 (invalid_request)", all, 1, true)
    assert.matches("pacer%.auth%.oauth2 %(http://127%.0%.0%.1:%d+/token, %*%*%*%)", all)
  end)

  it("--stats writes the summary as JSON; -q prints nothing but errors", function()
    local statsf = tmp(".json")
    local r = H.run_pacer({"-q", "--stats", statsf, "scripts/demo.lua", "20", "20"}, {timeout = 60})
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("", r.stderr)
    local s = pacer.json.decode(H.read_file(statsf))
    os.remove(statsf)
    assert.are.equal("ok", s.outcome)
    assert.are.equal(20, s.requests)
    assert.are.equal(20, s.by_status["200"])
    assert.are.equal(0, s.throttled)
    assert.are.equal(20, s.rate)
    assert.is_true(s.ratio > 0.8 and s.ratio < 1.5, "ratio " .. s.ratio)
  end)

  it("--progress=plain prints progress lines for logs; off prints none", function()
    local r = H.run_pacer({"--progress=plain", "scripts/demo.lua", "20", "20"}, {timeout = 60})
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("progress: sms 20/20 100%%", r.stderr)
    r = H.run_pacer({"--progress=off", "scripts/demo.lua", "20", "20"}, {timeout = 60})
    assert.is_nil(r.stderr:find("progress:", 1, true))
    r = H.run_pacer({"--progress=fancy", "scripts/demo.lua"})
    assert.are.equal(2, r.code)
    assert.matches("pacer: --progress takes auto, plain or off, not 'fancy'", r.stderr, 1, true)
  end)

  it("-v logs each retry; PACER_LOG=error hides warnings", function()
    local script = H.script([[
local mock = pacer.mock{fail = 1}
pacer.request{url = mock.url .. "/v2/numbers", retry = {base = 0.01, max_tries = 2}}
pacer.request{url = "https://127.0.0.1:1/", verify = false, retry = false}
mock:close()
]])
    local r = H.run_pacer({"-v", script})
    assert.matches("pacer: retry 1/1 of GET http://127.0.0.1:%d+/v2/numbers in [%d.e-]+s after HTTP 50[03]", r.stderr)
    assert.matches("pacer: warning: TLS verification is off for https://127.0.0.1:1/", r.stderr, 1, true)
    r = H.run_pacer({script}, {env = "PACER_LOG=error"})
    os.remove(script)
    assert.is_nil(r.stderr:find("warning", 1, true))
    assert.is_nil(r.stderr:find("retry 1/1", 1, true))
  end)

  it("prints the summary with the quota left and the ratio to N/R", function()
    local r = H.run_pacer({"scripts/demo.lua", "20", "20"}, {timeout = 60})
    assert.matches("pacer: 20 requests in [%d.]+s: 20 ok, 0 failed, 0 retries, 0 throttled %(429%)", r.stderr)
    assert.matches("pacer: by status: 200×20", r.stderr, 1, true)
    assert.matches("pacer: quota left at http://127.0.0.1:%d+/v2: %d+ of 20", r.stderr)
    assert.matches("pacer: makespan [%d.]+s vs ideal N/R 1.00s at 20/s: ratio [%d.]+", r.stderr)
  end)

  it("an unwritable --events or --stats is a command-line error, before the script runs", function()
    local marker = os.tmpname()
    os.remove(marker)
    local script = H.script(string.format("io.open(%q, 'w'):close()", marker))
    for _, opt in ipairs{"--events", "--stats"} do
      local r = H.run_pacer({opt, "/nonexistent-dir/out.json", script})
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("pacer: " .. opt .. ": cannot write '/nonexistent-dir/out.json': No such file or directory",
        r.stderr, 1, true)
      assert.is_nil(io.open(marker), "the script ran although " .. opt .. " could not be written")
    end
    os.remove(script)
  end)

  it("a failure to write --events mid-run is one warning and never changes a result", function()
    local script = H.script([[
local mock = pacer.mock{}
local n = 0
for _ = 1, 5 do if assert(pacer.request{url = mock.url .. "/v2/numbers"}).status == 200 then n = n + 1 end end
print("ok " .. n)
mock:close()
]])
    local r = H.run_pacer({"--events", "/dev/full", script})
    os.remove(script)
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("ok 5", r.stdout, 1, true)
    local _, warnings = r.stderr:gsub("warning: %-%-events", "")
    assert.are.equal(1, warnings, r.stderr)
  end)

  it("--events appends, each run starting with a run marker", function()
    local events = os.tmpname()
    os.remove(events)
    for _ = 1, 2 do
      assert.are.equal(0, H.run_pacer({"-q", "--events", events, "scripts/demo.lua", "3", "50"}, {timeout = 60}).code)
    end
    local markers, attempts = 0, 0
    for line in io.lines(events) do
      local e = pacer.json.decode(line)
      if e.run then markers = markers + 1 elseif e.t then attempts = attempts + 1 end
    end
    os.remove(events)
    assert.are.equal(2, markers)
    assert.is_true(attempts >= 6, "attempts " .. attempts)
  end)

  it("--events - and --stats - write to stdout, in order with what the script prints", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    local script = H.script([[
local mock = pacer.mock{}
print("before")
assert(pacer.request{url = mock.url .. "/v2/numbers"})
print("after")
mock:close()
]])
    -- run from an empty directory: nothing named '-' may appear in it
    local out = dir .. "/out"
    local pacer_bin = H.PACER:sub(1, 1) == "/" and H.PACER or os.getenv("PWD") .. "/" .. H.PACER
    local _, _, code = os.execute(string.format("cd %s && timeout 30 %s -q --events - --stats - %s >%s 2>&1", dir,
      H.q(pacer_bin), H.q(script), out))
    local text = H.read_file(out)
    os.remove(out)
    local left = H.read_file(dir .. "/-")
    os.execute("rm -rf " .. dir)
    assert.are.equal(0, code, text)
    assert.is_nil(left)
    local lines = {}
    for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(5, #lines, text)
    assert.are.equal("before", lines[1])
    assert.is_table(pacer.json.decode(lines[2]).run)
    assert.are.equal(200, pacer.json.decode(lines[3]).status)
    assert.are.equal("after", lines[4])
    assert.are.equal(1, pacer.json.decode(lines[5]).requests)
  end)

  it("says when a high ratio came from latency or concurrency, not the rate", function()
    local script = H.script([[
local m = pacer.mock{latency = "50ms"}
local api = pacer.client{base_url = m.url, rate = "100/s", concurrency = 2}
local list = {} for i = 1, 20 do list[i] = i end
pacer.each(list, function() assert(api:get("/v2/numbers")) end)
m:close()
]])
    local r = H.run_pacer({script}, {timeout = 60})
    os.remove(script)
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("ratio %d+%.%d+ %(requests seldom waited for the limiter: server latency or the concurrency cap "
      .. "set the pace, not the rate%)", r.stderr)
    assert.matches("average wait for the limiter %d+%.%d+s per request", r.stderr)
  end)
end)
