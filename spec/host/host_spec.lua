-- spec/host/host_spec.lua: the pacer command line, run as a real subprocess (H.run_pacer).
-- Runs inside the pacer host: ./build/pacer tools/busted.lua -o TAP spec/host/host_spec.lua

local H = dofile("spec/support/helpers.lua")

local has, contains = H.has, H.contains

local script = H.script
teardown(H.remove_scripts)

describe("pacer command line", function()
  it("--version prints 'pacer <version>' and exits 0", function()
    local r = H.run_pacer{"--version"}
    assert.are.equal(0, r.code)
    assert.truthy(r.stdout:find("^pacer %d+%.%d+%.%d+"), r.stdout)
    contains(r.stdout, "pacer " .. pacer.version)
    assert.are.equal("", r.stderr)
  end)

  it("--help exits 0 and describes -e CODE", function()
    local r = H.run_pacer{"--help"}
    assert.are.equal(0, r.code)
    contains(r.stdout, "-e CODE")
    contains(r.stdout, "usage: pacer")
    assert.are.equal(0, H.run_pacer{"-h"}.code)
  end)

  it("an unknown option exits 2 and names it", function()
    local r = H.run_pacer{"--bogus"}
    assert.are.equal(2, r.code)
    contains(r.stderr, "pacer: unknown option '--bogus'")
    assert.are.equal("", r.stdout)
  end)

  it("-e without code exits 2", function()
    local r = H.run_pacer{"-e"}
    assert.are.equal(2, r.code)
    contains(r.stderr, "pacer: option needs an argument: '-e'")
  end)

  it("-e runs code", function()
    local r = H.run_pacer{"-e", "print(1+1)"}
    assert.are.equal(0, r.code)
    assert.are.equal("2\n", r.stdout)
    assert.are.equal("", r.stderr)
  end)

  it("-e code may use pacer and wait", function()
    local r = H.run_pacer{"-e", "local t = pacer.spawn(function() pacer.sleep('10ms') return 6 end) print(select(2, t:wait()) * 7)"}
    assert.are.equal(0, r.code)
    assert.are.equal("42\n", r.stdout)
  end)

  it("-e passes the following words as arg[1..]", function()
    local r = H.run_pacer{"-e", "print(#arg, arg[1], arg[2])", "one", "two"}
    assert.are.equal(0, r.code)
    assert.are.equal("2\tone\ttwo\n", r.stdout)
  end)

  it("sets the global arg: arg[0] is the script, arg[1].. the arguments", function()
    local path = script([[
print(arg[0])
print(#arg)
for i = 1, #arg do print(i, arg[i]) end
print(select("#", ...), ...)
]])
    local r = H.run_pacer{path, "alpha", "two words", "--flag"}
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(path .. "\n3\n1\talpha\n2\ttwo words\n3\t--flag\n3\talpha\ttwo words\t--flag\n", r.stdout)
  end)

  it("arg[-1] is the pacer binary", function()
    local path = script("print(arg[-1])")
    local r = H.run_pacer{path}
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(H.PACER .. "\n", r.stdout)
  end)

  it("a script that ends normally exits 0", function()
    local r = H.run_pacer{script("pacer.sleep(0.01) io.write('fine')")}
    assert.are.equal(0, r.code)
    assert.are.equal("fine", r.stdout)
  end)

  it("a runtime error prints 'pacer: file:line: msg' and a traceback, and exits 1", function()
    local path = script("local x = 1\nio.write('before')\nerror('kaboom')\nio.write('after')\n")
    local r = H.run_pacer{path}
    assert.are.equal(1, r.code)
    assert.are.equal("before", r.stdout)
    assert.truthy(r.stderr:find("^pacer: " .. path:gsub("%p", "%%%0") .. ":3: kaboom\n"), r.stderr)
    contains(r.stderr, "stack traceback")
  end)

  it("the built-in lualib (bytecode) keeps its file names and lines in a traceback", function()
    local r = H.run_pacer({"-e", "pacer.client{rate = 'x'}"}, {env = "env -u PACER_PATH"})
    assert.are.equal(1, r.code)
    -- (the name Lua gives the function depends on the order of package.loaded: not checked)
    assert.truthy(r.stderr:find("\n%s+lualib/pacer/http/client%.lua:%d+: in "), r.stderr)
    assert.truthy(r.stderr:find("\n%s+lualib/pacer/base/options%.lua:%d+: in function"), r.stderr)
  end)

  it("a runtime error after a wait is reported the same way", function()
    local path = script("pacer.sleep(0.01)\nlocal t = nil\nprint(t.field)\n")
    local r = H.run_pacer{path}
    assert.are.equal(1, r.code)
    contains(r.stderr, "pacer: " .. path .. ":3: attempt to index a nil value (local 't')")
    contains(r.stderr, "stack traceback")
  end)

  it("a syntax error prints 'pacer: file:line:' and exits 1", function()
    local path = script("local x = 1\nlocal = 2\n")
    local r = H.run_pacer{path}
    assert.are.equal(1, r.code)
    contains(r.stderr, "pacer: " .. path .. ":2:")
    assert.are.equal("", r.stdout)
  end)

  it("a syntax error in -e code exits 1", function()
    local r = H.run_pacer{"-e", "print(("}
    assert.are.equal(1, r.code)
    contains(r.stderr, "pacer: (command line):1:")
  end)

  it("a missing script exits 1 with 'cannot open'", function()
    local r = H.run_pacer{"/nonexistent/dir/missing_script.lua"}
    assert.are.equal(1, r.code)
    contains(r.stderr, "pacer: cannot open /nonexistent/dir/missing_script.lua")
  end)

  it("a failed task nobody waits for is reported, the others finish, and the exit is 1", function()
    local path = script([[
for i = 1, 3 do
  pacer.spawn(function()
    if i == 2 then error("task two broke") end
    pacer.sleep(0.05)
    print("done " .. i)
  end)
end
]])
    local r = H.run_pacer{path}
    assert.are.equal(1, r.code)
    contains(r.stderr, "pacer: task failed: " .. path .. ":3: task two broke")
    contains(r.stderr, "stack traceback")
    assert.are.equal("done 1\ndone 3\n", r.stdout)
  end)

  it("a failed task whose error is collected with t:wait() is not reported, exit 0", function()
    local path = script([[
local t = pacer.spawn(function() error("handled") end)
local ok, err = t:wait()
print(ok, (err:gsub("^.*: ", "")))
]])
    local r = H.run_pacer{path}
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("false\thandled\n", r.stdout)
    assert.is_false(has(r.stderr, "task failed"), r.stderr)
  end)

  it("waits for tasks still running after the main chunk returns", function()
    local path = script([[
pacer.spawn(function() pacer.sleep(0.1) print("late task") end)
print("main done")
]])
    local r = H.run_pacer{path}
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("main done\nlate task\n", r.stdout)
  end)

  it("a deadlock ends the run with exit 1 instead of hanging", function()
    local path = script([[
local main = pacer.current()
local t = pacer.spawn(function() main:wait() end)
t:wait()
]])
    local r = H.run_pacer({path}, {timeout = 10})
    assert.are.equal(1, r.code)
    contains(r.stderr, "pacer: the main task is blocked with nothing left to wake it (deadlock)")
  end)

  it("a task left blocked after the main chunk ends is a deadlock too", function()
    local path = script([[
local other = pacer.spawn(function() pacer.sleep(0.05) end)
pacer.spawn(function() local me = pacer.current(); pacer.spawn(function() me:wait() end):wait() end)
other:wait()
]])
    local r = H.run_pacer({path}, {timeout = 10})
    assert.are.equal(1, r.code)
    contains(r.stderr, "pacer: 2 tasks are blocked with nothing left to wake them (deadlock)")
  end)

  it("SIGINT interrupts a sleeping script: exit 130 and 'interrupted'", function()
    local path = script("io.write('started\\n') io.stdout:flush()\npacer.sleep(30)\nprint('not reached')\n")
    local dir = os.tmpname()
    local out, err = dir .. ".out", dir .. ".err"
    local t0 = pacer.now()
    local cmd = string.format(
      "sh -c '%s %s >%s 2>%s & pid=$!; sleep 1; kill -INT $pid; wait $pid; echo $?' >%s.code",
      H.PACER, path, out, err, dir)
    os.execute("timeout 20 " .. cmd)
    local el = pacer.now() - t0
    local code = H.read_file(dir .. ".code") or ""
    local stdout = H.read_file(out) or ""
    local stderr = H.read_file(err) or ""
    os.remove(dir) os.remove(dir .. ".code") os.remove(out) os.remove(err)
    assert.are.equal("130\n", code)
    assert.are.equal("started\n", stdout)
    contains(stderr, "pacer: interrupted")
    assert.is_true(el < 10, "the interrupted run took " .. el .. " s")
  end)
end)

describe("Ctrl-C for code that never yields", function()
  -- runs `path`, sends SIGINT after `after` s (and again every 0.5 s, `times` in all);
  -- returns the exit code, stderr, and the seconds from the first SIGINT to the exit
  local function interrupt(path, after, times)
    local dir = os.tmpname()
    local ints = {}
    for i = 1, times or 1 do ints[i] = (i > 1 and "sleep 0.5; " or "") .. "kill -INT $pid 2>/dev/null;" end
    local cmd = string.format("sh -c '%s %s >/dev/null 2>%s.err & pid=$!; sleep %s; date +%%s.%%N >%s.t0; %s "
      .. "wait $pid; echo $? >%s.code; date +%%s.%%N >%s.t1'", H.PACER, path, dir, after, dir,
      table.concat(ints, " "), dir, dir)
    os.execute("timeout 20 " .. cmd)
    local code = H.read_file(dir .. ".code") or ""
    local stderr = H.read_file(dir .. ".err") or ""
    local took = tonumber(H.read_file(dir .. ".t1") or "") - tonumber(H.read_file(dir .. ".t0") or "")
    for _, ext in ipairs{"", ".err", ".code", ".t0", ".t1"} do os.remove(dir .. ext) end
    return code, stderr, took
  end

  it("a script in `while true do end` exits 130 with one line saying so", function()
    local code, stderr, took = interrupt(script("while true do end\n"), 0.5)
    assert.are.equal("130\n", code)
    assert.are.equal("\npacer: interrupted\n", stderr:match("^\npacer: interrupted\n"), stderr)
    assert.is_false(has(stderr, "traceback"), stderr)
    assert.is_true(took < 3, "exited " .. took .. " s after the SIGINT")
  end)

  it("a busy task among others that yield is stopped too: exit 130", function()
    local code, stderr, took = interrupt(script([[
pacer.spawn(function() while true do pacer.sleep(0.01) end end)
pacer.spawn(function() local x = 0 while true do x = x + 1 end end)
pacer.sleep(60)
]]), 0.5)
    assert.are.equal("130\n", code)
    contains(stderr, "pacer: interrupted")
    assert.is_true(took < 3, "exited " .. took .. " s after the SIGINT")
  end)

  it("code that catches 'interrupted' cannot go on: exit 130, nothing after the catch runs", function()
    local marker = os.tmpname()
    local code, stderr, took = interrupt(script(string.format([[
while true do
  pcall(function() while true do end end)
  io.open(%q, "w"):write("went on"):close()
end
]], marker)), 0.5)
    local after = H.read_file(marker)
    os.remove(marker)
    assert.are.equal("130\n", code)
    contains(stderr, "pacer: interrupted")
    assert.are.equal("", after)
    assert.is_true(took < 3, "exited " .. took .. " s after the SIGINT")
  end)

  it("a loop in a coroutine of the script's own is ended by the third Ctrl-C", function()
    local code, _, took = interrupt(script("coroutine.wrap(function() while true do end end)()\n"), 0.5, 3)
    assert.are.equal("130\n", code) -- killed by SIGINT: the shell reports 128 + 2
    assert.is_true(took < 4, "exited " .. took .. " s after the first SIGINT")
  end)
end)

describe("pacer mock command line", function()
  it("an unknown option exits 2 and names it, without a traceback", function()
    local r = H.run_pacer({"mock", "--bogus"}, {timeout = 10})
    assert.are.equal(2, r.code)
    assert.is_false(has(r.stderr, "stack traceback"), r.stderr)
    contains(r.stderr, "pacer mock: unknown option '--bogus'")
    assert.is_false(has(r.stdout, "listening"), r.stdout)
  end)

  it("a non-integer port exits non-zero and names the option", function()
    local r = H.run_pacer({"mock", "--port", "eighty"}, {timeout = 10})
    assert.are_not.equal(0, r.code)
    contains(r.stderr, "pacer mock: --port expects an integer, got 'eighty'")
  end)

  it("--fail-status picks the injected statuses, and refuses what is not a status", function()
    local r = H.run_pacer({"mock", "--fail-status", "50x"}, {timeout = 10})
    assert.are.equal(2, r.code)
    contains(r.stderr, "pacer mock: --fail-status expects HTTP statuses like 503 or 500,503, got '50x'")
    local port = H.free_port()
    local pidfile = os.tmpname()
    os.execute(string.format("sh -c '%s mock --port %d --rate 1000/s --fail 1 --fail-status 503 >/dev/null 2>&1 & "
      .. "echo $! > %s'", H.PACER, port, pidfile))
    local statuses = {}
    for _ = 1, 100 do -- until it listens, then 5 answers
      local res = pacer.request{url = "http://127.0.0.1:" .. port .. "/v2/billing/usage", retry = false, timeout = 1}
      if res then statuses[#statuses + 1] = res.status end
      if #statuses == 5 then break end
      pacer.sleep(0.05)
    end
    os.execute("kill $(cat " .. pidfile .. ") 2>/dev/null")
    os.remove(pidfile)
    assert.are.same({503, 503, 503, 503, 503}, statuses)
  end)

  it("--help prints usage and exits 0", function()
    local r = H.run_pacer({"mock", "--help"}, {timeout = 10})
    assert.are.equal(0, r.code)
    contains(r.stdout, "usage: pacer mock")
    contains(r.stdout, "--rate R")
    contains(r.stdout, "--port P")
  end)
end)
