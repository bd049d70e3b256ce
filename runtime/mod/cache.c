/* cache.c: pacer.cache, a bounded LRU cache with per-entry TTL (index in lru.c, values
 * in a Lua table by slot). get/set/delete/lookup/stats/clear here; single-flight
 * fetch() is Lua (lualib/pacer/cache/memory.lua) over lookup() and set(). */
#include "core/lru.h"
#include "mod/bind.h"
#include "sched/loop.h"
#include <lauxlib.h>
#include <math.h>
#include <string.h>

#define PACER_CACHE "pacer.cache"
#define UV_VALUES   1
#define UV_CLOCK    2

typedef struct cache {
  lru idx;
  double ttl;   /* default seconds; HUGE_VAL: no expiry */
  double stale; /* stale_while_revalidate: kept this long after expiry, served as stale */
  size_t max_entries, max_bytes;
  int has_clock;
  int live; /* idx initialised */
  lua_Integer hits, misses, sets, evictions, expirations;
} cache;

static cache *checkcache(lua_State *L) {
  cache *c = luaL_checkudata(L, 1, PACER_CACHE);
  if (!c->live) luaL_error(L, "attempt to use a closed cache");
  return c;
}

static double now(lua_State *L, cache *c) {
  if (!c->has_clock) return loop_now();
  lua_getiuservalue(L, 1, UV_CLOCK);
  lua_call(L, 0, 1);
  double t = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return t;
}

static const char *checkkey(lua_State *L, const char *what, size_t *len) {
  int t = lua_type(L, 2);
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    luaL_error(L, "cache:%s: key must be a string or a number, got %s", what, luaL_typename(L, 2));
  return lua_tolstring(L, 2, len);
}

/* Drops slot s: index entry and value. The values table must be at index `vals`. */
static void drop(lua_State *L, cache *c, uint32_t s, int vals) {
  lru_remove(&c->idx, s);
  lua_pushnil(L);
  lua_rawseti(L, vals, (lua_Integer)s + 1);
}

/* Reclaims entries past their time: O(log n) each, no scan. */
static void reclaim(lua_State *L, cache *c, double t, int vals) {
  uint32_t s;
  while ((s = lru_expired(&c->idx, t)) != LRU_NONE) {
    drop(L, c, s, vals);
    c->expirations++;
  }
}

/* A TTL: a duration, with 0 meaning no expiry. */
static double ttl_seconds(lua_State *L, int i, const char *what) {
  double v = bind_check_seconds(L, i, what);
  return v == 0 ? HUGE_VAL : v;
}

/* Bytes an entry is charged: key plus a string's length; other values 16. */
static size_t value_size(lua_State *L, int i, size_t klen) {
  return klen + (lua_type(L, i) == LUA_TSTRING ? lua_rawlen(L, i) : 16);
}

/* c:get(key) -> value | nil (fresh entries only) */
static int cache_get(lua_State *L) {
  cache *c = checkcache(L);
  size_t klen;
  const char *key = checkkey(L, "get", &klen);
  double t = now(L, c);
  lua_getiuservalue(L, 1, UV_VALUES); /* [c, key, vals] */
  reclaim(L, c, t, 3);
  uint32_t s = lru_find(&c->idx, key, klen);
  if (s == LRU_NONE || c->idx.e[s].fresh_until <= t) {
    c->misses++;
    return 0;
  }
  c->hits++;
  lru_touch(&c->idx, s);
  lua_rawgeti(L, 3, (lua_Integer)s + 1);
  return 1;
}

/* c:lookup(key) -> value, "fresh" | value, "stale", seconds past expiry | nil
 * (counts no hit or miss: for fetch and HTTP revalidation, which count their own) */
static int cache_lookup(lua_State *L) {
  cache *c = checkcache(L);
  size_t klen;
  const char *key = checkkey(L, "lookup", &klen);
  double t = now(L, c);
  lua_getiuservalue(L, 1, UV_VALUES);
  reclaim(L, c, t, 3);
  uint32_t s = lru_find(&c->idx, key, klen);
  if (s == LRU_NONE) return 0;
  lru_touch(&c->idx, s);
  lua_rawgeti(L, 3, (lua_Integer)s + 1);
  if (c->idx.e[s].fresh_until > t) {
    lua_pushliteral(L, "fresh");
    return 2;
  }
  lua_pushliteral(L, "stale");
  lua_pushnumber(L, t - c->idx.e[s].fresh_until);
  return 3;
}

