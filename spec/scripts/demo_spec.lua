-- The demo job end to end, as a user runs it: in a pipe, and on a terminal (tmux).
local H = dofile("spec/support/helpers.lua")

describe("scripts/demo.lua", function()
  it("sends every message once at the declared rate, with no 429s, and says so", function()
    local r = H.run_pacer({"scripts/demo.lua", "40", "20"}, {timeout = 60})
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("sent 40, failed 0, 429s 0, retries 0", r.stdout, 1, true)
    assert.matches("the mock accepted 40 messages; 40 requests in all", r.stdout, 1, true)
    local ratio = tonumber(r.stdout:match("ratio ([%d%.]+)"))
    assert.is_true(ratio > 0.9 and ratio < 1.3, "ratio " .. tostring(ratio))
    assert.matches("pacer: 40 requests in", r.stderr, 1, true)
    -- not a terminal: no progress line
    assert.is_nil(r.stderr:find("ETA", 1, true))
  end)

  it("runs against a pacer mock started outside it, given its URL", function()
    local port = H.free_port()
    local pidfile = os.tmpname()
    os.execute(string.format("sh -c '%s mock --port %d --rate 20/s --key demo-key >/dev/null 2>&1 & echo $! > %s'",
      H.PACER, port, pidfile))
    local url = "http://127.0.0.1:" .. port
    for _ = 1, 100 do -- bounded: at most ~5 s until it listens
      if pacer.request{url = url .. "/_mock/requests", retry = false, timeout = 1} then break end
      pacer.sleep(0.05)
    end
    local r = H.run_pacer({"-q", "scripts/demo.lua", "20", "20", url}, {timeout = 60})
    os.execute("kill $(cat " .. pidfile .. ") 2>/dev/null")
    os.remove(pidfile)
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("sent 20, failed 0, 429s 0, retries 0", r.stdout, 1, true)
    assert.matches("the mock accepted 20 messages; 20 requests in all", r.stdout, 1, true)
  end)

  it("shows a live progress line on a terminal", function()
    local session = "pacer-demo-" .. math.random(1e6)
    local ok = os.execute(string.format(
      "tmux new-session -d -s %s -x 160 -y 20 '%s scripts/demo.lua 60 20; sleep 20'", session, H.PACER))
    assert(ok, "tmux did not start")
    local screen = ""
    for _ = 1, 40 do -- bounded: at most ~4 s
      pacer.sleep(0.1)
      local p = io.popen("tmux capture-pane -p -t " .. session)
      screen = p:read("a")
      p:close()
      if screen:find("sms %d+/60") and not screen:find("sms 60/60") then break end
    end
    os.execute("tmux kill-session -t " .. session)
    assert.matches("sms %d+/60 +%d+%%", screen)
    assert.matches("429s 0", screen, 1, true)
    assert.matches("ETA %d+s", screen)
  end)
end)
