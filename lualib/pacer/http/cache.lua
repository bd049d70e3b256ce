-- pacer.http.cache: a client's cache of GET responses. Keyed by URL plus chosen request
-- headers; Cache-Control no-store/no-cache/max-age honoured, the configured TTL (per
-- path prefix) otherwise; expired entries with an ETag or Last-Modified are revalidated
-- with If-None-Match / If-Modified-Since, and a 304 refreshes them without a body.
local cache = require "pacer.cache.memory"
local task = require "pacer.c.task"
local corelib = require "pacer.c.corelib"
local opts = require "pacer.base.options"
local response = require "pacer.http.response"

local M = {}

local HttpCache = {}
HttpCache.__index = HttpCache

local SPEC = {ttl = "duration", max_entries = "integer", max_bytes = "integer", paths = "table",
  vary = "table", keep = "duration", store = "string"}

-- {ttl = "30m", paths = {["/templates"] = "24h"}, vary = {"Accept"}, keep = "1h"}
function M.new(o)
  if o == true then o = {} end
  opts.check("pacer.client.cache", o, SPEC)
  local self = setmetatable({}, HttpCache)
  self.ttl = corelib.parse_duration(o.ttl or 300)
  self.paths = {}
  for prefix, ttl in pairs(o.paths or {}) do
    self.paths[#self.paths + 1] = {prefix, corelib.parse_duration(ttl)}
  end
  table.sort(self.paths, function(a, b) return #a[1] > #b[1] end) -- longest prefix first
  self.vary = o.vary or {}
  -- expired entries are kept this long for revalidation
  self.keep = opts.duration("pacer.client.cache", "keep", o.keep or 3600)
  self.store = cache.new{max_entries = o.max_entries or 10000, max_bytes = o.max_bytes,
    stale_while_revalidate = self.keep}
  if o.store then self.disk = require("pacer.http.cache_store").open(o.store) end -- SQLite or Redis
  return self
end

-- Memory first; on a miss, the stored copy (if any) comes back into memory.
function HttpCache:lookup(key)
  local e, freshness = self.store:lookup(key)
  if e or not self.disk then return e, freshness end
  local fresh_until, reclaim_at
  e, fresh_until, reclaim_at = self.disk:get(key)
  local now = task.wall()
  if not e or reclaim_at <= now then return nil end
  e.status, e.size = math.tointeger(e.status), math.tointeger(e.size) -- JSON numbers come back as floats
  local ttl = fresh_until - now
  self.store:set(key, e, ttl > 0 and ttl or 1e-9, reclaim_at - math.max(fresh_until, now), e.size)
  return e, ttl > 0 and "fresh" or "stale"
end

function HttpCache:put(key, e, ttl)
  self.store:set(key, e, ttl, nil, e.size)
  if self.disk then
    local now = task.wall()
    self.disk:put(key, e, now + ttl, now + ttl + self.keep)
  end
end

function HttpCache:key(r)
  local parts = {r.method == "HEAD" and "GET" or r.method, r.url}
  for _, h in ipairs(self.vary) do parts[#parts + 1] = h:lower() .. "=" .. (r.hdr[h:lower()] or "") end
  return table.concat(parts, "\n")
end

-- How long to keep a response: nil when it must not be stored.
function HttpCache:ttl_for(path, res)
  local cc = (res.headers["cache-control"] or ""):lower()
  if cc:find("no-store", 1, true) or cc:find("private", 1, true) then return nil end
  local max_age = tonumber(cc:match("max%-age%s*=%s*(%d+)"))
  if cc:find("no-cache", 1, true) then max_age = 0 end
  if max_age then return max_age end
  for _, p in ipairs(self.paths) do
    if path:sub(1, #p[1]) == p[1] then return p[2] end
  end
  return self.ttl
end

-- Before sending r: a fresh entry (answer with it), or a stale one whose validators
-- were added to r's headers (revalidate), or nothing.
function HttpCache:before(r)
  if r.method ~= "GET" then return nil end
  local e, freshness = self:lookup(self:key(r))
  if not e then return nil end
  if freshness == "fresh" then return e, true end
  if e.etag then r.conditional = {["If-None-Match"] = e.etag} end
  if e.last_modified then
    r.conditional = r.conditional or {}
    r.conditional["If-Modified-Since"] = e.last_modified
  end
  return r.conditional and e or nil, false
end

-- After an answer: stores a 200, or refreshes the entry on a 304. Returns the entry
-- to answer with on a 304.
function HttpCache:after(r, path, res, entry)
  if r.method ~= "GET" then return nil end
  local key = self:key(r)
  if res.status == 304 and entry then
    -- a 304 updates the stored headers; what it does not repeat (no-cache, max-age) stays
    for k, v in pairs(res.headers) do entry.headers[k] = v end
    local ttl = self:ttl_for(path, {headers = response.headers(entry.headers)}) or 0
    self:put(key, entry, ttl == 0 and 1e-9 or ttl)
    return entry
  end
  if res.status ~= 200 then return nil end
  local ttl = self:ttl_for(path, res)
  if not ttl then return nil end
  local etag, lm = res.headers["etag"], res.headers["last-modified"]
  if ttl == 0 and not etag and not lm then return nil end -- could never be used
  local headers = {}
  for k, v in pairs(res.headers) do headers[k] = v end
  local size = #res.body
  for k, v in pairs(headers) do size = size + #k + #v end
  self:put(key, {status = res.status, headers = headers, body = res.body, etag = etag,
    last_modified = lm, size = size}, ttl == 0 and 1e-9 or ttl)
  return nil
end

return M
