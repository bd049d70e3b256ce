-- A limiter's schedule kept in SQLite across runs (state = "pacer.db").
local H = dofile("spec/support/helpers.lua")

local message = H.message

describe("persisted limiter state", function()
  local db, script
  before_each(function()
    db = os.tmpname() .. ".db"
    script = H.script(string.format([[
local lim = pacer.limiter{rate = "10/s", burst = 10, state = %q, key = "api"}
local t0 = pacer.now()
for i = 1, tonumber(arg[1]) do lim:acquire() end
print(string.format("%%.3f", pacer.now() - t0))
]], db))
  end)
  after_each(function()
    os.remove(script)
    os.execute("rm -f " .. db .. "*")
  end)

  local function run(n)
    local r = H.run_pacer({"-q", script, tostring(n)}, {timeout = 20})
    assert.are.equal(0, r.code, r.stderr)
    return tonumber(r.stdout)
  end

  it("a run restarted at once does not burst past what the previous run used", function()
    assert.is_true(run(10) < 0.3) -- a full bucket: the burst goes at once
    local second = run(10)
    assert.is_true(second >= 0.8, "the second run took " .. second .. " s: it burst again")
  end)

  it("time between runs pays the debt off", function()
    run(10)
    pacer.sleep(1.1)
    assert.is_true(run(10) < 0.3)
  end)

  it("works on a client's declared rate, keyed by its name", function()
    local path = H.script(string.format([[
local mock = pacer.mock{rate = "100/s"}
local api = pacer.client{base_url = mock.url, rate = "2/s", burst = 4, state = %q, name = "sms"}
local t0 = pacer.now()
for _ = 1, 4 do assert(api:get("/v2/billing/usage")) end
print(string.format("%%.3f", pacer.now() - t0))
mock:close()
]], db))
    local first = tonumber(H.run_pacer({"-q", path}).stdout)
    local second = tonumber(H.run_pacer({"-q", path}).stdout)
    os.remove(path)
    assert.is_true(first < 0.3, "first " .. tostring(first))
    assert.is_true(second >= 0.7, "second " .. tostring(second))
  end)

  it("refuses a state without a key or a rate", function()
    assert.are.equal("pacer.limiter: a persisted limiter needs a 'key' naming it",
      message(function() pacer.limiter{rate = 1, state = db} end))
    assert.are.equal("pacer.client: 'state' keeps the schedule of a declared 'rate' or 'rules'",
      message(function() pacer.client{state = db} end))
  end)
end)
