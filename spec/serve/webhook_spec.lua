-- pacer.webhook: HMAC-SHA256 signing and verification with replay protection: a missing,
-- non-finite or unsigned timestamp fails unless the caller says tolerance = false.
local message = dofile("spec/support/helpers.lua").message

describe("pacer.webhook", function()
  it("signs as HMAC-SHA256 (RFC 4231 test case 2)", function()
    assert.are.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      pacer.webhook.sign("Jefe", "what do ya want for nothing?"))
  end)

  it("verifies a good signature, with or without a sha256= / v1= prefix, any case", function()
    local sig = pacer.webhook.sign("s3cret", "{\"event\":\"delivered\"}")
    for _, s in ipairs{sig, "sha256=" .. sig, "v1=" .. sig, sig:upper()} do
      assert.is_true(pacer.webhook.verify{secret = "s3cret", body = "{\"event\":\"delivered\"}", signature = s,
        tolerance = false})
    end
  end)

  it("refuses a tampered body, a wrong secret and a missing signature, saying why", function()
    local sig = pacer.webhook.sign("s3cret", "amount=10")
    assert.are.same({false, "signature does not match"},
      {pacer.webhook.verify{secret = "s3cret", body = "amount=1000", signature = sig, tolerance = false}})
    assert.are.same({false, "signature does not match"},
      {pacer.webhook.verify{secret = "other", body = "amount=10", signature = sig, tolerance = false}})
    assert.are.same({false, "missing signature"}, {pacer.webhook.verify{secret = "s3cret", body = "x"}})
  end)

  it("signs timestamp.body and refuses old timestamps (replays)", function()
    local now = 1700000000
    local sig = pacer.webhook.sign("k", now .. ".payload")
    assert.is_true(pacer.webhook.verify{secret = "k", body = "payload", signature = sig, timestamp = now, now = now + 10})
    assert.are.same({false, "timestamp outside the 300s tolerance (a replay?)"},
      {pacer.webhook.verify{secret = "k", body = "payload", signature = sig, timestamp = now, now = now + 301}})
    assert.are.same({false, "timestamp outside the 60s tolerance (a replay?)"},
      {pacer.webhook.verify{secret = "k", body = "payload", signature = sig, timestamp = now, now = now - 61,
        tolerance = "1m"}})
    assert.are.same({false, "timestamp is not a number"},
      {pacer.webhook.verify{secret = "k", body = "payload", signature = sig, timestamp = "yesterday"}})
  end)

  it("refuses a body without its timestamp unless tolerance = false: a replay cannot drop the header", function()
    local now = 1700000000
    local body = "amount=10"
    local sig = pacer.webhook.sign("k", now .. "." .. body)
    -- the sender's own day-old delivery, replayed without the timestamp header
    local bare = pacer.webhook.sign("k", body)
    assert.are.same({false, "missing timestamp (a replay?); pass tolerance = false to verify without one"},
      {pacer.webhook.verify{secret = "k", body = body, signature = bare, now = now + 86400}})
    assert.are.same({false, "missing timestamp (a replay?); pass tolerance = false to verify without one"},
      {pacer.webhook.verify{secret = "k", body = body, signature = sig, now = now}})
    -- senders that sign no timestamp (GitHub): the caller opts out, explicitly
    assert.is_true(pacer.webhook.verify{secret = "k", body = body, signature = bare, tolerance = false})
    assert.is_true(pacer.webhook.verify{secret = "k", body = body, signature = sig, timestamp = now, tolerance = false})
  end)

  it("refuses a timestamp that is NaN or infinite (it would pass any tolerance test)", function()
    local body = "x"
    for _, ts in ipairs{0 / 0, math.huge, -math.huge, "1e999", "-1e999"} do
      local sig = pacer.webhook.sign("k", tostring(ts) .. "." .. body)
      assert.are.same({false, "timestamp is not a finite number"},
        {pacer.webhook.verify{secret = "k", body = body, signature = sig, timestamp = ts, now = 1700000000}},
        tostring(ts))
    end
    assert.are.same({false, "timestamp is not a number"},
      {pacer.webhook.verify{secret = "k", body = body, signature = "00", timestamp = "nan"}})
  end)

  it("with payload =, the timestamp must be part of what is signed", function()
    local now, body = 1700000000, '{"event":"x"}'
    -- Slack's scheme: v0:<timestamp>:<body>
    local payload = "v0:" .. now .. ":" .. body
    local sig = pacer.webhook.sign("k", payload)
    assert.is_true(pacer.webhook.verify{secret = "k", payload = payload, signature = sig, timestamp = now,
      now = now + 5})
    -- a payload without the timestamp: the sender could send any timestamp with an old body
    local unsigned = pacer.webhook.sign("k", body)
    assert.are.same({false, "the timestamp is not part of the signed payload (it could be changed)"},
      {pacer.webhook.verify{secret = "k", payload = body, signature = unsigned, timestamp = now + 86400,
        now = now + 86400}})
    assert.is_true(pacer.webhook.verify{secret = "k", payload = body, signature = unsigned, tolerance = false})
  end)

  it("raises on misuse, naming the option", function()
    assert.are.equal("pacer.webhook.verify: 'tolerance' must be a duration, or false to verify without a timestamp",
      message(function() pacer.webhook.verify{secret = "k", body = "x", signature = "y", tolerance = true} end))
    assert.are.equal("pacer.webhook.verify: 'body' or 'payload' is required",
      message(function() pacer.webhook.verify{secret = "k", signature = "y"} end))
    assert.are.equal("pacer.webhook.verify: 'secret' is required",
      message(function() pacer.webhook.verify{body = "x", signature = "y"} end))
    assert.are.equal("pacer.webhook.verify: unknown option 'secert' (known: body, now, payload, secret, signature, timestamp, tolerance)",
      message(function() pacer.webhook.verify{secert = "x"} end))
    assert.are.equal("pacer.webhook.sign: secret must be a non-empty string",
      message(function() pacer.webhook.sign("", "x") end))
  end)

  it("guards a listener end to end: a signed call passes, a forged one gets 401", function()
    local got = {}
    local srv = pacer.serve{routes = {["POST /webhook/call-status"] = function(req)
      local ok, why = pacer.webhook.verify{secret = "hook-secret", body = req.body,
        signature = req.headers["x-signature"], timestamp = req.headers["x-timestamp"]}
      if not ok then return 401, {error = why} end
      got[#got + 1] = req:json().status
      return 200, {ok = true}
    end}}
    local body = pacer.json.encode{status = "delivered"}
    local ts = tostring(os.time())
    local good = assert(pacer.request{method = "POST", url = srv.url .. "/webhook/call-status", body = body,
      headers = {["X-Timestamp"] = ts, ["X-Signature"] = "sha256=" .. pacer.webhook.sign("hook-secret", ts .. "." .. body)}})
    local forged = assert(pacer.request{method = "POST", url = srv.url .. "/webhook/call-status", body = body,
      headers = {["X-Timestamp"] = ts, ["X-Signature"] = "sha256=" .. pacer.webhook.sign("guess", ts .. "." .. body)}})
    srv.close()
    assert.are.equal(200, good.status)
    assert.are.equal(401, forged.status)
    assert.are.same({error = "signature does not match"}, forged:json())
    assert.are.same({"delivered"}, got)
  end)

  it("a listener refuses a captured delivery replayed without its timestamp header", function()
    local got = 0
    local srv = pacer.serve{routes = {["POST /hook"] = function(req)
      local ok, why = pacer.webhook.verify{secret = "hook-secret", body = req.body,
        signature = req.headers["x-signature"], timestamp = req.headers["x-timestamp"]}
      if not ok then return 401, {error = why} end
      got = got + 1
      return 200, {ok = true}
    end}}
    local body = pacer.json.encode{status = "delivered"}
    -- an attacker who saw an old delivery signed over the bare body drops X-Timestamp
    local replay = assert(pacer.request{method = "POST", url = srv.url .. "/hook", body = body,
      headers = {["X-Signature"] = "sha256=" .. pacer.webhook.sign("hook-secret", body)}})
    local nan = assert(pacer.request{method = "POST", url = srv.url .. "/hook", body = body,
      headers = {["X-Timestamp"] = "1e999", ["X-Signature"] = "sha256=" .. pacer.webhook.sign("hook-secret",
        "1e999." .. body)}})
    srv.close()
    assert.are.equal(401, replay.status)
    assert.are.equal(401, nan.status)
    assert.are.same({error = "timestamp is not a finite number"}, nan:json())
    assert.are.equal(0, got)
  end)
end)
