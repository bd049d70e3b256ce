-- spec/run/failures_spec.lua: failed items are never silent. pacer.each and q:work (memory
-- and durable) end with a line naming the count and the first messages at the user's
-- file:line, the summary counts them, and the exit status is 1 unless the script says
-- it handles failures (on_error = "return"). Real processes, pacer's own mock.
local H = dofile("spec/support/helpers.lua")

local contains, has = H.contains, H.has

local PACER = H.PACER:sub(1, 1) == "/" and H.PACER or (os.getenv("PWD") .. "/" .. H.PACER)

-- Writes `code` as DIR/job.lua and runs `pacer [args] job.lua` in DIR, so messages name
-- job.lua as the user would see it. Returns {code=, stdout=, stderr=}.
local function run_job(code, args)
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  local f = assert(io.open(dir .. "/job.lua", "w"))
  f:write(code)
  f:close()
  local quoted = {}
  for i, a in ipairs(args or {}) do quoted[i] = H.q(a) end
  local _, _, rc = os.execute(string.format("cd %s && timeout 60 %s %s job.lua >out 2>err </dev/null", H.q(dir),
    H.q(PACER), table.concat(quoted, " ")))
  local r = {code = rc, stdout = H.read_file(dir .. "/out") or "", stderr = H.read_file(dir .. "/err") or ""}
  os.execute("rm -rf " .. H.q(dir))
  return r
end

describe("failed items", function()
  it("the issue's snippet: every item raised, so it says so and exits 1, naming job.lua: and jsno", function()
    local r = run_job([[
local m = pacer.mock{}
local api = pacer.client{base_url = m.url .. "/v2"}
local list = {} for i = 1, 100 do list[i] = i end
pacer.each(list, function(i) api:post("/sms/send", {jsno = {to = "+1555" .. i}}) end, {concurrency = 4})
print("done")
]])
    assert.are.equal(1, r.code, r.stderr)
    contains(r.stdout, "done")
    contains(r.stderr, "pacer.each: 100 of 100 items failed; first: ")
    contains(r.stderr, "job.lua:4: api:post: unknown option 'jsno' (known: ")
    contains(r.stderr, "(100 times)")
    contains(r.stderr, "pacer: 100 items failed in 1 call (exit status 1)")
    assert.is_false(has(r.stderr, "lualib/pacer"), r.stderr) -- the user's line, not ours
  end)

  it("shows the first three distinct messages, and the line even with -q", function()
    local r = run_job([[
pacer.each({1, 2, 3, 4, 5, 6}, function(i) if i % 2 == 0 then error("bad item " .. i) end end)
]], {"-q"})
    assert.are.equal(1, r.code, r.stderr)
    contains(r.stderr, "pacer.each: 3 of 6 items failed; first: job.lua:1: bad item 2; job.lua:1: bad item 4; "
      .. "job.lua:1: bad item 6")
  end)

  it("a run whose items all succeed exits 0 and prints no failure line", function()
    local r = run_job([[pacer.each({1, 2, 3}, function(i) return i end)]])
    assert.are.equal(0, r.code, r.stderr)
    assert.is_false(has(r.stderr, "failed"), r.stderr)
  end)

  it("on_error = \"return\": the script handles them, nothing printed, exit 0", function()
    local r = run_job([[
local res = pacer.each({1, 2}, function() error("x") end, {on_error = "return"})
print(#res, res[1].ok, res[2].ok)
]])
    assert.are.equal(0, r.code, r.stderr)
    contains(r.stdout, "2\tfalse\tfalse")
    assert.is_false(has(r.stderr, "failed"), r.stderr)
  end)

  it("on_error = \"raise\": raises once every item has run, at the caller's line", function()
    local ran = 0
    local ok, err = pcall(pacer.each, {1, 2, 3}, function(i)
      ran = ran + 1
      if i == 1 then error("first one", 0) end
    end, {on_error = "raise"})
    assert.is_false(ok)
    assert.are.equal(3, ran)
    assert.are.equal("pacer.each: 1 of 3 items failed; first: first one", err)
  end)

  it("refuses an unknown on_error", function()
    assert.are.equal('pacer.each: on_error must be "report", "return" or "raise", got "ignore"',
      H.message(function() pacer.each({1}, print, {on_error = "ignore"}) end))
  end)

  it("q:work with a worker that always raises exits 1, naming the worker's line", function()
    local r = run_job([[
local q = pacer.queue{max_attempts = 2}
for i = 1, 5 do q:push(i) end
q:close()
local s = q:work(2, function(item) error("cannot send " .. item) end)
print(s.done, s.failed)
]])
    assert.are.equal(1, r.code, r.stderr)
    contains(r.stdout, "0\t5")
    contains(r.stderr, "queue:work: 5 of 5 items failed; first: job.lua:4: cannot send ")
  end)

  it("dead letters of a durable queue are reported the same way", function()
    local db = os.tmpname() .. ".db"
    local r = run_job(string.format([[
local q = pacer.queue{durable = %q, max_attempts = 1}
q:push("a") q:push("b")
q:close()
q:work(1, function(item) if item == "b" then error("no route for " .. item) end end)
]], db))
    os.execute("rm -f " .. db .. "*")
    assert.are.equal(1, r.code, r.stderr)
    contains(r.stderr, "queue:work: 1 of 2 items failed; first: job.lua:4: no route for b")
  end)

  it("the user's line is named inside spawned tasks, schedules and listener handlers too", function()
    local r = run_job([[
local api = pacer.client{base_url = "http://127.0.0.1:9"}
local t = pacer.spawn(function() api:get("/x", {bogus1 = 1}) end)
print(select(2, t:wait()))
local h = pacer.every("10ms", function() api:get("/x", {bogus2 = 1}) end)
pacer.sleep(0.05) h:stop()
local srv = pacer.serve{port = 0, routes = {["GET /h"] = function() api:get("/x", {bogus3 = 1}) end}}
print(pacer.request{url = srv.url .. "/h", retry = false}.status)
srv:close()
]])
    contains(r.stdout, "job.lua:2: api:get: unknown option 'bogus1'")
    contains(r.stderr, "job.lua:4: api:get: unknown option 'bogus2'")
    contains(r.stderr, "job.lua:6: api:get: unknown option 'bogus3'")
    contains(r.stdout, "500")
  end)

  it("a method called with a dot says how to call it", function()
    local api = pacer.client{base_url = "http://127.0.0.1:9"}
    assert.are.equal("api.get: call it as api:get(...)", H.message(function() return api.get("/x") end))
    assert.are.equal("api.post: call it as api:post(...)", H.message(function() return api.post("/x", {}) end))
    assert.are.equal("api.stats: call it as api:stats(...)", H.message(function() return api.stats() end))
  end)
end)
