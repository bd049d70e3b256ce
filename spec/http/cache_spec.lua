-- spec/http/cache_spec.lua: the `cache` option of pacer.client: GET responses cached by
-- URL (and `vary` headers), Cache-Control max-age / no-store / no-cache / private, the
-- configured ttl and per-path ttls, revalidation with ETag and Last-Modified (a 304
-- refreshes the entry), POST never cached, and the cache counters of api:stats().
-- A pacer.serve listener on 127.0.0.1 counts what reaches the server.
-- Runs inside the pacer host: ./build/pacer tools/busted.lua -o TAP spec/http/cache_spec.lua

local message = dofile("spec/support/helpers.lua").message

local LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"

describe("pacer.client cache", function()
  local srv
  local hits, seen -- per path: requests that reached the server, and the last request's headers
  local etag_version

  local function count(req)
    hits[req.path] = (hits[req.path] or 0) + 1
    seen[req.path] = req.headers
    return hits[req.path]
  end

  setup(function()
    srv = pacer.serve{routes = {
      ["GET /plain"] = function(req)
        local n = count(req)
        return 200, "plain #" .. n, {["Content-Type"] = "text/plain", ["X-Served"] = tostring(n)}
      end,
      ["GET /maxage"] = function(req)
        return 200, "maxage #" .. count(req), {["Cache-Control"] = "public, max-age=1"}
      end,
      ["GET /nostore"] = function(req)
        return 200, "nostore #" .. count(req), {["Cache-Control"] = "no-store", ETag = '"ns"'}
      end,
      ["GET /private"] = function(req)
        return 200, "private #" .. count(req), {["Cache-Control"] = "private, max-age=600"}
      end,
      ["GET /nocache"] = function(req)
        local n = count(req)
        local h = {["Cache-Control"] = "no-cache", ETag = '"nc"'}
        if req.headers["if-none-match"] == '"nc"' then return 304, "", h end
        return 200, "nocache #" .. n, h
      end,
      ["GET /etag"] = function(req)
        count(req)
        local tag = '"v' .. etag_version .. '"'
        if req.headers["if-none-match"] == tag then return 304, "", {ETag = tag} end
        return 200, "etag body v" .. etag_version, {ETag = tag, ["Content-Type"] = "text/plain"}
      end,
      ["GET /lm"] = function(req)
        local n = count(req)
        if req.headers["if-modified-since"] == LAST_MODIFIED then
          return 304, "", {["Last-Modified"] = LAST_MODIFIED}
        end
        return 200, "lm #" .. n, {["Last-Modified"] = LAST_MODIFIED}
      end,
      ["GET /lang"] = function(req)
        count(req)
        return 200, "lang " .. (req.headers["accept-language"] or "none")
      end,
      ["* /post"] = function(req)
        return 200, req.method .. " #" .. count(req)
      end,
      ["GET /status/*"] = function(req)
        count(req)
        return tonumber(req.path:match("%d+$")), "status"
      end,
      ["GET /templates/*"] = function(req) return 200, "template #" .. count(req) end,
      ["GET /items/*"] = function(req) return 200, "item #" .. count(req) end,
    }}
  end)
  teardown(function() srv.close() end)
  before_each(function()
    hits, seen, etag_version = {}, {}, 1
  end)

  local function client(cache)
    return pacer.client{base_url = srv.url, retry = false, cache = cache}
  end

  local function get(api, path, o)
    local res, err = api:get(path, o)
    assert(res, err and err.message)
    return res
  end

  it("cache = true: a second GET is answered from the cache", function()
    local api = client(true)
    local r1 = get(api, "/plain")
    assert.are.equal(200, r1.status)
    assert.are.equal("plain #1", r1.body)
    assert.is_nil(r1.cached)
    local r2 = get(api, "/plain")
    assert.are.equal(1, hits["/plain"])
    assert.is_true(r2.cached)
    assert.is_nil(r2.revalidated)
    assert.are.equal(200, r2.status)
    assert.are.equal("plain #1", r2.body)
    assert.are.equal("text/plain", r2.headers["Content-Type"])
    assert.are.equal("1", r2.headers["x-served"])
    -- the default ttl is minutes, not moments
    pacer.sleep(0.3)
    assert.are.equal("plain #1", get(api, "/plain").body)
    assert.are.equal(1, hits["/plain"])
    local s = api:stats()
    assert.are.equal(2, s.cache_hits)
    assert.are.equal(1, s.cache_misses)
    assert.are.equal(0, s.revalidations)
    assert.are.equal(1, s.requests) -- only one went over the wire
  end)

  it("without the option (or with cache = false) nothing is cached", function()
    for _, api in ipairs{client(nil), client(false)} do
      hits = {}
      get(api, "/plain")
      local r = get(api, "/plain")
      assert.are.equal(2, hits["/plain"])
      assert.is_nil(r.cached)
      assert.are.equal("plain #2", r.body)
      local s = api:stats()
      assert.are.equal(0, s.cache_hits)
      assert.are.equal(0, s.cache_misses)
    end
  end)

  it("keys entries by URL, query included", function()
    local api = client(true)
    assert.are.equal("plain #1", get(api, "/plain", {query = {page = 1}}).body)
    assert.are.equal("plain #2", get(api, "/plain", {query = {page = 2}}).body)
    assert.are.equal("plain #1", get(api, "/plain", {query = {page = 1}}).body)
    assert.are.equal("plain #3", get(api, "/plain").body)
    assert.are.equal(3, hits["/plain"])
  end)

  it("the configured ttl: a miss once it has passed", function()
    local api = client{ttl = "200ms"}
    get(api, "/plain")
    assert.is_true(get(api, "/plain").cached)
    pacer.sleep(0.3)
    local r = get(api, "/plain")
    assert.is_nil(r.cached)
    assert.are.equal("plain #2", r.body)
    assert.are.equal(2, hits["/plain"])
    local s = api:stats()
    assert.are.same({1, 2, 0}, {s.cache_hits, s.cache_misses, s.revalidations})
  end)

  it("Cache-Control max-age overrides the configured ttl", function()
    local api = client{ttl = "100ms"}
    get(api, "/maxage")
    pacer.sleep(0.25) -- past the ttl, within max-age=1
    local r = get(api, "/maxage")
    assert.is_true(r.cached)
    assert.are.equal("maxage #1", r.body)
    assert.are.equal(1, hits["/maxage"])
    pacer.sleep(0.85) -- past max-age
    r = get(api, "/maxage")
    assert.is_nil(r.cached)
    assert.are.equal("maxage #2", r.body)
    -- and max-age wins over a long ttl as well
    local long = client{ttl = "1h"}
    hits = {}
    get(long, "/maxage")
    assert.is_true(get(long, "/maxage").cached)
    pacer.sleep(1.1)
    assert.is_nil(get(long, "/maxage").cached)
    assert.are.equal(2, hits["/maxage"])
  end)

  it("no-store is never cached, even with an ETag", function()
    local api = client(true)
    for i = 1, 3 do
      local r = get(api, "/nostore")
      assert.is_nil(r.cached)
      assert.are.equal("nostore #" .. i, r.body)
    end
    assert.are.equal(3, hits["/nostore"])
    assert.is_nil(seen["/nostore"]["if-none-match"])
    local s = api:stats()
    assert.are.same({0, 3, 0}, {s.cache_hits, s.cache_misses, s.revalidations})
  end)

  it("private responses are not cached", function()
    local api = client(true)
    get(api, "/private")
    assert.are.equal("private #2", get(api, "/private").body)
    assert.are.equal(2, hits["/private"])
  end)

  it("no-cache is stored but revalidated on every use", function()
    local api = client(true)
    local r1 = get(api, "/nocache")
    assert.are.equal("nocache #1", r1.body)
    assert.is_nil(seen["/nocache"]["if-none-match"])
    for i = 2, 4 do
      local r = get(api, "/nocache")
      assert.are.equal(i, hits["/nocache"], "every GET reaches the server")
      assert.are.equal('"nc"', seen["/nocache"]["if-none-match"])
      assert.are.equal(200, r.status)
      assert.are.equal("nocache #1", r.body) -- the 304 carried no body
      assert.is_true(r.cached)
      assert.is_true(r.revalidated)
    end
    local s = api:stats()
    assert.are.same({0, 4, 3}, {s.cache_hits, s.cache_misses, s.revalidations})
  end)

  it("revalidates a stale entry with If-None-Match; a 304 refreshes it", function()
    local api = client{ttl = "200ms"}
    local r1 = get(api, "/etag")
    assert.are.equal("etag body v1", r1.body)
    assert.is_true(get(api, "/etag").cached)
    assert.are.equal(1, hits["/etag"])
    pacer.sleep(0.3)
    local r3 = get(api, "/etag")
    assert.are.equal(2, hits["/etag"])
    assert.are.equal('"v1"', seen["/etag"]["if-none-match"])
    assert.are.equal(200, r3.status)
    assert.are.equal("etag body v1", r3.body)
    assert.are.equal('"v1"', r3.headers["etag"])
    assert.are.equal("text/plain", r3.headers["content-type"])
    assert.is_true(r3.cached)
    assert.is_true(r3.revalidated)
    -- refreshed: fresh again for another ttl, without going to the server
    local r4 = get(api, "/etag")
    assert.is_true(r4.cached)
    assert.is_nil(r4.revalidated)
    assert.are.equal(2, hits["/etag"])
    local s = api:stats()
    assert.are.same({2, 2, 1}, {s.cache_hits, s.cache_misses, s.revalidations})
    -- the resource changes: the conditional GET gets a 200, which replaces the entry
    etag_version = 2
    pacer.sleep(0.3)
    local r5 = get(api, "/etag")
    assert.are.equal('"v1"', seen["/etag"]["if-none-match"])
    assert.are.equal("etag body v2", r5.body)
    assert.is_nil(r5.cached)
    assert.is_nil(r5.revalidated)
    local r6 = get(api, "/etag")
    assert.is_true(r6.cached)
    assert.are.equal("etag body v2", r6.body)
    assert.are.equal(3, hits["/etag"])
  end)

  it("revalidates with If-Modified-Since when there is only Last-Modified", function()
    local api = client{ttl = "200ms"}
    assert.are.equal("lm #1", get(api, "/lm").body)
    assert.is_nil(seen["/lm"]["if-modified-since"])
    pacer.sleep(0.3)
    local r = get(api, "/lm")
    assert.are.equal(2, hits["/lm"])
    assert.are.equal(LAST_MODIFIED, seen["/lm"]["if-modified-since"])
    assert.is_nil(seen["/lm"]["if-none-match"])
    assert.are.equal("lm #1", r.body)
    assert.is_true(r.revalidated)
    assert.is_true(get(api, "/lm").cached)
    assert.are.equal(2, hits["/lm"])
    assert.are.equal(1, api:stats().revalidations)
  end)

  it("a stale entry without validators is fetched again with a plain GET", function()
    local api = client{ttl = "200ms"}
    get(api, "/plain")
    pacer.sleep(0.3)
    local r = get(api, "/plain")
    assert.is_nil(seen["/plain"]["if-none-match"])
    assert.is_nil(seen["/plain"]["if-modified-since"])
    assert.are.equal("plain #2", r.body)
    assert.are.equal(0, api:stats().revalidations)
  end)

  it("per-path ttls, longest prefix first, the ttl elsewhere", function()
    local api = client{ttl = "200ms", paths = {["/templates"] = "1h", ["/templates/short"] = "100ms"}}
    get(api, "/templates/a")
    get(api, "/templates/short/b")
    get(api, "/items/c")
    pacer.sleep(0.3)
    assert.are.equal("template #1", get(api, "/templates/a").body)
    assert.are.equal("template #2", get(api, "/templates/short/b").body)
    assert.are.equal("item #2", get(api, "/items/c").body)
    assert.are.equal(1, hits["/templates/a"])
    assert.are.equal(2, hits["/templates/short/b"])
    assert.are.equal(2, hits["/items/c"])
  end)

  it("vary headers make separate entries", function()
    local api = client{vary = {"Accept-Language"}}
    local function lang(l) return get(api, "/lang", {headers = {["Accept-Language"] = l}}) end
    assert.are.equal("lang en", lang("en").body)
    assert.are.equal("lang de", lang("de").body)
    assert.are.equal(2, hits["/lang"])
    local en, de = lang("en"), lang("de")
    assert.are.equal("lang en", en.body)
    assert.is_true(en.cached)
    assert.are.equal("lang de", de.body)
    assert.is_true(de.cached)
    assert.are.equal("lang none", get(api, "/lang").body) -- no header: its own entry
    assert.are.equal(3, hits["/lang"])
    -- without vary the URL alone is the key
    local plain = client(true)
    hits = {}
    assert.are.equal("lang en", get(plain, "/lang", {headers = {["Accept-Language"] = "en"}}).body)
    assert.are.equal("lang en", get(plain, "/lang", {headers = {["Accept-Language"] = "de"}}).body)
    assert.are.equal(1, hits["/lang"])
  end)

  it("POST is never cached, nor answered from a GET's entry", function()
    local api = client(true)
    assert.are.equal("GET #1", get(api, "/post").body)
    for i = 2, 3 do
      local r = assert(api:post("/post", {body = "x"}))
      assert.are.equal("POST #" .. i, r.body)
      assert.is_nil(r.cached)
    end
    assert.are.equal(3, hits["/post"])
    -- the GET entry is still there and was not replaced by a POST answer
    local r = get(api, "/post")
    assert.is_true(r.cached)
    assert.are.equal("GET #1", r.body)
    assert.are.equal(1, api:stats().cache_hits)
  end)

  it("error statuses are not cached", function()
    local api = client(true)
    for _, code in ipairs{404, 500} do
      local path = "/status/" .. code
      assert.are.equal(code, get(api, path).status)
      local r = get(api, path)
      assert.are.equal(code, r.status)
      assert.is_nil(r.cached)
      assert.are.equal(2, hits[path])
    end
    assert.are.equal(0, api:stats().cache_hits)
  end)

  it("counts hits, misses and revalidations in the run's stats too", function()
    local before = pacer.stats()
    local api = client{ttl = "200ms"}
    get(api, "/etag")
    get(api, "/etag")
    pacer.sleep(0.3)
    get(api, "/etag")
    local after = pacer.stats()
    assert.are.equal(1, after.cache_hits - before.cache_hits)
    assert.are.equal(2, after.cache_misses - before.cache_misses)
    assert.are.equal(1, after.revalidations - before.revalidations)
  end)

  it("refuses bad cache options", function()
    assert.are.equal("pacer.client.cache: unknown option 'tll' (known: keep, max_bytes, max_entries, paths, store, ttl, vary)",
      message(function() return client{tll = 5} end))
    assert.are.equal("pacer.client.cache: option 'paths' must be a table, got string",
      message(function() return client{paths = "/templates"} end))
    assert.are.equal("pacer.client: option 'cache' must be a table or a boolean, got string",
      message(function() return client("yes") end))
  end)
end)

