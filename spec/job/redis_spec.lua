-- pacer.job with a Redis ledger (a real redis-server on a loopback port): two and three
-- processes on one job load the input once and share its rows, each row accepted once
-- by a real `pacer mock`; a worker killed with -9 loses nothing (its leases come back);
-- pacer job status and export on the Redis URL.
local H = dofile("spec/support/helpers.lua")

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  os.execute("mkdir -p " .. d)
  return d
end

local function accepted(recs)
  local acc, first, same = {}, {}, true
  for _, r in ipairs(recs) do
    if r.path == "/v2/sms/send" and r.status == 200 then
      local to = pacer.json.decode(r.body).to
      first[to] = first[to] or r.idempotency_key
      if r.idempotency_key ~= first[to] then same = false end
      if not r.replayed then acc[to] = (acc[to] or 0) + 1 end
    end
  end
  return acc, same
end

local function numbers(path, n)
  local f = assert(io.open(path, "w"))
  f:write("phone,message\n")
  for i = 1, n do f:write(string.format("+1555%07d,hello %d\n", i, i)) end
  f:close()
end

-- A worker: its own copy of the input (another host has its own file), one job name.
local function worker(dir, url, redis, name, rate)
  return H.script(string.format([[
local api = pacer.client{base_url = %q, rate = %q, retry = {max_tries = 20, cap = 1}}
local job = pacer.job{input = %q, key = "phone", ledger = %q, name = %q, lease = "1s", concurrency = 4,
  output = %q .. arg[1] .. ".jsonl"}
local s = job:run(function(row, item)
  local res = assert(api:post("/sms/send", {json = {to = row.phone, message = row.message},
    idempotency_key = item.idempotency_key}))
  if res.status ~= 200 then error("HTTP " .. res.status) end
  return res:json().id
end)
print(string.format("ran %%d done %%d pending %%d total %%d", s.ran, s.done, s.pending, s.total))
]], url .. "/v2", rate or "200/s", dir .. "/numbers.csv", redis, name, dir .. "/out"))
end

describe("pacer.job{ledger = 'redis://...'}", function()
  local redis
  setup(function() redis = H.redis() end)
  teardown(function() redis.cleanup() end)
  after_each(function() H.remove_scripts() end)

  for _, procs in ipairs{2, 3} do
    it(string.format("shares one job between %d processes: loaded once, each row accepted once", procs), function()
      local dir = tmpdir()
      local N = 400
      numbers(dir .. "/numbers.csv", N)
      local mock = H.mock_process()
      local name = "share-" .. procs .. "-" .. math.random(1e9)
      local script = worker(dir, mock.url, redis.url, name)
      local cmds = {}
      for p = 1, procs do cmds[p] = string.format("%s -q %s %d > %s/p%d 2>&1 &", H.PACER, script, p, dir, p) end
      local _, code = H.sh("(" .. table.concat(cmds, " ") .. " wait)", 60)
      assert.are.equal(0, code)
      local ran = 0
      for p = 1, procs do
        local out = H.read_file(dir .. "/p" .. p)
        local r, d, pending, total = out:match("^ran (%d+) done (%d+) pending (%d+) total (%d+)\n$")
        assert(r, out)
        assert.are.same({N, 0, N}, {tonumber(d), tonumber(pending), tonumber(total)}) -- loaded once
        assert.is_true(tonumber(r) > 0, "process " .. p .. " ran nothing")
        ran = ran + tonumber(r)
        local lines = 0
        for l in io.lines(dir .. "/out" .. p .. ".jsonl") do
          lines = lines + 1
          assert.are.equal(lines + 1, pacer.json.decode(l).line)
        end
        assert.are.equal(N, lines)
      end
      assert.are.equal(N, ran)
      local acc, same = accepted(mock.requests())
      mock.stop()
      for i = 1, N do assert.are.equal(1, acc[string.format("+1555%07d", i)]) end
      assert.is_true(same)
      os.execute("rm -rf " .. dir)
    end)
  end

  it("loses nothing when a worker is killed with -9: its leases come back to the others", function()
    local dir = tmpdir()
    local N = 300
    numbers(dir .. "/numbers.csv", N)
    local mock = H.mock_process()
    local name = "kill-" .. math.random(1e9)
    local script = worker(dir, mock.url, redis.url, name, "100/s")
    local _, code = H.sh(string.format("%s -q %s 1 >%s/p1 2>&1 & k=$!; %s -q %s 2 >%s/p2 2>&1 & "
      .. "sleep 1; kill -9 $k; wait", H.PACER, script, dir, H.PACER, script, dir), 60)
    assert.is_not_nil(code)
    local out = H.read_file(dir .. "/p2")
    assert.matches("done " .. N .. " pending 0", out)
    local acc, same = accepted(mock.requests())
    mock.stop()
    for i = 1, N do assert.are.equal(1, acc[string.format("+1555%07d", i)]) end
    assert.is_true(same, "a resend carried another key")
    os.execute("rm -rf " .. dir)
  end)

  it("pacer job status and export work on the Redis URL", function()
    local name = "cli-" .. math.random(1e9)
    local s = pacer.job{input = {{to = "+1"}, {to = "+2"}, {to = "+1"}}, ledger = redis.url, name = name, key = "to",
      progress = false}:run(function(row) return row.to end)
    assert.are.same({3, 2, 1}, {s.total, s.done, s.duplicate})
    local r = H.run_pacer({"job", "status", redis.url .. "/" .. name})
    assert.are.equal(0, r.code, r.stderr)
    H.contains(r.stdout, string.format("job '%s': 3 items from (table) (ledger %s/%s)\n"
      .. "  done 2  failed 0  invalid 0  duplicate 1  pending 0\n", name, redis.url, name))
    local out = os.tmpname() .. ".jsonl"
    r = H.run_pacer({"job", "export", redis.url .. "/" .. name, "-o", out})
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal('{"key":"+1","line":1,"outcome":"done","attempts":1,"result":"+1"}\n'
      .. '{"key":"+2","line":2,"outcome":"done","attempts":1,"result":"+2"}\n'
      .. '{"key":"+1","line":3,"outcome":"duplicate","attempts":0,"reason":"duplicate of line 1"}\n', H.read_file(out))
    os.remove(out)
    r = H.run_pacer({"job", "status", redis.url .. "/nope"})
    assert.are.same({1, string.format("pacer job: no job 'nope' in %s\n", redis.url)}, {r.code, r.stderr})
  end)
end)
