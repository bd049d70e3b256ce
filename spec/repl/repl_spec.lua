-- The REPL as a person uses it: typed into a real terminal (tmux), read off the screen.
local H = dofile("spec/support/helpers.lua")

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

local Term = {}
Term.__index = Term

local function start(args, home)
  local name = "pacer-repl-" .. math.random(1e9)
  local ok = os.execute(string.format("tmux new-session -d -s %s -x 150 -y 50 'cd %s && HOME=%s %s %s; sleep 30'",
    name, H.q(os.getenv("PWD") or "."), home, H.PACER, args or ""))
  assert(ok, "tmux did not start")
  return setmetatable({name = name}, Term)
end

function Term:screen() return sh("tmux capture-pane -p -S -200 -t " .. self.name) end

-- Waits (bounded: ~5 s) until the screen shows `pattern` `times` times.
function Term:wait_for(pattern, times)
  times = times or 1
  local screen
  for _ = 1, 100 do
    screen = self:screen()
    local n = 0
    for _ in screen:gmatch(pattern) do n = n + 1 end
    if n >= times then return screen end
    pacer.sleep(0.05)
  end
  error("the screen never showed " .. pattern .. ":\n" .. screen, 2)
end

function Term:type(keys) os.execute("tmux send-keys -t " .. self.name .. " " .. H.q(keys)) end
function Term:key(k) os.execute("tmux send-keys -t " .. self.name .. " " .. k) end
function Term:line(text) self:type(text) self:key("Enter") end
function Term:kill() os.execute("tmux kill-session -t " .. self.name .. " 2>/dev/null") end

