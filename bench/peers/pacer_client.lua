-- bench/peers/pacer_client.lua: pacer as a client in bench/run, with the same command
-- line as the peers: SCENARIO URL N RATE CONCURRENCY (RATE 0: not declared, so the
-- client learns it from quota headers and 429s; CONCURRENCY 0: the default).
-- Prints {"ok":, "failed":, "attempts":} (or {"queued": N} for hold).
local scenario, url, n, rate, conc = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
if not (scenario == "get" or scenario == "post" or scenario == "hold") or not url or not n or not rate or not conc then
  io.stderr:write("usage: pacer bench/peers/pacer_client.lua get|post|hold URL N RATE CONCURRENCY\n")
  os.exit(2)
end

-- under --workers each worker keeps its share of CONCURRENCY in flight: as many in all
-- as one process (or wrk -cN) would
if conc > 0 then conc = math.ceil(conc / pacer.worker.count) end
local api = pacer.client{
  rate = rate > 0 and rate or nil,
  adaptive = rate == 0 or nil, -- no declared limit: pace from what the server says
  concurrency = conc > 0 and conc or nil,
  idempotency = scenario ~= "get",
  retry = {max_tries = 10},
}

local function send(item)
  if scenario == "get" then return api:get(url) end
  return api:post(url, {json = item})
end

-- The job's items wait in pacer's C queue; workers take them as the limiter allows.
local q = pacer.queue{}
-- under --workers each worker sends its share and prints its own counts (bench/run adds them)
for i = pacer.worker.id, n, pacer.worker.count do
  q:push(scenario == "get" and i or {to = string.format("+1555%07d", i), message = "m" .. i})
end
q:close()
local ok, failed = 0, 0
local worker = pacer.spawn(function()
  q:work(conc > 0 and conc or 64, function(item)
    local res = send(item)
    if res and res.status < 300 then ok = ok + 1 else failed = failed + 1 end
  end)
end)
if scenario == "hold" then
  pacer.sleep(0.5)
  print(string.format('{"queued": %d}', n))
  os.exit(0)
end
worker:wait()
local s = api:stats()
print(string.format('{"ok": %d, "failed": %d, "attempts": %d}', ok, failed, s.requests))
