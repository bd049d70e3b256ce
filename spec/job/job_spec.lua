-- pacer.job with an SQLite ledger: tricky CSV and JSONL in, one outcome per row out;
-- kill -9 at several points then a rerun: every valid row accepted once by a real
-- `pacer mock` (a resend carries the key of the first attempt), the outcome file whole
-- and in input order; a changed input refused; SIGINT mid-run; the CLI verbs.
local H = dofile("spec/support/helpers.lua")

local message = H.message

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  os.execute("mkdir -p " .. d)
  return d
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function lines(path)
  local out = {}
  for l in assert(io.open(path)):lines() do out[#out + 1] = pacer.json.decode(l) end
  return out
end

-- What the mock accepted: to -> count of first (not replayed) 200s; resends (replayed)
-- and whether every resend carried the key of the first attempt.
local function accepted(recs)
  local acc, first, resends, same = {}, {}, 0, true
  for _, r in ipairs(recs) do
    if r.path == "/v2/sms/send" and r.status == 200 then
      local to = pacer.json.decode(r.body).to
      first[to] = first[to] or r.idempotency_key
      if r.idempotency_key ~= first[to] then same = false end
      if r.replayed then resends = resends + 1 else acc[to] = (acc[to] or 0) + 1 end
    end
  end
  return acc, resends, same
end

-- The job script every process test runs: sends each row's SMS with its item's key.
local function sms_script(dir, url, extra)
  return H.script(string.format([[
local api = pacer.client{base_url = %q, rate = "1000/s", retry = {max_tries = 20, cap = 1}}
local job = pacer.job{input = %q, key = "phone", concurrency = 8, output = %q %s}
local s = job:run(function(row, item)
  local res = assert(api:post("/sms/send", {json = {to = row.phone, message = row.message},
    idempotency_key = item.idempotency_key}))
  if res.status ~= 200 then error("HTTP " .. res.status) end
  return res:json().id
end)
print(string.format("done %%d failed %%d invalid %%d duplicate %%d pending %%d ran %%d", s.done, s.failed,
  s.invalid, s.duplicate, s.pending, s.ran))
]], url .. "/v2", dir .. "/numbers.csv", dir .. "/results.jsonl", extra or ""))
end

local function numbers_csv(path, n, bad_every)
  local f = assert(io.open(path, "w"))
  f:write("phone,message\n")
  local valid = {}
  for i = 1, n do
    if bad_every and i % bad_every == 0 then
      f:write(string.format("+1555%07d,\"unclosed\n", i)) -- a stray quote: invalid, the next row still read
    else
      f:write(string.format("+1555%07d,\"hello, %d\"\n", i, i))
      valid[#valid + 1] = string.format("+1555%07d", i)
    end
  end
  f:close()
  return valid
end

describe("pacer.job", function()
  after_each(function() H.remove_scripts() end)

  it("reads tricky CSV: BOM, CRLF, quotes, commas and line breaks in fields; bad rows are invalid with file:line",
    function()
    local dir = tmpdir()
    write(dir .. "/in.csv", "\239\187\191phone,name\r\n+15550001,\"Ann \"\"the\"\" First\"\r\n"
      .. "+15550002,\"Bob, Jr.\"\r\n+15550003,\"two\r\nlines\"\r\n\r\n+15550004,x,extra\r\n"
      .. "\"+15550005,unclosed\r\n+15550006,ok\r\n+15550007,\"bad\"x\r\n+15550001,again\r\n+15550008,last")
    local job = pacer.job{input = dir .. "/in.csv", key = "phone", output = dir .. "/out.jsonl", progress = false,
      on_error = "return"}
    local got = {}
    local s = job:run(function(row, item)
      got[#got + 1] = {row.phone, row.name, item.line}
      return #row.name
    end)
    assert.are.same({{"+15550001", 'Ann "the" First', 2}, {"+15550002", "Bob, Jr.", 3},
      {"+15550003", "two\r\nlines", 4}, {"+15550006", "ok", 9}, {"+15550008", "last", 12}}, got)
    assert.are.same({total = 9, done = 5, failed = 0, invalid = 3, duplicate = 1, pending = 0}, {total = s.total,
      done = s.done, failed = s.failed, invalid = s.invalid, duplicate = s.duplicate, pending = s.pending})
    local out = lines(dir .. "/out.jsonl")
    local f = dir .. "/in.csv"
    assert.are.same({
      {key = "+15550001", line = 2, outcome = "done", attempts = 1, result = 15},
      {key = "+15550002", line = 3, outcome = "done", attempts = 1, result = 8},
      {key = "+15550003", line = 4, outcome = "done", attempts = 1, result = 10},
      {key = "4", line = 7, outcome = "invalid", attempts = 0, reason = f .. ":7: expected 2 fields, got 3"},
      {key = "5", line = 8, outcome = "invalid", attempts = 0,
        reason = f .. ":8: unexpected character after a closing quote"},
      {key = "+15550006", line = 9, outcome = "done", attempts = 1, result = 2},
      {key = "7", line = 10, outcome = "invalid", attempts = 0,
        reason = f .. ":10: unexpected character after a closing quote"},
      {key = "+15550001", line = 11, outcome = "duplicate", attempts = 0, reason = "duplicate of line 2"},
      {key = "+15550008", line = 12, outcome = "done", attempts = 1, result = 4},
    }, out)
    os.execute("rm -rf " .. dir)
  end)

  it("reads JSON lines: blank lines skipped, a bad line invalid; validate and a key function", function()
    local dir = tmpdir()
    write(dir .. "/in.jsonl", '{"to":"+1555001","n":1}\n\n{"to":"+1555002","n":2}\r\n{"to":\n[1]\n'
      .. '{"to":"x","n":4}\n{"n":5}\n{"to":"+1555001","n":6}\n')
    local job = pacer.job{input = dir .. "/in.jsonl", key = function(r) return r.to end, progress = false,
      validate = function(r) return r.to:match("^%+%d+$"), "'to' is not a phone number" end, on_error = "return",
      output = dir .. "/out.csv"}
    local seen = {}
    local s = job:run(function(row) seen[#seen + 1] = row.to end)
    assert.are.same({"+1555001", "+1555002"}, seen)
    assert.are.same({7, 2, 4, 1}, {s.total, s.done, s.invalid, s.duplicate})
    local csv = H.read_file(dir .. "/out.csv")
    local f = dir .. "/in.jsonl"
    assert.are.equal("key,line,outcome,attempts,reason,result\n"
      .. "+1555001,1,done,1,,null\n+1555002,3,done,1,,null\n"
      .. "3,4,invalid,0," .. f .. ":4: invalid JSON: expected value but found T_END at character 7,\n"
      .. "4,5,invalid,0," .. f .. ":5: key: the function returned nothing,\n"
      .. "x,6,invalid,0," .. f .. ":6: 'to' is not a phone number,\n"
      .. "6,7,invalid,0," .. f .. ":7: key: the function returned nothing,\n"
      .. "+1555001,8,duplicate,0,duplicate of line 1,\n", csv)
    os.execute("rm -rf " .. dir)
  end)

  it("takes a list or an iterator (with a ledger), and stdin", function()
    local dir = tmpdir()
    local s = pacer.job{input = {"a", "b", "c"}, ledger = dir .. "/l.db", progress = false}:run(function(row, item)
      return row .. item.key
    end)
    assert.are.same({3, 3}, {s.total, s.done})
    local i = 0
    s = pacer.job{input = function() i = i + 1 return i <= 4 and {n = i} or nil end, ledger = dir .. "/i.db",
      progress = false}:run(function(row) return row.n end)
    assert.are.same({4, 4}, {s.total, s.done})
    write(dir .. "/in.jsonl", '{"to":"+1"}\n{"to":"+2"}\n')
    local script = H.script(string.format([[
local s = pacer.job{input = "-", ledger = %q, key = "to"}:run(function(row) return row.to end)
print(s.total, s.done)]], dir .. "/stdin.db"))
    local r = H.run_pacer({"-q", script}, {stdin = dir .. "/in.jsonl"})
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("2\t2\n", r.stdout)
    assert.are.equal("pacer.job: option 'ledger' is required when the input is not a file",
      message(function() pacer.job{input = {1}} end))
    os.execute("rm -rf " .. dir)
  end)

  it("sends batches: an item the API rejects fails alone", function()
    local dir = tmpdir()
    local mock = pacer.mock{rate = "1000/s"}
    local api = pacer.client{base_url = mock.url .. "/v2"}
    local rows = {}
    for i = 1, 25 do rows[i] = {to = i == 7 and "bad" or string.format("+1555%04d", i)} end
    local sizes = {}
    local s = pacer.job{input = rows, ledger = dir .. "/b.db", key = "to", progress = false, on_error = "return",
      output = dir .. "/out.jsonl"}:run(function(batch, items)
      sizes[#sizes + 1] = #items
      local msgs = {}
      for i, r in ipairs(batch) do msgs[i] = {to = r.to, message = "hi"} end
      return assert(api:post("/sms/batch", {json = {messages = msgs}})):json().results
    end, {batch = 10})
    table.sort(sizes)
    assert.are.same({5, 10, 10}, sizes)
    assert.are.same({25, 24, 1}, {s.total, s.done, s.failed})
    assert.are.equal(3, mock:count{path = "/v2/sms/batch"})
    local out = lines(dir .. "/out.jsonl")
    assert.are.same({key = "bad", line = 7, outcome = "failed", attempts = 1,
      reason = "'to' must be a phone number like +15550100"}, out[7])
    mock.close()
    os.execute("rm -rf " .. dir)
  end)

  it("retries a raising handler up to max_attempts, and failed items with retry_failed", function()
    local dir = tmpdir()
    local tries = {}
    local job = pacer.job{input = {"a", "b"}, ledger = dir .. "/r.db", max_attempts = 2, progress = false,
      on_error = "return"}
    local s = job:run(function(row, item)
      tries[#tries + 1] = row .. item.attempt
      if row == "b" then error({message = "no luck"}) end
      return "ok"
    end)
    table.sort(tries)
    assert.are.same({"a1", "b1", "b2"}, tries)
    assert.are.same({1, 1}, {s.done, s.failed})
    s = job:run(function() error("not run") end)
    assert.are.same({1, 1, 0}, {s.done, s.failed, s.ran})
    s = job:run(function(_, item) return item.attempt end, {retry_failed = true})
    assert.are.same({2, 0, 1}, {s.done, s.failed, s.ran})
    os.execute("rm -rf " .. dir)
  end)

  it("reports failed and invalid items: exit status 1, the first reasons named", function()
    local dir = tmpdir()
    write(dir .. "/numbers.csv", "phone,message\n+1,a\n+2,\"b\n+3,c\n")
    local script = H.script(string.format([[
pacer.job{input = %q, key = "phone"}:run(function(row) if row.phone == "+3" then error("refused") end end)
]], dir .. "/numbers.csv"))
    local r = H.run_pacer({script})
    assert.are.equal(1, r.code)
    H.contains(r.stderr, "pacer: job 'numbers.csv': 3 items: 1 done, 1 failed, 1 invalid, 0 duplicate, 0 pending")
    H.contains(r.stderr, string.format("pacer: error: job 'numbers.csv': 2 of 3 items failed; first: "
      .. "%s/numbers.csv:3: unterminated quoted field; %s:1: refused (key +3)", dir, script))
    os.execute("rm -rf " .. dir)
  end)

  it("refuses an input that changed since its ledger was made, and takes one only touched", function()
    local dir = tmpdir()
    write(dir .. "/numbers.csv", "phone\n+1\n+2\n")
    local script = H.script(string.format([[
local s = pacer.job{input = %q, key = "phone"}:run(function(row) return row.phone end)
print(s.done)]], dir .. "/numbers.csv"))
    assert.are.equal("2\n", H.run_pacer({"-q", script}).stdout)
    os.execute("sleep 0.01; touch " .. dir .. "/numbers.csv")
    local r = H.run_pacer({"-q", script})
    assert.are.same({0, "2\n"}, {r.code, r.stdout})
    write(dir .. "/numbers.csv", "phone\n+1\n+3\n")
    r = H.run_pacer({"-q", script})
    assert.are.equal(1, r.code)
    H.contains(r.stderr, string.format("pacer.job: %s/numbers.csv has changed since the ledger "
      .. "%s/numbers.csv.ledger.db was made from it (its content differs); run with the input it was made from, "
      .. "or to start a new job give another ledger (or delete %s/numbers.csv.ledger.db: every row would be sent "
      .. "again)", dir, dir, dir))
    write(dir .. "/numbers.csv", "phone\n+1\n+2\n+3\n")
    H.contains(H.run_pacer({"-q", script}).stderr, "(12 bytes then, 15 now)")
    os.execute("rm -rf " .. dir)
  end)

  it("survives kill -9 at several points: every valid row accepted once, resends keep their key", function()
    local dir = tmpdir()
    local valid = numbers_csv(dir .. "/numbers.csv", 2000, 97)
    local mock = H.mock_process("--rate 5000/s")
    local script = sms_script(dir, mock.url)
    -- kills: during the load, then at random moments of the run; then it runs to the end
    local finished = false
    for i, delay in ipairs{0.02, 0.08, 0.3, 0.5, 0.35, 0.6, 0.4, 0.8} do
      local ok = os.execute(string.format("timeout -s KILL %.2f %s -q %s >/dev/null 2>&1",
        delay + (i > 2 and math.random() * 0.3 or 0), H.PACER, script))
      if ok == true then finished = true break end
    end
    local r = H.run_pacer({"-q", script}, {timeout = 60})
    assert.are.equal(1, r.code, r.stderr) -- the invalid rows
    local acc, resends, same = accepted(mock.requests())
    mock.stop()
    local missing, twice = 0, 0
    for _, to in ipairs(valid) do
      if not acc[to] then missing = missing + 1 elseif acc[to] > 1 then twice = twice + 1 end
    end
    assert.are.equal(0, missing, "rows never accepted")
    assert.are.equal(0, twice, "rows accepted twice")
    assert.is_true(same, "a resend carried another Idempotency-Key")
    assert.is_false(finished, "the first kill came after the job had finished")
    print(string.format("# kill -9 spec: %d resends under the first key", resends))
    assert.matches("^done 1980 failed 0 invalid 20 duplicate 0 pending 0 ran %d+\n$", r.stdout)
    local out = lines(dir .. "/results.jsonl")
    assert.are.equal(2000, #out)
    for i, o in ipairs(out) do
      assert.are.equal(i + 1, o.line)
      assert.are.equal(i % 97 == 0 and "invalid" or "done", o.outcome)
    end
    os.execute("rm -rf " .. dir)
  end)

  it("on SIGINT finishes what is in flight, prints the summary, exits 130, and resumes", function()
    local dir = tmpdir()
    local valid = numbers_csv(dir .. "/numbers.csv", 300)
    local mock = H.mock_process("--rate 100/s")
    local script = sms_script(dir, mock.url)
    local out, code = H.sh(string.format("%s %s 2>%s/err & p=$!; sleep 1.2; kill -INT $p; wait $p", H.PACER, script,
      dir), 30)
    assert.are.equal(130, code)
    local err = H.read_file(dir .. "/err")
    H.contains(err, "; interrupted (run again to go on)")
    H.contains(err, "pacer: interrupted")
    assert.is_nil(err:find("cancelled", 1, true))
    local pending = tonumber(out:match("pending (%d+)"))
    assert.is_true(pending > 0 and pending < 300, out)
    local r = H.run_pacer({"-q", script}, {timeout = 60})
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("^done 300 failed 0 invalid 0 duplicate 0 pending 0 ran " .. pending .. "\n$", r.stdout)
    local acc = accepted(mock.requests())
    mock.stop()
    for _, to in ipairs(valid) do assert.are.equal(1, acc[to], to) end
    os.execute("rm -rf " .. dir)
  end)

  it("on a second SIGINT cancels what is in flight: exit 130, those rows pending, then resumed", function()
    local dir = tmpdir()
    local valid = numbers_csv(dir .. "/numbers.csv", 100)
    local mock = H.mock_process("--rate 1000/s --latency 2s")
    local script = sms_script(dir, mock.url)
    local _, code = H.sh(string.format("%s %s >%s/out 2>%s/err & p=$!; sleep 1; kill -INT $p; sleep 0.3; "
      .. "kill -INT $p; wait $p", H.PACER, script, dir, dir), 30)
    assert.are.equal(130, code)
    local err = H.read_file(dir .. "/err")
    H.contains(err, "pacer: interrupted")
    H.contains(err, "in flight cancelled")
    assert.are.equal("", H.read_file(dir .. "/out")) -- job:run never returned
    pacer.sleep(2.5) -- the mock finishes the cancelled sends (and keeps their keys' answers)
    local r = H.run_pacer({"-q", script}, {timeout = 60})
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("^done 100 failed 0 invalid 0 duplicate 0 pending 0 ran 100\n$", r.stdout)
    local acc, _, same = accepted(mock.requests())
    mock.stop()
    for _, to in ipairs(valid) do assert.are.equal(1, acc[to], to) end
    assert.is_true(same)
    os.execute("rm -rf " .. dir)
  end)

  it("pacer job status and export read the ledger", function()
    local dir = tmpdir()
    write(dir .. "/numbers.csv", "phone\n+1\n+2\n\"+3\n+1\n")
    local job = pacer.job{input = dir .. "/numbers.csv", key = "phone", progress = false, on_error = "return"}
    job:run(function(row) return {id = row.phone} end) -- the job keeps its ledger open: status reads it anyway
    local ledger = dir .. "/numbers.csv.ledger.db"
    local r = H.run_pacer({"job", "status", ledger})
    assert.are.equal(0, r.code, r.stderr)
    H.contains(r.stdout, string.format("job 'numbers.csv': 4 items from %s/numbers.csv (ledger %s)\n"
      .. "  done 2  failed 0  invalid 1  duplicate 1  pending 0\n  last run: 2 items in ", dir, ledger))
    r = H.run_pacer({"job", "export", ledger, "-o", dir .. "/x.jsonl"})
    assert.are.same({0, string.format("pacer job: 4 outcomes of job 'numbers.csv' written to %s/x.jsonl\n", dir)},
      {r.code, r.stdout})
    assert.are.same({"done", "done", "invalid", "duplicate"}, (function()
      local o = {}
      for i, l in ipairs(lines(dir .. "/x.jsonl")) do o[i] = l.outcome end
      return o
    end)())
    assert.are.same({id = "+1"}, lines(dir .. "/x.jsonl")[1].result)
    r = H.run_pacer({"job", "export", ledger, "-o", dir .. "/x.txt"})
    assert.are.equal(2, r.code)
    H.contains(r.stderr, 'pacer job: output must end in .jsonl, .ndjson or .csv, got "' .. dir .. '/x.txt"')
    r = H.run_pacer({"job", "status", dir .. "/none.db"})
    assert.are.same({1, "pacer job: cannot open " .. dir .. "/none.db\n"}, {r.code, r.stderr})
    r = H.run_pacer({"job", "stats", ledger})
    assert.are.equal(2, r.code)
    H.contains(r.stderr, "pacer job: unknown verb 'stats'")
    job:close()
    os.execute("rm -rf " .. dir)
  end)

  it("refuses bad options by name", function()
    assert.are.equal("pacer.job: option 'input' is required (a .csv or .jsonl file, \"-\", a list or an iterator)",
      message(function() pacer.job{} end))
    assert.matches("^pacer.job: unknown option 'inputs' %(known: ", message(function() pacer.job{inputs = "x"} end))
    assert.are.equal("pacer.job: cannot tell the format of \"x.txt\": name it .csv, .jsonl or .ndjson, or give "
      .. "format = \"csv\" | \"jsonl\"", message(function() pacer.job{input = "x.txt"} end))
    assert.are.equal('pacer.job: output must end in .jsonl, .ndjson or .csv, got "r.txt"',
      message(function() pacer.job{input = "x.csv", output = "r.txt"} end))
    assert.are.equal("pacer.job: 'concurrency' must be >= 1, got 0",
      message(function() pacer.job{input = "x.csv", concurrency = 0} end))
    assert.are.equal("pacer.job: a Redis ledger needs a 'name' for the job",
      message(function() pacer.job{input = {1}, ledger = "redis://127.0.0.1:6379"} end))
    assert.are.equal("pacer.job: cannot open /nonexistent.csv: No such file or directory",
      message(function() pacer.job{input = "/nonexistent.csv"}:run(function() end) end))
    assert.are.equal("job:run: unknown option 'batches' (known: batch, retry_failed)",
      message(function() pacer.job{input = {1}, ledger = os.tmpname()}:run(function() end, {batches = 2}) end))
  end)
end)
