-- The example scripts in scripts/ run as a user would run them, and do what they say.
local H = dofile("spec/support/helpers.lua")

local function run(name, args)
  local a = {"-q", "scripts/" .. name .. ".lua"}
  for _, x in ipairs(args or {}) do a[#a + 1] = x end
  local r = H.run_pacer(a, {timeout = 60})
  assert.are.equal(0, r.code, r.stderr)
  return r.stdout
end

describe("scripts/", function()
  it("jwt_sms.lua sends the blog's SMS with an RS256 JWT, reused while fresh", function()
    assert.matches("5 of 5 SMS accepted, signed with 1 JWT", run("jwt_sms"))
  end)

  it("oauth2_api.lua: 8 tasks share 1 s tokens, renewed ahead, nothing fails", function()
    local out = run("oauth2_api")
    local n, fetches = out:match("(%d+) requests in 3 s by 8 tasks, (%d+) token fetches, 0 failed")
    assert(n, out)
    assert.is_true(tonumber(n) >= 50, out)
    assert.is_true(tonumber(fetches) >= 3 and tonumber(fetches) <= 6, out)
  end)

  it("oncall_email.lua mails on-call through a real SMTP server when it gives up", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    local port = H.free_port()
    os.execute(string.format("/usr/bin/python3 spec/support/smtp_sink.py %s %d >/dev/null 2>&1 & echo $! >%s/pid",
      H.q(dir), port, H.q(dir)))
    for _ = 1, 100 do -- bounded: 5 s
      if H.read_file(dir .. "/ready") then break end
      pacer.sleep(0.05)
    end
    local out = run("oncall_email", {"smtp://127.0.0.1:" .. port, "oncall@example.com"})
    local eml = H.read_file(dir .. "/1.eml") or ""
    os.execute("kill $(cat " .. H.q(dir .. "/pid") .. ") 2>/dev/null; rm -rf " .. H.q(dir))
    assert.matches("gave up: GET http://127.0.0.1:%d+/v2/numbers: gave up after 3 attempts", out)
    H.contains(eml, "Subject: pacer gave up on the numbers API")
    H.contains(eml, "To: oncall@example.com")
  end)

  it("learn_limit.lua learns an undeclared limit from headers without a 429", function()
    local out = run("learn_limit", {"40"})
    assert.matches("40 requests in [%d.]+s, 0 429s", out)
  end)

  it("learn_limit.lua learns it from 429s alone, and finishes", function()
    local out = run("learn_limit", {"40", "--no-headers"})
    assert.matches("40 requests in [%d.]+s, %d+ 429s", out)
  end)

  it("key_pool.lua spreads over the keys and retires the refused one", function()
    local out = run("key_pool")
    assert.matches("alert: .- key#3 retired after HTTP 401", out)
    assert.matches("key#3 1 %(retired: true%)", out)
    local a, b = out:match("key#1 (%d+), key#2 (%d+)")
    assert.are.equal(30, tonumber(a) + tonumber(b)) -- every request ended on a live key
    assert.is_nil(out:find("key-c", 1, true))
  end)

  it("quota_alert.lua posts to the chat webhook once when the quota runs low", function()
    local out = run("quota_alert")
    local n = select(2, out:gsub("chat got: ", ""))
    assert.are.equal(1, n)
    assert.matches("quota low: %d+ of 20 left", out)
  end)

  it("off_peak.lua sends inside its window and reports on a schedule", function()
    local out = run("off_peak")
    assert.matches("progress report: %d+ sent", out)
    assert.matches("window %d%d:%d%d%-%d%d:%d%d: 20 messages sent", out)
  end)

  it("storm.lua shows backoff alone against pacing", function()
    local out = run("storm")
    assert.matches("paced +[%d.]+s +200 attempts +0 429s +0 gave up", out)
    assert.matches("backoff +[%d.]+s +%d+ attempts +%d+ 429s +%d+ gave up", out)
  end)
end)

describe("scripts/sms_job.lua", function()
  local function tmpdir()
    local d = os.tmpname()
    os.remove(d)
    os.execute("mkdir -p " .. d)
    return d
  end
  local script = assert(io.open("scripts/sms_job.lua")):read("a")
  local pwd = io.popen("pwd")
  local cwd = pwd:read("l")
  pwd:close()
  local abs = cwd .. "/scripts/sms_job.lua"
  local PACER = H.PACER:sub(1, 1) == "/" and H.PACER or cwd .. "/" .. H.PACER -- the jobs run elsewhere

  it("is README's job script, as written, under 20 lines", function()
    local readme = assert(H.read_file("README.md"))
    local block = readme:match("\n## Jobs\n.-```lua\n(.-)```")
    assert(block, "README has no ## Jobs section with a lua block")
    assert.are.equal(script, block)
    assert.is_true(select(2, script:gsub("\n", "")) < 20)
  end)

  it("sends the sample numbers once, writes their outcomes, and does nothing on a rerun", function()
    local dir = tmpdir()
    os.execute("cp scripts/numbers.csv " .. dir)
    local out, code = H.sh(string.format("cd %s && RATE=50/s %s -q %s", dir, H.q(PACER), abs), 30)
    assert.are.equal(0, code, out)
    local got = {}
    for l in io.lines(dir .. "/results.jsonl") do got[#got + 1] = pacer.json.decode(l).outcome end
    assert.are.same({"done", "done", "done", "done", "duplicate", "done"}, got)
    local _
    _, code = H.sh(string.format("cd %s && RATE=50/s %s -q %s", dir, H.q(PACER), abs), 30)
    assert.are.equal(0, code)
    os.execute("rm -rf " .. dir)
  end)

  it("resumes after kill -9 against an API that honours the key: every number accepted once", function()
    local dir = tmpdir()
    local f = assert(io.open(dir .. "/numbers.csv", "w"))
    f:write("phone,name\n")
    for i = 1, 300 do f:write(string.format("+1555%07d,n%d\n", i, i)) end
    f:close()
    local mock = pacer.mock{rate = "1000/s"}
    local env = string.format("cd %s && API_URL=%s/v2 RATE=200/s", dir, mock.url)
    for _, t in ipairs{0.5, 0.9} do
      H.sh(string.format("%s timeout -s KILL %.1f %s -q %s", env, t, H.q(PACER), abs), 10)
    end
    local _, code = H.sh(string.format("%s %s -q %s", env, H.q(PACER), abs), 30)
    assert.are.equal(0, code)
    local acc = {}
    for _, r in ipairs(mock.requests) do
      if r.path == "/v2/sms/send" and r.status == 200 and not r.replayed then
        local to = pacer.json.decode(r.body).to
        acc[to] = (acc[to] or 0) + 1
      end
    end
    for i = 1, 300 do assert.are.equal(1, acc[string.format("+1555%07d", i)]) end
    mock.close()
    os.execute("rm -rf " .. dir)
  end)
end)
