-- spec/support/helpers.lua: shared by the specs. Real servers on loopback only.
--   local H = dofile("spec/support/helpers.lua")
local M = {}

M.PACER = os.getenv("PACER") or "./build/pacer"

-- A port that was free a moment ago (bound by our own listener, then closed).
function M.free_port()
  local srv = pacer.serve{port = 0, handler = function() return 204 end}
  local port = srv.port
  srv.close()
  return port
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
M.read_file = read_file

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.q = shell_quote

-- Runs `pacer ARGS...` to completion (blocking: use for short runs).
-- Returns {code=, stdout=, stderr=}.
function M.run_pacer(args, opts)
  opts = opts or {}
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  local parts = {}
  for _, a in ipairs(args) do parts[#parts + 1] = shell_quote(a) end
  local cmd = string.format("%s %s %s >%s/out 2>%s/err%s", opts.env or "", shell_quote(M.PACER),
    table.concat(parts, " "), dir, dir, opts.stdin and (" <" .. shell_quote(opts.stdin)) or " </dev/null")
  local _, _, code = os.execute("timeout " .. (opts.timeout or 30) .. " " .. cmd)
  local r = {code = code, stdout = read_file(dir .. "/out") or "", stderr = read_file(dir .. "/err") or ""}
  os.execute("rm -rf " .. dir)
  return r
end

-- `pacer mock ARGS` as its own process (default "--rate 5000/s"): it outlives the
-- processes a spec kills, and runs beside the spec's own loop. Returns {url=, stop=,
-- requests = function() -> the mock's record}.
function M.mock_process(args)
  local port = M.free_port()
  local pidfile = os.tmpname()
  os.execute(string.format("sh -c '%s mock --port %d %s >/dev/null 2>&1 & echo $! > %s'", M.PACER, port,
    args or "--rate 5000/s", pidfile))
  local url = "http://127.0.0.1:" .. port
  for _ = 1, 100 do
    if pacer.request{url = url .. "/v2/billing/usage", retry = false, timeout = 1} then break end
    pacer.sleep(0.05)
  end
  return {url = url, stop = function() os.execute("kill $(cat " .. pidfile .. ") 2>/dev/null; rm -f " .. pidfile) end,
    requests = function() return assert(pacer.request{url = url .. "/_mock/requests", retry = false}):json() end}
end

-- Runs fn, which must raise; returns its message without the "file:line: " prefix.
function M.message(fn)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error")
  return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
end

-- nginx serving TLS with a self-signed certificate made for the test (openssl);
-- `listen` as for M.nginx ("ssl" or "ssl http2"); `body` more server directives. Its stop() also removes the certificate.
function M.tls_nginx(listen, body)
  local certdir = os.tmpname()
  os.remove(certdir)
  os.execute("mkdir -p " .. certdir)
  local ok = os.execute(string.format(
    "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 " ..
    "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1", certdir, certdir))
  assert(ok, "openssl could not make a certificate")
  local ng = M.nginx(string.format("ssl_certificate %s/cert.pem; ssl_certificate_key %s/key.pem; %s",
    certdir, certdir, body or ""), nil, listen or "ssl")
  local stop = ng.stop
  ng.stop = function()
    stop()
    os.execute("rm -rf " .. certdir)
  end
  return ng
end

function M.has(s, needle) return s:find(needle, 1, true) ~= nil end

-- asserts that `s` contains `needle` (plain), showing `s` on failure
function M.contains(s, needle)
  assert(M.has(s, needle), string.format("expected to find %q in:\n%s", needle, s))
end

-- Runs a shell command in the background (servers under test live in this process, so
-- a blocking os.execute would stall them) and waits, yielding, until it ends or `limit`
-- seconds pass. Returns stdout and the exit code (nil when it did not finish in time).
function M.sh(cmd, limit)
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  os.execute(string.format("( (%s) >%s/out 2>%s/err; echo $? >%s/rc.tmp; mv %s/rc.tmp %s/rc ) </dev/null >/dev/null 2>&1 &",
    cmd, dir, dir, dir, dir, dir))
  local deadline = pacer.now() + (limit or 5)
  local rc
  while pacer.now() < deadline do
    rc = read_file(dir .. "/rc")
    if rc then break end
    pacer.sleep(0.02)
  end
  local out = read_file(dir .. "/out") or ""
  os.execute("rm -rf " .. dir)
  return out, rc and tonumber(rc:match("%d+"))
end

-- Writes `code` to a temporary .lua file and returns its path; M.remove_scripts()
-- (e.g. as a teardown) deletes every such file.
local made = {}
function M.remove_scripts()
  for _, p in ipairs(made) do os.remove(p) end
  made = {}
end

function M.script(code)
  local base = os.tmpname()
  os.remove(base) -- only its name is wanted
  local path = base .. ".lua"
  made[#made + 1] = path
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  return path
end

-- Starts nginx (Debian's) on a free loopback port with `server_body` inside the server
-- block and `http_extra` at http level; `listen_extra` is appended to the listen line
-- (e.g. "ssl http2"). Returns {port=, url=, dir=, stop=}.
function M.nginx(server_body, http_extra, listen_extra)
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir .. "/html " .. dir .. "/logs")
  local port = M.free_port()
  server_body = (server_body or ""):gsub("__DIR__", dir)
  local conf = string.format([[
worker_processes 1;
daemon on;
pid %s/nginx.pid;
error_log %s/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %s/body;
  proxy_temp_path %s/proxy;
  fastcgi_temp_path %s/fastcgi;
  uwsgi_temp_path %s/uwsgi;
  scgi_temp_path %s/scgi;
  %s
  server {
    listen 127.0.0.1:%d %s;
    root %s/html;
    %s
  }
}
]], dir, dir, dir, dir, dir, dir, dir, http_extra or "", port, listen_extra or "", dir, server_body or "")
  local f = assert(io.open(dir .. "/nginx.conf", "w"))
  f:write(conf)
  f:close()
  local hf = assert(io.open(dir .. "/html/small.txt", "w"))
  hf:write("hello from nginx\n")
  hf:close()
  local ok = os.execute("nginx -p " .. dir .. " -c " .. dir .. "/nginx.conf 2>" .. dir .. "/start.log")
  assert(ok, "nginx did not start: " .. (read_file(dir .. "/start.log") or "") .. (read_file(dir .. "/logs/error.log") or ""))
  -- wait until it answers (bounded)
  local scheme = (listen_extra or ""):find("ssl") and "https" or "http"
  for _ = 1, 50 do
    local res = pacer.request{url = scheme .. "://127.0.0.1:" .. port .. "/small.txt", retry = false,
      timeout = 1, verify = false}
    if res then break end
    pacer.sleep(0.05)
  end
  return {
    port = port, url = scheme .. "://127.0.0.1:" .. port, dir = dir,
    stop = function()
      os.execute("nginx -p " .. dir .. " -c " .. dir .. "/nginx.conf -s stop 2>/dev/null")
      for _ = 1, 50 do
        if not read_file(dir .. "/nginx.pid") then break end
        pacer.sleep(0.05)
      end
      os.execute("rm -rf " .. dir)
    end,
  }
end

-- Starts Debian's redis-server on a free loopback port: no persistence, or with
-- o.aof an append-only file synced on every write. Returns {port=, url=, stop=, start=}
-- (start() after stop() brings it back on the same port, with its data when o.aof).
function M.redis(o)
  local persist = (o or {}).aof and "--appendonly yes --appendfsync always" or "--appendonly no"
  local port = M.free_port()
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  local r = {port = port, url = "redis://127.0.0.1:" .. port}
  function r.start()
    assert(os.execute(string.format("redis-server --bind 127.0.0.1 --port %d --save '' %s "
      .. "--daemonize yes --pidfile %s/redis.pid --dir %s --logfile %s/redis.log", port, persist, dir, dir, dir)),
      "redis-server did not start")
    for _ = 1, 100 do -- until it answers PING
      if os.execute(string.format("redis-cli -p %d ping >/dev/null 2>&1", port)) then return end
      pacer.sleep(0.05)
    end
    error("redis-server did not answer on port " .. port)
  end
  function r.stop()
    os.execute(string.format("redis-cli -p %d shutdown nosave >/dev/null 2>&1", port))
    for _ = 1, 100 do
      if not os.execute(string.format("redis-cli -p %d ping >/dev/null 2>&1", port)) then return end
      pacer.sleep(0.05)
    end
  end
  function r.kill() -- a crash: SIGKILL, no shutdown
    os.execute(string.format("kill -9 $(cat %s/redis.pid) 2>/dev/null", dir))
    for _ = 1, 100 do
      if not os.execute(string.format("redis-cli -p %d ping >/dev/null 2>&1", port)) then return end
      pacer.sleep(0.05)
    end
  end
  -- freeze() (SIGSTOP) and thaw() (SIGCONT): a Redis that stops answering, its port
  -- still open and its connections still up
  function r.freeze() os.execute(string.format("kill -STOP $(cat %s/redis.pid) 2>/dev/null", dir)) end
  function r.thaw() os.execute(string.format("kill -CONT $(cat %s/redis.pid) 2>/dev/null", dir)) end
  function r.cleanup()
    r.thaw()
    r.stop()
    os.execute("rm -rf " .. dir)
  end
  r.start()
  return r
end

-- What a mock accepted of `path` (default /v2/sms/send), told apart by the JSON body's
-- `to`: the number of distinct recipients and of recipients accepted more than once.
-- Replays of an Idempotency-Key are not new acceptances.
function M.accepted(requests, path)
  local seen, n, twice = {}, 0, 0
  for _, rec in ipairs(requests) do
    if rec.path == (path or "/v2/sms/send") and rec.status == 200 and not rec.replayed then
      local to = pacer.json.decode(rec.body).to
      if seen[to] then twice = twice + 1 else n = n + 1 end
      seen[to] = true
    end
  end
  return n, twice, seen
end

return M