describe("the REPL", function()
  local home, term
  before_each(function()
    home = os.tmpname()
    os.remove(home)
    os.execute("mkdir -p " .. home)
  end)
  after_each(function()
    if term then term:kill() end
    os.execute("rm -rf " .. home)
  end)

  it("prints values, continues incomplete chunks, and shows errors", function()
    term = start("", home)
    term:wait_for("Ctrl%-D exits")
    term:line("1 + 1")
    term:wait_for("\n2\n")
    term:line("function twice(x)")
    term:wait_for(">>")
    term:line("return x * 2 end")
    term:line("twice(21), 'ok'")
    term:wait_for("42%s+ok")
    term:line("{a = 1, list = {1, 2}}")
    term:wait_for("list = {")
    term:line("error('oops')")
    term:wait_for("stdin:1: oops")
  end)

  it("runs a request on the loop and pretty-prints the response with its quota", function()
    term = start("", home)
    term:wait_for("Ctrl%-D exits")
    term:line("m = pacer.mock{rate = '5/s'}")
    term:line("api = pacer.client{base_url = m.url .. '/v2', rate = '5/s'}")
    term:line("api:get('/numbers', {query = {per_page = 1}})")
    local screen = term:wait_for("quota: 4 of 5 left")
    assert.matches("HTTP 200  GET http://127.0.0.1:%d+/v2/numbers%?per_page=1", screen)
    assert.matches("number = \"%+15550000001\"", screen)
    assert.matches("total = 250\n", screen)
  end)

  it("completes names with Tab", function()
    term = start("", home)
    term:wait_for("Ctrl%-D exits")
    term:type("pacer.sle")
    term:key("Tab")
    term:wait_for("> pacer%.sleep")
    term:type("(0)")
    term:key("Enter")
    term:line("'after'")
    term:wait_for("\nafter\n")
  end)

  it("Ctrl-C stops waiting for the statement and keeps the REPL; background tasks go on", function()
    term = start("", home)
    term:wait_for("Ctrl%-D exits")
    term:line("t = pacer.spawn(function() pacer.sleep(0.5) done = 'background done' end)")
    term:line("pacer.sleep(30)")
    pacer.sleep(0.2)
    term:key("C-c")
    term:wait_for("interrupted %(the statement goes on in the background%)")
    term:line("'still here'")
    term:wait_for("\nstill here\n")
    pacer.sleep(0.5)
    term:line("done")
    term:wait_for("\nbackground done\n")
    -- at the prompt, Ctrl-C clears the line
    term:type("half a line")
    term:key("C-c")
    term:line("'clean'")
    term:wait_for("\nclean\n")
  end)

  it("Ctrl-C stops a statement that never yields and keeps the session's globals", function()
    term = start("", home)
    term:wait_for("Ctrl%-D exits")
    term:line("kept = 41")
    term:line("while true do end")
    pacer.sleep(0.5)
    term:key("C-c")
    term:wait_for("interrupted\nstack traceback:") -- where the loop was, as lua does
    term:line("kept + 1")
    term:wait_for("\n42\n")
    -- a statement that yields is still only given up, as before
    term:line("pacer.sleep(30)")
    pacer.sleep(0.2)
    term:key("C-c")
    term:wait_for("interrupted %(the statement goes on in the background%)")
  end)

  it("Ctrl-C at a >> continuation prompt drops the pending chunk, as lua does", function()
    term = start("", home)
    term:wait_for("Ctrl%-D exits")
    term:line("x = {")
    term:wait_for("\n>>")
    term:key("C-c")
    term:line("'fresh'")
    term:wait_for("\nfresh\n")
    assert.is_nil(term:screen():find("unexpected symbol", 1, true), term:screen())
  end)

  it("shows a client or a mock as one line, and trailing nils as lua does", function()
    term = start("", home)
    term:wait_for("Ctrl%-D exits")
    term:line("m = pacer.mock{}")
    term:line("api = pacer.client{base_url = m.url .. '/v2', rate = '10/s'}")
    term:line("api")
    term:wait_for("\npacer%.client http://127%.0%.0%.1:%d+/v2 %(10/s, 0 requests%)\n")
    term:line("m")
    term:wait_for("\npacer%.mock http://127%.0%.0%.1:%d+ %(50/s, 0 requests%)\n")
    term:line("1, nil, nil")
    term:wait_for("\n1%s+nil%s+nil\n") -- (tmux shows the tabs as spaces)
  end)

  it("Tab completion offers public methods only", function()
    term = start("", home)
    term:wait_for("Ctrl%-D exits")
    term:line("api = pacer.client{base_url = 'http://127.0.0.1:9'}")
    term:type("api:")
    term:key("Tab")
    term:key("Tab")
    local screen = term:wait_for("api:stats")
    assert.is_nil(screen:find("before_attempt", 1, true), screen)
    assert.is_nil(screen:find("api:pace", 1, true), screen)
  end)

  it("Ctrl-D exits and keeps the history in ~/.pacer_history", function()
    term = start("", home)
    term:wait_for("Ctrl%-D exits")
    term:line("x = 'remember me'")
    term:key("C-d")
    -- (the file may be there before what is written to it: wait for the line itself)
    for _ = 1, 100 do
      if (H.read_file(home .. "/.pacer_history") or ""):find("remember", 1, true) then break end
      pacer.sleep(0.05)
    end
    local hist = H.read_file(home .. "/.pacer_history") or ""
    assert.matches("remember", hist)
  end)

  it("-i enters the REPL after the script, with its globals", function()
    local script = H.script("greeting = 'hello from the script'\n")
    term = start("-i " .. script, home)
    term:wait_for("Ctrl%-D exits")
    term:line("greeting")
    term:wait_for("\nhello from the script\n")
    os.remove(script)
  end)
end)

describe("the REPL on a pipe", function()
  it("reads statements from stdin and prints their values", function()
    local input = H.script("1 + 1\nfunction f()\nreturn 'multi'\nend\nf()\n")
    local r = H.run_pacer({"-i", "-e", "x = 7"}, {stdin = input})
    os.remove(input)
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("\n2\nmulti\n", r.stdout)
  end)
end)
