-- bench/lib.lua: shared by the benchmarks: nginx with a server-side status log, a
-- background pacer mock, and counting what the server saw.
local H = dofile("spec/support/helpers.lua")
local M = {H = H}

-- nginx with /limited (limit_req 100r/s, burst 0, 429) and /small.txt; every request
-- to /limited is logged with its status so 429s are counted where they happen. It serves
-- a file: a `return` would answer in the rewrite phase, before limit_req ever runs.
function M.nginx(rate)
  return H.nginx(string.format([[
    location = /limited { access_log %s/status.log st; limit_req zone=one; limit_req_status 429; alias %s/html/small.txt; }
  ]], "__DIR__", "__DIR__"), string.format([[
    limit_req_zone $binary_remote_addr zone=one:1m rate=%dr/s;
    log_format st '$status';
  ]], rate))
end

function M.count_statuses(path)
  local counts, total = {}, 0
  local f = io.open(path)
  if not f then return counts, 0 end
  for line in f:lines() do
    counts[line] = (counts[line] or 0) + 1
    total = total + 1
  end
  f:close()
  return counts, total
end

-- Starts `pacer mock` as its own process; returns {url=, stop=}.
function M.mock(args)
  local port = H.free_port()
  local pidfile = os.tmpname()
  os.execute(string.format("sh -c '%s mock --port %d %s >/dev/null 2>&1 & echo $! > %s'", H.PACER, port,
    args, pidfile))
  local url = "http://127.0.0.1:" .. port
  for _ = 1, 100 do
    if pacer.request{url = url .. "/v2/billing/usage", retry = false, timeout = 1} then break end
    pacer.sleep(0.05)
  end
  return {url = url, stop = function()
    os.execute("kill $(cat " .. pidfile .. ") 2>/dev/null; rm -f " .. pidfile)
  end}
end

-- Runs N GETs of `url` through a pacer client at `rate` (nil: unpaced) with
-- `concurrency` in flight. Returns makespan seconds and the client's stats.
function M.pacer_run(url, n, rate, concurrency)
  local api = pacer.client{rate = rate, concurrency = concurrency, retry = {base = 0.05, cap = 2}}
  local items = {}
  for i = 1, n do items[i] = i end
  local t0 = pacer.now()
  pacer.each(items, function() return api:get(url).status end, {concurrency = concurrency, progress = false})
  return pacer.now() - t0, api:stats()
end

function M.sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

return M
