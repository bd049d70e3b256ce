-- pacer.run.batch: collects items and sends them `size` at a time, or after `interval`,
-- through send(items) -> results. Each push waits for its own item's result: the value,
-- or nil + err when the whole batch failed or the API rejected that item. With
-- cost = "items", the requests send() makes cost one unit per item (base/context.lua).
local task = require "pacer.c.task"
local errors = require "pacer.base.errors"
local corelib = require "pacer.c.corelib"
local opts = require "pacer.base.options"
local context = require "pacer.base.context"

local M = {}

local Batch = {}
Batch.__index = Batch

local function rejected(r)
  return type(r) == "table" and r.error ~= nil
end

-- Sends what is pending; returns the result for `me` (a pending index) if asked.
local function flush(self, me)
  local pending = self.pending
  if #pending == 0 then return end
  self.pending = {}
  self.generation = self.generation + 1
  local items = {}
  for i, p in ipairs(pending) do items[i] = p.item end
  self.batches = self.batches + 1
  local timer = self.timer -- the interval timer of this batch is no longer needed
  self.timer = nil
  if timer and timer.sleeping then task.wake(timer.sleeping) end
  local prev = self.per_item and context.set("cost", #items)
  local ok, results, err = pcall(self.send, items)
  if self.per_item then context.set("cost", prev) end
  if ok and results == nil then ok, results = false, err or "send returned nothing" end
  if ok and type(results) ~= "table" then
    ok, results = false, "send returned a " .. type(results) .. ", not a list of results"
  end
  local mine
  for i, p in ipairs(pending) do
    local a, b
    if not ok then
      a, b = nil, errors.new{kind = "batch_failed", message = tostring(results), item = p.item}
      self.failed = self.failed + 1
    elseif results[i] == nil or rejected(results[i]) then
      a, b = nil, errors.new{kind = "rejected", message = results[i] and tostring(results[i].error)
        or "no result for this item", item = p.item}
      self.rejected = self.rejected + 1
    else
      a = results[i]
      self.sent = self.sent + 1
    end
    if p.task == me then mine = {a, b}
    else task.wake(p.task, a, b) end
  end
  if mine then return mine[1], mine[2] end
end

-- b:push(item) -> result | nil, err   (waits until item's batch has been sent)
function Batch:push(item)
  if self.closed then opts.raise("batch:push: the batch is closed") end
  if item == nil then opts.raise("batch:push: cannot push nil") end
  local me = task.current() or opts.raise("batch:push: must be called from a task")
  self.pending[#self.pending + 1] = {item = item, task = me}
  if #self.pending >= self.size then return flush(self, me) end
  if #self.pending == 1 then
    local gen, timer = self.generation, {}
    self.timer = timer
    task.spawn(function()
      if self.timer ~= timer then return end -- flushed before this task even started
      timer.sleeping = task.current()
      task.sleep(self.interval) -- cut short by a flush: then the generation has moved on
      timer.sleeping = nil
      if self.generation == gen then flush(self) end
    end)
  end
  return task.suspend()
end

function Batch:flush() flush(self) end

function Batch:close()
  self.closed = true
  flush(self)
end

function Batch:stats()
  return {batches = self.batches, sent = self.sent, rejected = self.rejected, failed = self.failed,
    pending = #self.pending}
end

-- pacer.batch{size = 100, interval = "2s", send = function(items) return results end}
function M.new(o)
  opts.check("pacer.batch", o, {size = "integer", interval = "duration", send = "callable", cost = "string"})
  if o.cost ~= nil and o.cost ~= "items" then
    opts.raise("pacer.batch: 'cost' must be \"items\" (one unit per item), got %q", o.cost)
  end
  if not o.send then opts.raise("pacer.batch: 'send' is required") end
  local size = o.size or 100
  if size < 1 then opts.raise("pacer.batch: 'size' must be >= 1, got %d", size) end
  local okd, interval = pcall(corelib.parse_duration, o.interval or 1)
  if not okd then opts.raise("pacer.batch: option 'interval': %s", interval) end
  return setmetatable({size = size, interval = interval, send = o.send, per_item = o.cost == "items",
    pending = {}, generation = 0, batches = 0, sent = 0, rejected = 0, failed = 0}, Batch)
end

return M
