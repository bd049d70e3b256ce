-- bench/job.lua MODE ...: one measurement of pacer.job per process (bench/job runs them all).
--   load N          ledger load of an N-row CSV: rows/s and peak RSS
--   run N URL       N rows through job:run against the mock at URL: items/s
--   each N URL      the same rows through pacer.each, in memory: items/s
--   kill T N URL    T kill -9 trials at random moments on an N-row job: lost, resends, keys
local H = dofile("spec/support/helpers.lua")
local mode = arg[1]

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  os.execute("mkdir -p " .. d)
  return d
end

local function peak_rss_mb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s+(%d+)")
    if kb then return tonumber(kb) / 1024 end
  end
end

local function write_csv(path, n)
  local f = assert(io.open(path, "w"))
  f:write("phone,message\n")
  for i = 1, n do f:write(string.format("+1555%07d,hello %d\n", i, i)) end
  f:close()
end

local function send(api)
  return function(row, item)
    local res = assert(api:post("/sms/send", {json = {to = row.phone, message = row.message},
      idempotency_key = type(item) == "table" and item.idempotency_key or nil}))
    if res.status ~= 200 then error("HTTP " .. res.status) end
    return true
  end
end

if mode == "load" then
  local n = tonumber(arg[2])
  local dir = tmpdir()
  write_csv(dir .. "/rows.csv", n)
  local t0 = pacer.now()
  local job = pacer.job{input = dir .. "/rows.csv", key = "phone", progress = false}
  local total = job:summary().total
  local took = pacer.now() - t0
  job:close()
  os.execute("rm -rf " .. dir)
  assert(total == n, "loaded " .. total)
  print(string.format("load %d %.0f %.1f", n, n / took, peak_rss_mb()))
elseif mode == "run" or mode == "each" then
  local n, url = tonumber(arg[2]), arg[3]
  local api = pacer.client{base_url = url .. "/v2", concurrency = 64, retry = false}
  local dir = tmpdir()
  local t0, ok
  if mode == "run" then
    write_csv(dir .. "/rows.csv", n)
    local job = pacer.job{input = dir .. "/rows.csv", key = "phone", concurrency = 64, progress = false}
    job:summary() -- loaded before the clock starts: this measures sending
    t0 = pacer.now()
    ok = job:run(send(api)).done
  else
    local rows = {}
    for i = 1, n do rows[i] = {phone = string.format("+1555%07d", i), message = "hello " .. i} end
    t0 = pacer.now()
    ok = 0
    for _, r in ipairs(pacer.each(rows, send(api), {concurrency = 64, progress = false})) do
      if r.ok then ok = ok + 1 end
    end
  end
  local took = pacer.now() - t0
  os.execute("rm -rf " .. dir)
  assert(ok == n, mode .. ": " .. ok .. " of " .. n .. " ok")
  print(string.format("%s %d %.0f", mode, n, n / took))
elseif mode == "kill" then
  local trials, n, url = tonumber(arg[2]), tonumber(arg[3]), arg[4]
  local lost, twice, resent, key_changed = 0, 0, 0, 0
  for t = 1, trials do
    local dir = tmpdir()
    local csv = dir .. "/rows.csv"
    local f = assert(io.open(csv, "w"))
    f:write("phone,message\n")
    for i = 1, n do f:write(string.format("+1%03d%07d,hello %d\n", t, i, i)) end
    f:close()
    local script = H.script(string.format([[
local api = pacer.client{base_url = %q, rate = "2000/s", retry = {max_tries = 20, cap = 1}}
local job = pacer.job{input = %q, key = "phone", concurrency = 16}
job:run(function(row, item)
  local res = assert(api:post("/sms/send", {json = {to = row.phone, message = row.message},
    idempotency_key = item.idempotency_key}))
  if res.status ~= 200 then error("HTTP " .. res.status) end
end)
]], url .. "/v2", csv))
    local killed = false
    for _ = 1, 50 do -- a kill at a random moment, then runs until one finishes (bounded)
      local delay = killed and 5 or (0.05 + math.random() * 1.2)
      local done = os.execute(string.format("timeout -s KILL %.2f %s -q %s >/dev/null 2>&1", delay, H.PACER, script))
      killed = true
      if done == true then break end
    end
    local rec = assert(pacer.request{url = url .. "/_mock/requests", retry = false, max_body = 1 << 30}):json()
    local accepted, first_key = {}, {}
    for _, r in ipairs(rec) do
      if r.path == "/v2/sms/send" and r.status == 200 then
        local to = pacer.json.decode(r.body).to
        if to:sub(1, 5) == string.format("+1%03d", t) then
          first_key[to] = first_key[to] or r.idempotency_key
          if r.idempotency_key ~= first_key[to] then key_changed = key_changed + 1 end
          if r.replayed then resent = resent + 1 else accepted[to] = (accepted[to] or 0) + 1 end
        end
      end
    end
    for i = 1, n do
      local c = accepted[string.format("+1%03d%07d", t, i)] or 0
      if c == 0 then lost = lost + 1 elseif c > 1 then twice = twice + 1 end
    end
    os.execute("rm -rf " .. dir)
    H.remove_scripts()
  end
  print(string.format("kill %d %d %d %d %d %d", trials, n, lost, twice, resent, key_changed))
end
