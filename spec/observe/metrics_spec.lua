-- spec/observe/metrics_spec.lua: --metrics / pacer.metrics{}: GET /metrics while a job
-- runs, checked by Prometheus's own tools: promtool on a scrape taken mid-run, and a
-- real prometheus server that scrapes pacer and is asked over its HTTP API.
local H = dofile("spec/support/helpers.lua")

-- A job in its own pacer process: requests through a paced client with a key pool, a
-- breaker and secrets in its URL and headers, a queue and a pacer.job, until the file
-- `stop` exists (at most 40 s).
local JOB = [[
local stop = ...
local mock = pacer.mock{rate = "1000/s", latency = "5ms", fail = 0.05}
local api = pacer.client{base_url = "http://user:PASSW0RD-XYZ@" .. mock.url:gsub("^http://", "") .. "/v2",
  headers = {["X-Auth-Token"] = "TOKEN-SECRET-123"}, keys = {"KEY-SECRET-A", "KEY-SECRET-B"}, rate = "20/s",
  breaker = {}, retry = {base = 0.05, cap = 0.1}, name = "sms"}
local q = pacer.queue{}
for i = 1, 3 do q:push(i) end
local rows = {}
for i = 1, 2000 do rows[i] = {id = i} end
local ledger = os.tmpname()
local job = pacer.job{input = rows, ledger = ledger .. ".db", name = "welcome", key = "id", progress = false,
  concurrency = 4}
local deadline = pacer.now() + 40
pacer.spawn(function()
  while not io.open(stop) and pacer.now() < deadline do pacer.sleep(0.1) end
  os.remove(ledger .. ".db")
  os.exit(0)
end)
job:run(function() return api:get("/numbers", {query = {api_key = "QUERY-SECRET-9"}}).status end)
]]

local SECRETS = {"PASSW0RD-XYZ", "TOKEN-SECRET-123", "KEY-SECRET-A", "KEY-SECRET-B", "QUERY-SECRET-9"}

local function tmp(ext)
  local p = os.tmpname()
  os.remove(p)
  return p .. (ext or "")
end

-- Starts JOB with --metrics on a free port; returns {port=, stop=function, wait=function}.
local function start_job()
  local port = H.free_port()
  local script, stop = H.script(JOB), tmp(".stop")
  local done = pacer.spawn(function()
    return H.sh(string.format("%s -q --metrics 127.0.0.1:%d %s %s", H.q(H.PACER), port, script, stop), 60)
  end)
  return {port = port, stop = function()
    io.open(stop, "w"):close()
    local _, _, rc = done:wait()
    os.remove(stop)
    return rc
  end}
end

-- GET /metrics until a scrape shows `want` (bounded: 100 tries, about 10 s).
local function scrape_until(port, want)
  local body
  for _ = 1, 100 do
    local res = pacer.request{url = string.format("http://127.0.0.1:%d/metrics", port), retry = false, timeout = 2}
    if res and res.status == 200 then
      body = res.body
      if body:find(want) then return body, res end
    end
    pacer.sleep(0.1)
  end
  error("no scrape showed " .. want .. ":\n" .. tostring(body))
end