describe("pacer.client cache regressions", function()
  local srv, hits
  setup(function()
    hits = {}
    local function count(path) hits[path] = (hits[path] or 0) + 1 end
    srv = pacer.serve{routes = {
      ["GET /big"] = function() count("/big"); return 200, string.rep("x", 5000) end,
      ["GET /nc"] = function(req)
        count("/nc")
        if req.headers["if-none-match"] == '"v1"' then return 304, "", {ETag = '"v1"'} end
        return 200, "body", {ETag = '"v1"', ["Cache-Control"] = "no-cache"}
      end,
      ["POST /p"] = function() return 200, "ok" end,
    }}
  end)
  teardown(function() srv.close() end)

  it("charges a cached response its body size against max_bytes", function()
    local api = pacer.client{base_url = srv.url, cache = {max_bytes = 1000}}
    api:get("/big")
    local res = api:get("/big")
    assert.is_nil(res.cached)
    assert.are.equal(2, hits["/big"])
  end)

  it("keeps no-cache after a 304 that does not repeat it", function()
    local api = pacer.client{base_url = srv.url, cache = true}
    for _ = 1, 4 do assert.are.equal(200, api:get("/nc").status) end
    assert.are.equal(4, hits["/nc"])
  end)

  it("does not count a POST as a cache miss", function()
    local api = pacer.client{base_url = srv.url, cache = true}
    api:post("/p", {body = "x"})
    assert.are.equal(0, api:stats().cache_misses)
  end)
end)

