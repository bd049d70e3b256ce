-- scripts/oncall_email.lua: mail the on-call engineer when pacer gives up on a request.
--   pacer scripts/oncall_email.lua smtp://127.0.0.1:2525 oncall@example.com
-- The API here is a local listener that always answers 503; the mail goes to the SMTP
-- server given (e.g. `python3 -m aiosmtpd -n -l 127.0.0.1:2525` prints it).
local pacer = require "pacer"

local smtp, to = arg[1] or "smtp://127.0.0.1:2525", arg[2] or "oncall@example.com"
local broken = pacer.serve{routes = {["GET /v2/numbers"] = function() return 503, "maintenance" end}}

local api = pacer.client{base_url = broken.url .. "/v2", retry = {max_tries = 3, base = 0.05},
  alerts = {pacer.alert.on("giveup", {email = {url = smtp, from = "pacer <pacer@example.com>", to = to,
    subject = "pacer gave up on the numbers API", user = os.getenv("SMTP_USER"),
    password = os.getenv("SMTP_PASSWORD"), starttls = os.getenv("SMTP_STARTTLS") == "1"}}, {cooldown = "10m"})}}

local res, err = api:get("/numbers")
print(res and ("HTTP " .. res.status) or ("gave up: " .. err.message))
pacer.sleep(1) -- the mail is sent by its own task: let it go before exiting
broken.close()
