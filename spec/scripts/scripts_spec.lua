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
    assert.matches("paced +[%d.]+s +200 attempts +0 429s", out)
  end)
end)
