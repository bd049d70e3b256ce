-- pacer report: the chart of a run, drawn from its --events log and looked at the way a
-- person would, rendered by headless Chromium.
local H = dofile("spec/support/helpers.lua")

local CHROMIUM = "chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run " ..
  "--disable-background-networking --disable-component-update --disable-sync"

local function tmp(ext)
  local p = os.tmpname()
  os.remove(p)
  return p .. ext
end

describe("pacer report", function()
  local events

  setup(function()
    -- a real run: paced at the mock's rate with injected 503s, plus an unpaced burst that hits 429s
    events = tmp(".jsonl")
    local script = H.script([[
local mock = pacer.mock{rate = "20/s", burst = 5, fail = 0.1}
local paced = pacer.client{base_url = mock.url .. "/v2", rate = "20/s", retry = {base = 0.1, cap = 0.5}}
local items = {}
for i = 1, 40 do items[i] = i end
pacer.each(items, function() return paced:get("/numbers", {query = {api_key = "SECRET123"}}) end, {concurrency = 4})
for _ = 1, 10 do pacer.request{url = mock.url .. "/v2/numbers", retry = false} end
mock:close()
]])
    local r = H.run_pacer({"-q", "--events", events, script}, {timeout = 60})
    os.remove(script)
    assert(r.code == 0, r.stderr)
  end)

  teardown(function() os.remove(events) end)

  it("writes a run marker, then one JSON line per attempt, with secrets removed from URLs", function()
    local n, kinds, markers = 0, {}, 0
    assert.is_nil(H.read_file(events):find("SECRET123", 1, true))
    for line in io.lines(events) do
      local e = pacer.json.decode(line)
      if e.run then
        markers = markers + 1
        assert.is_number(e.run.started)
        goto continue
      end
      n = n + 1
      assert.is_number(e.t)
      assert.matches("^http://127%.0%.0%.1:%d+/v2/numbers", e.url)
      if e.url:find("?", 1, true) then assert.matches("%?api_key=%*%*%*$", e.url) end
      kinds[e.status] = true
      ::continue::
    end
    assert.are.equal(1, markers)
    assert.is_true(n >= 50)
    assert.is_true(kinds[200] and kinds[429] and true or false, "expected 200s and 429s in the log")
  end)

  it("draws an SVG that Chromium renders to a non-empty picture", function()
    local svg, png = tmp(".svg"), tmp(".png")
    local r = H.run_pacer({"report", events, "-o", svg})
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("pacer report: %d+ attempts over [%d.]+s %-> ", r.stdout)
    local text = H.read_file(svg)
    for _, id in ipairs{"series-ok", "series-retry", "series-throttled", "series-error", "limit", "latency"} do
      assert.matches('id="' .. id .. '"', text, 1, true)
    end
    -- the latency panel: a p50 and a p99 line, one point per time step with timed attempts
    for _, id in ipairs{"latency-p50", "latency-p99"} do
      local points = text:match('id="' .. id:gsub("%-", "%%-") .. '"[^>]- points="([^"]*)"')
      assert.is_truthy(points, "no " .. id .. " line")
      local n = select(2, points:gsub("[%d.]+,[%d.]+", ""))
      assert.is_true(n >= 3, id .. " has " .. n .. " points")
    end
    local dir = tmp("")
    os.execute(string.format("timeout 60 %s --user-data-dir=%s --window-size=940,620 --screenshot=%s file://%s >/dev/null 2>&1",
      CHROMIUM, dir, png, svg))
    local pic = H.read_file(png) or ""
    os.execute("rm -rf " .. dir)
    os.remove(svg) os.remove(png)
    assert.are.equal("\137PNG", pic:sub(1, 4))
    assert.is_true(#pic > 5000, "the rendered chart is only " .. #pic .. " bytes")
  end)

  it("writes an HTML page whose rendered DOM holds every series with bars", function()
    local page = tmp(".html")
    local r = H.run_pacer({"report", events, "-o", page, "--title", "my run"})
    assert.are.equal(0, r.code, r.stderr)
    local dir = tmp("")
    local p = io.popen(string.format("timeout 60 %s --user-data-dir=%s --dump-dom file://%s 2>/dev/null", CHROMIUM, dir, page))
    local dom = p:read("a")
    p:close()
    os.execute("rm -rf " .. dir)
    os.remove(page)
    assert.matches("<h1>my run</h1>", dom, 1, true)
    for _, id in ipairs{"ok", "throttled"} do
      local group = dom:match('<g id="series%-' .. id .. '".-</g>')
      assert.is_truthy(group, "no group for " .. id)
      assert.matches("<rect", group, 1, true)
    end
    assert.matches("declared 20/s", dom, 1, true)
  end)

  it("skips a torn last line (a run killed mid-write) with a warning", function()
    local torn = H.script('{"run": {"started": 1}}\n{"t": 1, "status": 200}\n{"t": 1.5, "status": 200}\n{"t": 2, "sta')
    local out = tmp(".svg")
    local r = H.run_pacer({"report", torn, "-o", out})
    os.remove(torn)
    os.remove(out)
    assert.are.equal(0, r.code, r.stderr)
    assert.matches(":4: skipped a torn last line", r.stderr, 1, true)
    assert.matches("2 attempts", r.stdout, 1, true)
  end)

  it("charts the last run of a file that several runs appended to", function()
    local two = H.script('{"run": {"started": 1}}\n{"t": 1, "status": 200}\n{"run": {"started": 9}}\n'
      .. '{"t": 9, "status": 200}\n{"t": 9.5, "status": 429}\n{"t": 10, "status": 200}\n')
    local out = tmp(".svg")
    local r = H.run_pacer({"report", two, "-o", out})
    os.remove(two)
    os.remove(out)
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("3 attempts", r.stdout, 1, true)
  end)

  it("names the bad line of a file that is not an events log, and exits 1", function()
    local bad = H.script('{"t": 1}\nnot json\n{"t": 2}\n')
    local r = H.run_pacer({"report", bad, "-o", tmp(".svg")})
    os.remove(bad)
    assert.are.equal(1, r.code)
    assert.matches(":2: not an event line %(JSON with a numeric 't'%)", r.stderr)
  end)

  it("refuses a bad command line with exit 2", function()
    local r = H.run_pacer({"report", events})
    assert.are.equal(2, r.code)
    assert.matches("usage: pacer report", r.stderr, 1, true)
    r = H.run_pacer({"report", events, "-o", "out.png"})
    assert.are.equal(2, r.code)
    assert.matches("-o must end in .svg or .html, got 'out.png'", r.stderr, 1, true)
  end)
end)
