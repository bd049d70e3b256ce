-- Quota headers as an API sends them, parsed by pacer.parse_quota (C), as res.quota.
describe("pacer.parse_quota", function()
  local NOW = 1700000000

  it("reads RateLimit-Limit/Remaining/Reset", function()
    local q = pacer.parse_quota({["ratelimit-limit"] = "100", ["ratelimit-remaining"] = "25",
      ["ratelimit-reset"] = "30"}, NOW)
    assert.are.same({limit = 100, remaining = 25, reset = 30, used = 0.75}, q)
  end)

  it("reads X-RateLimit-* with the reset as epoch seconds or epoch milliseconds", function()
    local q = pacer.parse_quota({["x-ratelimit-limit"] = "5000", ["x-ratelimit-remaining"] = "4999",
      ["x-ratelimit-reset"] = tostring(NOW + 60), ["x-ratelimit-used"] = "1",
      ["x-ratelimit-resource"] = "core"}, NOW)
    assert.are.equal(5000, q.limit)
    assert.are.equal(60, q.reset)
    assert.are.equal(1, q.count)
    assert.are.equal("core", q.resource)
    q = pacer.parse_quota({["x-rate-limit-limit"] = "10", ["x-rate-limit-remaining"] = "0",
      ["x-rate-limit-reset"] = tostring((NOW + 2) * 1000)}, NOW)
    assert.are.same({limit = 10, remaining = 0, reset = 2, used = 1}, q)
  end)

  it("reads the IETF structured fields and picks the tightest policy", function()
    local q = pacer.parse_quota({
      ["ratelimit-policy"] = '"burst";q=100;w=60, "daily";q=1000;w=86400',
      ["ratelimit"] = '"burst";r=90;t=30, "daily";r=20;t=3600',
    }, NOW)
    assert.are.same({limit = 1000, remaining = 20, reset = 3600, window = 86400, policy = "daily",
      used = 0.98, policies = {
        {name = "burst", limit = 100, remaining = 90, reset = 30, window = 60},
        {name = "daily", limit = 1000, remaining = 20, reset = 3600, window = 86400},
      }}, q)
  end)

  it("reads more than 8 policies, their partition keys (pk) and quota units (qu)", function()
    local pol, rl = {}, {}
    for i = 1, 12 do
      pol[i] = string.format('"p%d";q=%d;w=60', i, 100 * i)
      rl[i] = string.format('"p%d";r=%d;t=30', i, 100 * i - 1)
    end
    pol[12] = pol[12] .. ';qu="content-bytes";pk=:dGVhbS1i:' -- base64 of "team-b"
    rl[12] = '"p12";r=10;t=30;pk=:dGVhbS1i:'
    local q, why = pacer.parse_quota({["ratelimit-policy"] = table.concat(pol, ", "),
      ratelimit = table.concat(rl, ", ")}, NOW)
    assert.is_nil(why)
    assert.are.equal(12, #q.policies)
    assert.are.same({name = "p9", limit = 900, remaining = 899, reset = 30, window = 60}, q.policies[9])
    assert.are.same({name = "p12", limit = 1200, remaining = 10, reset = 30, window = 60, partition = "team-b",
      unit = "content-bytes"}, q.policies[12])
    assert.are.equal("p12", q.policy) -- the tightest, with its partition and unit
    assert.are.equal("team-b", q.partition)
    assert.are.equal("content-bytes", q.unit)
  end)

  it("matches RateLimit to RateLimit-Policy by name and partition key", function()
    local q = pacer.parse_quota({
      ["ratelimit-policy"] = '"peruser";q=10;w=1;pk=:YQ==:, "peruser";q=40;w=1;pk="b", "app";q=5;qu=request',
      ratelimit = '"peruser";r=9;t=1;pk="b", "app";r=4;t=1',
    }, NOW)
    assert.are.same({
      {name = "peruser", limit = 40, remaining = 9, reset = 1, window = 1, partition = "b"},
      {name = "app", limit = 5, remaining = 4, reset = 1, unit = "requests"}, -- "request" read as "requests"
    }, q.policies)
  end)

  it("ignores a field with a malformed pk and says why", function()
    local q, why = pacer.parse_quota({ratelimit = '"u";r=5;t=1;pk=:not base64!:'}, NOW)
    assert.is_nil(q)
    assert.are.equal("RateLimit: a byte sequence holds a character that is not base64 (at byte 19)", why)
    q, why = pacer.parse_quota({["ratelimit-policy"] = '"u";q=5;pk=7', ["ratelimit-limit"] = "100"}, NOW)
    assert.are.same({limit = 100}, q) -- the other family still counts
    assert.are.equal("RateLimit-Policy: pk is not a byte sequence (:base64:), string or token (at byte 11)", why)
  end)

  it("reads at most 64 policies per field and counts the rest in 'dropped'", function()
    local rl = {}
    for i = 1, 100 do rl[i] = string.format('"p%d";r=%d;t=10', i, 1000 - i) end
    local q = pacer.parse_quota({ratelimit = table.concat(rl, ",")}, NOW)
    assert.are.equal(64, #q.policies)
    assert.are.equal(36, q.dropped)
    assert.are.equal("p64", q.policy)
  end)

  it("reads the draft dictionary form", function()
    local q = pacer.parse_quota({ratelimit = "limit=100, remaining=50, reset=30"}, NOW)
    assert.are.same({limit = 100, remaining = 50, reset = 30, used = 0.5}, q)
  end)

  it("ignores malformed values and answers nil when nothing is usable", function()
    assert.is_nil(pacer.parse_quota({["ratelimit-limit"] = "lots", ["ratelimit-remaining"] = "-3"}, NOW))
    assert.is_nil(pacer.parse_quota({ratelimit = '"unterminated;r=1'}, NOW))
    assert.is_nil(pacer.parse_quota({}, NOW))
    local q = pacer.parse_quota({["ratelimit-limit"] = "100", ["ratelimit-reset"] = "soon"}, NOW)
    assert.are.same({limit = 100}, q)
  end)
end)

describe("pacer.parse_retry_after", function()
  it("reads delta-seconds and HTTP-dates, and rejects garbage", function()
    assert.are.equal(120, pacer.parse_retry_after("120"))
    assert.are.equal(60, pacer.parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", 784111777))
    assert.are.equal(0, pacer.parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111877))
    assert.is_nil(pacer.parse_retry_after("-1"))
    assert.is_nil(pacer.parse_retry_after("tomorrow"))
  end)
end)

describe("pacer.parse_rate and pacer.parse_duration", function()
  it("turn strings into per-second rates and seconds", function()
    assert.are.same({50 / 60, 50, 60}, {pacer.parse_rate("50/min")})
    assert.are.same({100 / 30, 100, 30}, {pacer.parse_rate("100/30s")})
    assert.are.equal(0.25, pacer.parse_duration("250ms"))
    assert.are.equal(300, pacer.parse_duration("5m"))
  end)

  it("name the bad value in their errors", function()
    assert.has_error(function() pacer.parse_rate("abc") end,
      "invalid rate 'abc': expected N/s, N/min, N/h, N/day, N/<duration> or a number")
    assert.has_error(function() pacer.parse_rate("0/s") end, "invalid rate '0/s': a rate must be positive")
    assert.has_error(function() pacer.parse_duration("soon") end,
      "invalid duration 'soon': expected a duration like 250ms, 30s, 5m, 1h or a number of seconds")
    assert.has_error(function() pacer.parse_duration("-1s") end,
      "invalid duration '-1s': a duration must not be negative")
  end)
end)

describe("rate and duration spellings", function()
  it("accept sec/second(s), min/minute(s), h/hr/hour(s), day(s) alike", function()
    for _, r in ipairs{"30/s", "30/sec", "30/secs", "30/second", "30/seconds"} do
      assert.are.equal(30, (pacer.parse_rate(r)), r)
    end
    for _, r in ipairs{"60/m", "60/min", "60/mins", "60/minute", "60/minutes"} do
      assert.are.equal(1, (pacer.parse_rate(r)), r)
    end
    for _, r in ipairs{"3600/h", "3600/hr", "3600/hrs", "3600/hour", "3600/hours"} do
      assert.are.equal(1, (pacer.parse_rate(r)), r)
    end
    for _, r in ipairs{"86400/d", "86400/day", "86400/days"} do
      assert.are.equal(1, (pacer.parse_rate(r)), r)
    end
    for _, d in ipairs{"2 seconds", "2sec", "2 secs", "2second"} do
      assert.are.equal(2, pacer.parse_duration(d), d)
    end
    assert.are.equal(120, pacer.parse_duration("2 minutes"))
    assert.are.equal(7200, pacer.parse_duration("2 hours"))
    assert.are.equal(7200, pacer.parse_duration("2hr"))
  end)
end)
