-- spec/run/email_spec.lua: the email alert action, received by a real SMTP server on
-- loopback (aiosmtpd, spec/support/smtp_sink.py): a give-up mails on-call, with AUTH;
-- a refused login or an unreachable server is logged and the job goes on; the loop
-- keeps running while mail is sent.
local H = dofile("spec/support/helpers.lua")

-- Starts the sink (user/password optional); returns its dir, url and a stop().
local function sink(user, password)
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  local port = H.free_port()
  os.execute(string.format("/usr/bin/python3 spec/support/smtp_sink.py %s %d %s >%s/log 2>&1 & echo $! >%s/pid",
    H.q(dir), port, user and (H.q(user) .. " " .. H.q(password)) or "", H.q(dir), H.q(dir)))
  for _ = 1, 100 do -- bounded: 5 s
    if H.read_file(dir .. "/ready") then break end
    pacer.sleep(0.05)
  end
  assert(H.read_file(dir .. "/ready"), "smtp_sink.py did not start: " .. tostring(H.read_file(dir .. "/log")))
  return dir, "smtp://127.0.0.1:" .. port, function()
    os.execute("kill $(cat " .. H.q(dir .. "/pid") .. ") 2>/dev/null; rm -rf " .. H.q(dir))
  end
end

local function wait_file(path)
  for _ = 1, 100 do -- bounded: 5 s
    local s = H.read_file(path)
    if s then return s end
    pacer.sleep(0.05)
  end
end

describe("email alert action", function()
  it("a give-up mails on-call through a real SMTP server, with AUTH", function()
    local dir, url, stop = sink("pacer", "mail-pw-SECRET")
    local srv = pacer.serve{port = 0, routes = {["GET /numbers"] = function() return 503, "down" end}}
    local api = pacer.client{base_url = srv.url, retry = {max_tries = 2, base = 0.01, cap = 0.02},
      alerts = {pacer.alert.on("giveup", {email = {url = url, from = "pacer <pacer@example.com>",
        to = {"oncall@example.com", "backup@example.com"}, subject = "SMS sends are failing",
        user = "pacer", password = "mail-pw-SECRET"}})}}
    local res, err = api:get("/numbers")
    assert.is_nil(res)
    assert.are.equal("gave_up", err.kind)
    local eml = wait_file(dir .. "/1.eml")
    local env = H.read_file(dir .. "/1.env")
    srv:close()
    stop()
    assert(eml, "no mail arrived")
    H.contains(env, "from pacer@example.com")
    H.contains(env, "to oncall@example.com")
    H.contains(env, "to backup@example.com")
    H.contains(eml, "Subject: SMS sends are failing")
    H.contains(eml, "To: oncall@example.com, backup@example.com")
    H.contains(eml, "gave up")
    H.contains(eml, "event: giveup")
    assert.is_nil(eml:find("mail-pw-SECRET", 1, true))
  end)

  it("a refused login or a dead server is logged; the job goes on, the loop never blocks", function()
    local dir, url, stop = sink("pacer", "right")
    local script = H.script(string.format([[
local a = pacer.alert.on("giveup", {email = {url = %q, from = "p@example.com", to = "o@example.com",
  user = "pacer", password = "wrong-pw-SECRET"}})
local b = pacer.alert.on("giveup", {email = {url = "smtp://127.0.0.1:1", from = "p@example.com", to = "o@example.com"}})
a:event("giveup", {message = "x gave up"})
b:event("giveup", {message = "y gave up"})
local t0, ticks = pacer.now(), 0
while pacer.now() - t0 < 1.5 do pacer.sleep(0.01) ticks = ticks + 1 end
print("ticks", ticks)
]], url))
    local r = H.run_pacer({script}, {timeout = 20})
    stop()
    H.remove_scripts()
    assert.are.equal(0, r.code, r.stderr)
    H.contains(r.stderr, "alert action failed: email to o@example.com via " .. url .. ":")
    H.contains(r.stderr, "alert action failed: email to o@example.com via smtp://127.0.0.1:1:")
    assert.is_nil(r.stderr:find("wrong-pw-SECRET", 1, true))
    assert.is_true((tonumber(r.stdout:match("ticks%s+(%d+)")) or 0) > 50, r.stdout)
    assert.is_nil(H.read_file(dir .. "/1.eml"))
  end)
end)
