-- Send an SMS to each number in numbers.csv at the API's limit; run it again after a crash
-- and it sends only what is left. pacer scripts/sms_job.lua [numbers.csv] (no API_URL: a mock)
local pacer = require "pacer"
local rate = os.getenv("RATE") or "50/min"
local api = pacer.client{base_url = os.getenv("API_URL") or pacer.mock{rate = rate}.url .. "/v2",
  headers = {["X-Auth-Token"] = os.getenv("API_KEY")}, rate = rate}
local job = pacer.job{input = arg[1] or "numbers.csv", key = "phone", output = "results.jsonl",
  validate = function(row) return row.phone:match("^%+%d+$"), "not a phone number" end}
job:run(function(row, item)
  local res, err = api:post("/sms/send", {json = {to = row.phone, message = "Hello " .. row.name},
    idempotency_key = item.idempotency_key})   -- the same key on every attempt and after a crash
  if not res then error(err.message) end
  if res.status ~= 200 then error("HTTP " .. res.status .. ": " .. res.body) end
  return res:json().id                            -- kept as the row's result
end)
