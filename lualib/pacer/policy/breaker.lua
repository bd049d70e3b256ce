-- pacer.policy.breaker: a circuit breaker. After `failures` consecutive failures (transport
-- errors or 5xx) the client stops sending for `cooldown`; then one request probes, and
-- its answer closes the circuit or opens it again.
local opts = require "pacer.base.options"
local task = require "pacer.c.task"

local M = {}

local Breaker = {}
Breaker.__index = Breaker

function M.new(o)
  if o == true then o = {} end
  o = opts.check("pacer.client.breaker", o, {failures = "integer", cooldown = "duration"})
  if o.failures and o.failures < 1 then
    opts.raise("pacer.client.breaker: 'failures' must be >= 1, got %d", o.failures)
  end
  return setmetatable({failures = o.failures or 5, cooldown = o.cooldown or 30, state = "closed", fails = 0,
    open_until = 0, probing = false, waiting = {}}, Breaker)
end

local function wake_all(self)
  local w = self.waiting
  self.waiting = {}
  for _, t in ipairs(w) do task.wake(t) end
end

-- Before an attempt: waits while open, or while another request probes. Returns the
-- seconds waited and whether this attempt is the probe.
function Breaker:wait()
  local t0 = task.now()
  for _ = 1, 1e6 do
    if self.state == "closed" then return task.now() - t0, false end
    if self.state == "open" then
      local left = self.open_until - task.now()
      if left > 0 then task.sleep(left) end
      -- the first to wake turns the circuit half open; the others find it so and wait
      if self.state == "open" and task.now() >= self.open_until then
        self.state = "half_open"
        self.probing = false
      end
    end
    if self.state == "half_open" then
      if not self.probing then
        self.probing = true
        return task.now() - t0, true
      end
      self.waiting[#self.waiting + 1] = task.current()
      task.suspend() -- until the probe's answer
    end
  end
end

-- After an answer. Returns "opened" when this answer opened the circuit.
function Breaker:record(ok, probe)
  if ok then
    self.fails = 0
    if self.state ~= "closed" then
      self.state = "closed"
      wake_all(self)
    end
    return nil
  end
  self.fails = self.fails + 1
  if probe or (self.state == "closed" and self.fails >= self.failures) then
    self.state = "open"
    self.open_until = task.now() + self.cooldown
    wake_all(self)
    return "opened"
  end
end

-- The probe ended without an answer to judge (it raised): let another request probe.
function Breaker:release_probe()
  if self.state == "half_open" and self.probing then
    self.probing = false
    wake_all(self)
  end
end

function M.failed(res, err)
  if err then return err.kind ~= "cancelled" end
  return res.status >= 500
end

return M