describe("pacer.client cache kept in SQLite", function()
  it("answers the next run from disk, and revalidates there when it is stale", function()
    local H = dofile("spec/support/helpers.lua")
    local db = os.tmpname() .. ".db"
    local port = H.free_port()
    local script = H.script(string.format([[
local hits = 0
local srv = pacer.serve{port = %d, routes = {["GET /t"] = function(req)
  hits = hits + 1
  if req.headers["if-none-match"] == '"v1"' then return 304, "", {ETag = '"v1"'} end
  return 200, "template body", {ETag = '"v1"', ["Cache-Control"] = "max-age=" .. arg[1]}
end}}
local api = pacer.client{base_url = srv.url, cache = {store = %q}}
local r = api:get("/t")
print(r.status, tostring(r.cached), tostring(r.revalidated), r.body, hits)
srv.close()
]], port, db))
    local function run(max_age) return H.run_pacer({"-q", script, tostring(max_age)}).stdout end
    assert.are.equal("200\tnil\tnil\ttemplate body\t1\n", run(1))
    assert.are.equal("200\ttrue\tnil\ttemplate body\t0\n", run(1)) -- from disk, no request
    pacer.sleep(1.2)
    assert.are.equal("200\ttrue\ttrue\ttemplate body\t1\n", run(1)) -- stale: a 304, no body
    os.remove(script)
    os.execute("rm -f " .. db .. "*")
  end)
end)
