-- scripts/storm.lua: the same 200 requests twice against a mock allowing 20/s — first
-- all at once with backoff only (a retry storm of 429s), then paced at the declared
-- rate (a flat line at the limit). Run with --events and chart it:
--   pacer --events storm.jsonl scripts/storm.lua && pacer report storm.jsonl -o storm.svg
local pacer = require "pacer"

local mock = pacer.mock{rate = "20/s", burst = 5}
local items = {}
for i = 1, 200 do items[i] = i end

-- A storm may exhaust an item's tries: that is part of what it shows, so those items
-- are counted and printed here (on_error = "return"); the paced run must lose none.
local function run(label, api, on_error)
  local t0 = pacer.now()
  local gave_up = 0
  pacer.each(items, function()
    local res, err = api:get("/numbers")
    if not res then
      gave_up = gave_up + 1
      error(err.message, 0)
    end
  end, {concurrency = 50, label = label, on_error = on_error})
  local s = api:stats()
  print(string.format("%-8s %6.2fs  %4d attempts  %4d 429s  %d gave up", label, pacer.now() - t0,
    s.requests, s.throttled, gave_up))
end

run("backoff", pacer.client{base_url = mock.url .. "/v2", retry = {max_tries = 20, base = 0.5, cap = 8}}, "return")
pacer.sleep(2)
run("paced", pacer.client{base_url = mock.url .. "/v2", rate = "20/s"})
mock:close()
