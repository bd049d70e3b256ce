-- bench/containers.lua CASE [N]: one container case in its own process, so peak RSS is
-- its own. Cases: cache (C), lualru (pure-Lua LRU), queue (C), luaheap (pure-Lua heap).
-- Prints: case ops ops_per_s peak_rss_mb
local case, N = arg[1], tonumber(arg[2]) or 1000000

local function peak_rss_mb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s*(%d+)")
    if kb then return tonumber(kb) / 1024 end
  end
end

-- A pure-Lua LRU as one would write it: a hash of nodes in a doubly linked list.
local function lua_lru(max)
  local map, head, tail, n = {}, nil, nil, 0
  local function unlink(x)
    if x.prev then x.prev.next = x.next else head = x.next end
    if x.next then x.next.prev = x.prev else tail = x.prev end
  end
  local function front(x)
    x.prev, x.next = nil, head
    if head then head.prev = x end
    head = x
    if not tail then tail = x end
  end
  local lru = {}
  function lru.set(k, v)
    local x = map[k]
    if x then x.v = v; unlink(x); front(x); return end
    x = {k = k, v = v}
    map[k] = x
    front(x)
    n = n + 1
    if n > max then map[tail.k] = nil; unlink(tail); n = n - 1 end
  end
  function lru.get(k)
    local x = map[k]
    if not x then return nil end
    unlink(x); front(x)
    return x.v
  end
  return lru
end

-- A pure-Lua binary heap of {priority, seq, item}, stable like pacer's.
local function lua_heap()
  local h, n, seq = {}, 0, 0
  local function less(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end
  local heap = {}
  function heap.push(item, p)
    seq = seq + 1
    n = n + 1
    local e, i = {p, seq, item}, n
    while i > 1 do
      local parent = i // 2
      if not less(e, h[parent]) then break end
      h[i] = h[parent]
      i = parent
    end
    h[i] = e
  end
  function heap.pop()
    if n == 0 then return nil end
    local top, last = h[1], h[n]
    h[n] = nil
    n = n - 1
    local i = 1
    while true do
      local c = 2 * i
      if c > n then break end
      if c + 1 <= n and less(h[c + 1], h[c]) then c = c + 1 end
      if not less(h[c], last) then break end
      h[i] = h[c]
      i = c
    end
    if n > 0 then h[i] = last end
    return top[3], top[1]
  end
  return heap
end

local keys = {}
if case == "cache" or case == "lualru" then
  for i = 1, N do keys[i] = "key:" .. i end -- made before timing, the same for both sides
end
local t0, ops = os.clock(), 0

if case == "cache" then
  local c = pacer.cache{max_entries = N}
  for i = 1, N do c:set(keys[i], i) end
  for i = 1, N do c:get(keys[i]) end
  ops = 2 * N
elseif case == "lualru" then
  local c = lua_lru(N)
  for i = 1, N do c.set(keys[i], i) end
  for i = 1, N do c.get(keys[i]) end
  ops = 2 * N
elseif case == "queue" then
  local q = pacer.queue{}
  for i = 1, N do q:push(i, i % 10) end
  for _ = 1, N do q:try_pop() end
  ops = 2 * N
elseif case == "luaheap" then
  local q = lua_heap()
  for i = 1, N do q.push(i, i % 10) end
  for _ = 1, N do q.pop() end
  ops = 2 * N
else
  error("unknown case " .. tostring(case))
end
local secs = os.clock() - t0
print(string.format("%s %d %.0f %.1f", case, ops, ops / secs, peak_rss_mb()))
