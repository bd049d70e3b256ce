-- pacer.observe.cli: what --metrics and --threshold ask for, set up before the script
-- runs (host.c calls start): a malformed threshold or a --metrics port that cannot be
-- had is a command-line error (exit status 2), not a surprise after the work is done.
local options = require "pacer.c.cmdline"

local M = {}

-- Returns nil, or a message for the command-line error.
function M.start()
  local threshold = require "pacer.observe.threshold"
  for _, e in ipairs(options.thresholds or {}) do
    local t, err = threshold.parse(e)
    if not t then return "--threshold " .. err end
    threshold.add("--threshold", {e})
  end
  if options.metrics then
    local host, port = options.metrics:match("^%[(.+)%]:(%d+)$")
    if not host then host, port = options.metrics:match("^([^:]*):(%d+)$") end
    if not host then port = options.metrics:match("^(%d+)$") end
    port = tonumber(port)
    if not port or port > 65535 then
      return string.format("--metrics takes HOST:PORT (e.g. 127.0.0.1:9464), not '%s'", options.metrics)
    end
    if host == nil or host == "" then host = "127.0.0.1" end
    local ok, err = pcall(require("pacer.observe.metrics").serve, {host = host, port = port})
    if not ok then return "--metrics " .. options.metrics .. ": " .. tostring(err):gsub("^.-pacer%.metrics: ", "") end
  end
  return nil
end

return M