/* c:count_hit() / c:count_miss(): for lookups made through lookup() */
static int cache_count(lua_State *L) {
  cache *c = checkcache(L);
  if (lua_toboolean(L, 2))
    c->hits++;
  else
    c->misses++;
  return 0;
}

/* c:set(key, value [, ttl [, stale [, size]]]) -> true | false (larger than max_bytes)
 * A nil value deletes. ttl 0 means no expiry. `size` overrides the bytes charged (for
 * tables whose weight the caller knows, such as cached HTTP responses). */
static int cache_set(lua_State *L) {
  cache *c = checkcache(L);
  size_t klen;
  const char *key = checkkey(L, "set", &klen);
  luaL_checkany(L, 3);
  double ttl = lua_isnoneornil(L, 4) ? c->ttl : ttl_seconds(L, 4, "cache:set");
  double stale = lua_isnoneornil(L, 5) ? c->stale : bind_check_seconds(L, 5, "cache:set");
  lua_Integer given = luaL_optinteger(L, 6, -1);
  lua_settop(L, 3);
  double t = now(L, c);
  lua_getiuservalue(L, 1, UV_VALUES); /* [c, key, value, vals] */
  reclaim(L, c, t, 4);
  uint32_t s = lru_find(&c->idx, key, klen);
  if (lua_isnil(L, 3)) {
    if (s != LRU_NONE) drop(L, c, s, 4);
    lua_pushboolean(L, 1);
    return 1;
  }
  size_t size = given >= 0 ? klen + (size_t)given : value_size(L, 3, klen);
  if (c->max_bytes && size > c->max_bytes) { /* could never fit: keep no stale copy either */
    if (s != LRU_NONE) drop(L, c, s, 4);
    lua_pushboolean(L, 0);
    return 1;
  }
  double fresh = t + ttl, reclaim_at = fresh + stale;
  if (s != LRU_NONE) {
    lru_update(&c->idx, s, size, fresh, reclaim_at);
  } else {
    s = lru_insert(&c->idx, key, klen, size, fresh, reclaim_at);
    if (s == LRU_NONE) return luaL_error(L, "cache:set: out of memory");
  }
  lua_pushvalue(L, 3);
  lua_rawseti(L, 4, (lua_Integer)s + 1);
  c->sets++;
  /* evict least recently used until within bounds (the new entry is the most recent) */
  while (c->idx.count > c->max_entries || (c->max_bytes && c->idx.bytes > c->max_bytes)) {
    uint32_t old = lru_oldest(&c->idx);
    if (old == s) break;
    drop(L, c, old, 4);
    c->evictions++;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* c:delete(key) -> true if it was there */
static int cache_delete(lua_State *L) {
  cache *c = checkcache(L);
  size_t klen;
  const char *key = checkkey(L, "delete", &klen);
  lua_getiuservalue(L, 1, UV_VALUES);
  uint32_t s = lru_find(&c->idx, key, klen);
  if (s != LRU_NONE) drop(L, c, s, 3);
  lua_pushboolean(L, s != LRU_NONE);
  return 1;
}

static int cache_clear(lua_State *L) {
  cache *c = checkcache(L);
  lru_free(&c->idx);
  if (lru_init(&c->idx) < 0) {
    c->live = 0;
    return luaL_error(L, "cache:clear: out of memory");
  }
  lua_newtable(L);
  lua_setiuservalue(L, 1, UV_VALUES);
  return 0;
}

/* c:stats() -> {entries=, bytes=, hits=, misses=, sets=, evictions=, expirations=, ...} */
static int cache_stats(lua_State *L) {
  cache *c = checkcache(L);
  lua_getiuservalue(L, 1, UV_VALUES);
  reclaim(L, c, now(L, c), lua_gettop(L));
  lua_createtable(L, 0, 9);
  bind_set_int(L, "entries", c->idx.count);
  bind_set_int(L, "bytes", (lua_Integer)c->idx.bytes);
  bind_set_int(L, "hits", c->hits);
  bind_set_int(L, "misses", c->misses);
  bind_set_int(L, "sets", c->sets);
  bind_set_int(L, "evictions", c->evictions);
  bind_set_int(L, "expirations", c->expirations);
  bind_set_int(L, "max_entries", (lua_Integer)c->max_entries);
  bind_set_int(L, "max_bytes", (lua_Integer)c->max_bytes);
  return 1;
}

static int cache_len(lua_State *L) {
  cache *c = checkcache(L);
  lua_getiuservalue(L, 1, UV_VALUES);
  reclaim(L, c, now(L, c), lua_gettop(L)); /* expired entries do not count */
  lua_pushinteger(L, c->idx.count);
  return 1;
}

static int cache_gc(lua_State *L) {
  cache *c = luaL_checkudata(L, 1, PACER_CACHE);
  if (c->live) lru_free(&c->idx);
  c->live = 0;
  return 0;
}

static lua_Integer opt_int(lua_State *L, const char *k, lua_Integer def) {
  lua_getfield(L, 1, k);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return def;
  }
  if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
    luaL_error(L, "pacer.cache: '%s' must be a non-negative integer", k);
  lua_Integer v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

/* pacer.cache{ttl=, max_entries=10000, max_bytes=64 MiB, stale_while_revalidate=, clock=fn} */
static int l_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  static const char *known[] = {"ttl",   "max_entries",  "max_bytes", "stale_while_revalidate",
                                "clock", "negative_ttl", NULL};
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    int ok = 0;
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    for (int i = 0; known[i]; i++) ok |= strcmp(k, known[i]) == 0;
    if (!ok)
      return luaL_error(L,
                        "pacer.cache: unknown option '%s' (known: clock, max_bytes, max_entries, "
                        "negative_ttl, stale_while_revalidate, ttl)",
                        k);
    lua_pop(L, 1);
  }
  lua_Integer max_entries = opt_int(L, "max_entries", 10000), max_bytes = opt_int(L, "max_bytes", 64 << 20);
  if (max_entries < 1) return luaL_error(L, "pacer.cache: 'max_entries' must be at least 1");
  lua_getfield(L, 1, "ttl");
  double ttl = lua_isnil(L, -1) ? HUGE_VAL : ttl_seconds(L, lua_gettop(L), "pacer.cache: ttl");
  lua_getfield(L, 1, "stale_while_revalidate");
  double stale = lua_isnil(L, -1) ? 0 : bind_check_seconds(L, lua_gettop(L), "pacer.cache: stale_while_revalidate");
  lua_getfield(L, 1, "clock");
  int has_clock = !lua_isnil(L, -1);
  if (has_clock) luaL_checktype(L, -1, LUA_TFUNCTION);
  cache *c = lua_newuserdatauv(L, sizeof *c, 2); /* [opts, ttl, swr, clock, c] */
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, PACER_CACHE);
  if (lru_init(&c->idx) < 0) return luaL_error(L, "pacer.cache: out of memory");
  c->live = 1;
  c->ttl = ttl;
  c->stale = stale;
  c->max_entries = (size_t)max_entries;
  c->max_bytes = (size_t)max_bytes;
  c->has_clock = has_clock;
  lua_newtable(L);
  lua_setiuservalue(L, -2, UV_VALUES);
  lua_pushvalue(L, -2);
  lua_setiuservalue(L, -2, UV_CLOCK);
  return 1;
}

int luaopen_pacer_cache(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"get", cache_get},     {"set", cache_set},     {"delete", cache_delete}, {"lookup", cache_lookup},
      {"stats", cache_stats}, {"clear", cache_clear}, {"count", cache_count},   {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", cache_gc}, {"__len", cache_len}, {NULL, NULL}};
  bind_createmeta(L, PACER_CACHE, methods, meta);
  lua_pushcfunction(L, l_new);
  return 1;
}