describe("/metrics", function()
  teardown(H.remove_scripts)

  it("serves the run mid-job in a format promtool accepts, with every family and no secret", function()
    local job = start_job()
    local text, res = scrape_until(job.port, 'pacer_job_items{job="welcome",outcome="done"} [1-9]')
    local rc = job.stop()
    assert.are.equal(0, rc)
    assert.matches("^text/plain; version=0.0.4", res.headers["content-type"])
    for _, family in ipairs{"pacer_requests_total", "pacer_retries_total", "pacer_throttled_total",
      "pacer_request_duration_seconds", "pacer_limiter_wait_seconds", "pacer_inflight", "pacer_circuit_open",
      "pacer_queue_items", "pacer_job_items", "pacer_time_seconds_total"} do
      H.contains(text, "# TYPE " .. family .. " ")
    end
    assert.matches('pacer_requests_total{client="sms",method="GET",status="200"} %d+', text)
    assert.matches('pacer_request_duration_seconds_bucket{client="sms",le="%+Inf"} %d+', text)
    assert.matches('pacer_request_duration_seconds_count{client="sms"} %d+', text)
    H.contains(text, 'pacer_queue_items{queue="queue#1"} 3')
    assert.matches('pacer_key_requests_total{client="sms",key="key#1"} %d+', text)
    assert.matches('pacer_key_requests_total{client="sms",key="key#2"} %d+', text)
    for _, s in ipairs(SECRETS) do assert.is_nil(text:find(s, 1, true), s .. " in /metrics") end
    local file = tmp(".prom")
    local f = assert(io.open(file, "w"))
    f:write(text)
    f:close()
    local out, code = H.sh("promtool check metrics < " .. file .. " 2>&1", 30)
    os.remove(file)
    assert.are.equal(0, code, out)
  end)

  it("is scraped by a real prometheus server, which answers a query for pacer_requests_total", function()
    local job = start_job()
    local dir, pport = tmp(), H.free_port()
    os.execute("mkdir -p " .. dir)
    local conf = assert(io.open(dir .. "/prometheus.yml", "w"))
    conf:write(string.format([[
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pacer
    static_configs:
      - targets: ["127.0.0.1:%d"]
]], job.port))
    conf:close()
    os.execute(string.format("prometheus --config.file=%s/prometheus.yml --storage.tsdb.path=%s/data "
      .. "--web.listen-address=127.0.0.1:%d >%s/log 2>&1 </dev/null & echo $! >%s/pid", dir, dir, pport, dir, dir))
    local found, last
    local deadline = pacer.now() + 45
    while pacer.now() < deadline do -- until it has scraped pacer at least once
      local res = pacer.request{url = string.format("http://127.0.0.1:%d/api/v1/query", pport), retry = false,
        timeout = 2, query = {query = 'sum(pacer_requests_total{client="sms"})'}}
      if res and res.status == 200 then
        last = res.body
        local r = res:json().data.result
        if #r > 0 and tonumber(r[1].value[2]) > 0 then
          found = tonumber(r[1].value[2])
          break
        end
      end
      pacer.sleep(0.5)
    end
    local pid = H.read_file(dir .. "/pid"):match("%d+")
    os.execute("kill " .. pid .. " 2>/dev/null")
    for _ = 1, 100 do -- until it has gone (10 s at most)
      if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then break end
      pacer.sleep(0.1)
    end
    local rc = job.stop()
    local log = H.read_file(dir .. "/log") or ""
    os.execute("rm -rf " .. dir)
    assert.is_truthy(found, "prometheus never had pacer_requests_total: " .. tostring(last) .. "\n" .. log)
    assert.is_true(found >= 1)
    assert.are.equal(0, rc)
  end)

  it("pacer.metrics{} in a script serves the same text; a port in use is an error naming it", function()
    local srv = pacer.metrics{port = 0}
    local res = assert(pacer.request{url = srv.url .. "/metrics", retry = false})
    assert.are.equal(200, res.status)
    local _, err = pcall(pacer.metrics, {port = srv.port})
    assert.matches("pacer.metrics: port " .. srv.port .. " is in use", err, 1, true)
    srv:close()
    assert.matches("pacer.metrics: unknown option 'prt'", H.message(function() pacer.metrics{prt = 1} end), 1, true)
  end)

  it("escapes label values: quotes, backslashes, control bytes and invalid UTF-8 still pass promtool", function()
    local srv = pacer.serve{port = 0, routes = {["GET /x"] = function() return 200, "ok" end}}
    local api = pacer.client{base_url = srv.url, name = "a\"b\\c\nd\255\254"}
    assert(api:get("/x"))
    local srv2 = pacer.metrics{port = 0}
    local res = assert(pacer.request{url = srv2.url .. "/metrics", retry = false})
    srv2:close()
    srv:close()
    H.contains(res.body, 'pacer_requests_total{client="a\\"b\\\\c?d??",method="GET",status="200"} 1')
    local file = tmp(".prom")
    local f = assert(io.open(file, "w"))
    f:write(res.body)
    f:close()
    local out, code = H.sh("promtool check metrics < " .. file .. " 2>&1", 30)
    os.remove(file)
    assert.are.equal(0, code, out)
  end)

  it("--metrics on a port in use is a command-line error before the script runs (exit 2)", function()
    local busy = pacer.serve{port = 0, handler = function() return 204 end}
    local marker = tmp(".ran")
    local r = H.run_pacer({"--metrics", "127.0.0.1:" .. busy.port, "-e", string.format("io.open(%q, 'w'):close()",
      marker)})
    busy.close()
    assert.are.equal(2, r.code)
    H.contains(r.stderr, "pacer: --metrics 127.0.0.1:" .. busy.port .. ": port " .. busy.port .. " is in use")
    assert.is_nil(io.open(marker), "the script ran")
    r = H.run_pacer({"--metrics", "nonsense", "-e", "print(1)"})
    assert.are.equal(2, r.code)
    H.contains(r.stderr, "--metrics takes HOST:PORT (e.g. 127.0.0.1:9464), not 'nonsense'")
  end)
end)
