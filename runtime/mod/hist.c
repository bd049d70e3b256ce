/* hist.c (mod): pacer.c.hist, the latency histogram of core/hist.h as a Lua object.
 * Seconds in and out; the counts live in the userdata (no malloc, nothing to free). A
 * histogram may have an `up` one that every value it records also goes to: a client's
 * and the run's, in one call on a request's path. */
#include "core/hist.h"
#include "mod/modules.h"
#include <lauxlib.h>
#include <math.h>

#define PACER_HIST "pacer.hist"

typedef struct lhist {
  hist h;           /* first: a lhist * is a hist * */
  struct lhist *up; /* kept alive by the userdata's user value */
} lhist;

static hist *checkhist(lua_State *L, int i) {
  return luaL_checkudata(L, i, PACER_HIST);
}

static int64_t to_ns(lua_State *L, int i) {
  double s = luaL_checknumber(L, i);
  if (!(s > 0)) return 0; /* negative or NaN: a clock step, not a latency */
  if (s > 9e9) s = 9e9;
  return (int64_t)llround(s * 1e9);
}

/* Pushes an empty histogram whose values also go to the one at index `up` (0: none). */
static lhist *push_hist(lua_State *L, int up) {
  lhist *u = up ? luaL_checkudata(L, up, PACER_HIST) : NULL;
  lhist *h = lua_newuserdatauv(L, sizeof *h, 1);
  hist_init(&h->h);
  h->up = u;
  if (u) {
    lua_pushvalue(L, up);
    lua_setiuservalue(L, -2, 1);
  }
  luaL_setmetatable(L, PACER_HIST);
  return h;
}

/* hist.new([up]) -> an empty histogram; what it records also goes to `up` (and its up) */
static int hist_new(lua_State *L) {
  push_hist(L, lua_isnoneornil(L, 1) ? 0 : 1);
  return 1;
}

/* h:record(seconds) */
static int hist_m_record(lua_State *L) {
  int64_t ns = to_ns(L, 2);
  for (lhist *h = luaL_checkudata(L, 1, PACER_HIST); h; h = h->up) hist_record(&h->h, ns);
  return 0;
}

/* h:percentile(q) -> seconds at percentile q (0..100); 0 when empty */
static int hist_m_percentile(lua_State *L) {
  hist *h = checkhist(L, 1);
  double q = luaL_checknumber(L, 2);
  luaL_argcheck(L, q >= 0 && q <= 100, 2, "a percentile is 0..100");
  lua_pushnumber(L, (double)hist_percentile(h, q) / 1e9);
  return 1;
}

/* h:merge(other): adds other's counts into h */
static int hist_m_merge(lua_State *L) {
  hist_merge(checkhist(L, 1), checkhist(L, 2));
  return 0;
}

/* h:reset() */
static int hist_m_reset(lua_State *L) {
  hist_init(checkhist(L, 1));
  return 0;
}

/* h:count(), h:sum() (seconds) */
static int hist_m_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)checkhist(L, 1)->count);
  return 1;
}

static int hist_m_sum(lua_State *L) {
  lua_pushnumber(L, checkhist(L, 1)->sum_ns / 1e9);
  return 1;
}

/* h:summary() -> {count=, mean=, min=, p50=, p90=, p99=, p999=, max=} in seconds */
static int hist_m_summary(lua_State *L) {
  hist *h = checkhist(L, 1);
  static const struct {
    const char *name;
    double q;
  } qs[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p999", 99.9}};
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, (lua_Integer)h->count);
  lua_setfield(L, -2, "count");
  lua_pushnumber(L, h->count ? h->sum_ns / (double)h->count / 1e9 : 0);
  lua_setfield(L, -2, "mean");
  lua_pushnumber(L, (double)h->min_ns / 1e9);
  lua_setfield(L, -2, "min");
  lua_pushnumber(L, (double)h->max_ns / 1e9);
  lua_setfield(L, -2, "max");
  for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
    lua_pushnumber(L, (double)hist_percentile(h, qs[i].q) / 1e9);
    lua_setfield(L, -2, qs[i].name);
  }
  return 1;
}

/* h:cumulative({le1, le2, ...}) -> {n1, n2, ...}: samples at or below each bound
 * (seconds, ascending), the counts of Prometheus's histogram buckets */
static int hist_m_cumulative(lua_State *L) {
  hist *h = checkhist(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 2, i);
    double le = lua_tonumber(L, -1);
    lua_pop(L, 1);
    int64_t ns = le >= 9e9 ? INT64_MAX : (int64_t)(le * 1e9);
    lua_pushinteger(L, (lua_Integer)hist_count_le(h, ns));
    lua_rawseti(L, -2, i);
  }
  return 1;
}

/* h:dump() -> {count=, sum=, min=, max=, buckets = {i, n, i, n, ...}}: the counts as
 * plain numbers (nanoseconds; only the buckets that hold any), for another process to
 * hist.load and merge (the parent of `pacer --workers N`) */
static int hist_m_dump(lua_State *L) {
  hist *h = checkhist(L, 1);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)h->count);
  lua_setfield(L, -2, "count");
  lua_pushnumber(L, h->sum_ns);
  lua_setfield(L, -2, "sum");
  lua_pushinteger(L, h->min_ns);
  lua_setfield(L, -2, "min");
  lua_pushinteger(L, h->max_ns);
  lua_setfield(L, -2, "max");
  lua_newtable(L);
  lua_Integer n = 0;
  for (int i = 0; i < HIST_BUCKETS; i++) {
    if (!h->buckets[i]) continue;
    lua_pushinteger(L, i);
    lua_rawseti(L, -2, ++n);
    lua_pushinteger(L, h->buckets[i]);
    lua_rawseti(L, -2, ++n);
  }
  lua_setfield(L, -2, "buckets");
  return 1;
}

/* A whole number in [lo, hi] at t[k] (JSON may have made it a float), or a raise. */
static double dump_field(lua_State *L, int t, const char *k, double lo, double hi) {
  lua_getfield(L, t, k);
  int ok;
  double v = lua_tonumberx(L, -1, &ok);
  lua_pop(L, 1);
  if (!ok || !(v >= lo && v <= hi) || v != floor(v))
    luaL_error(L, "pacer.hist: load: '%s' must be a whole number in [%f, %f]", k, lo, hi);
  return v;
}

/* hist.load(t) -> a histogram holding what h:dump() gave; raises naming what is wrong */
static int hist_load(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  hist *h = &push_hist(L, 0)->h; /* [t, h] */
  h->count = (uint64_t)dump_field(L, 1, "count", 0, 9e15);
  h->min_ns = (int64_t)dump_field(L, 1, "min", -9e18, 9e18);
  h->max_ns = (int64_t)dump_field(L, 1, "max", -9e18, 9e18);
  lua_getfield(L, 1, "sum");
  if (!lua_isnumber(L, -1)) return luaL_error(L, "pacer.hist: load: 'sum' must be a number");
  h->sum_ns = lua_tonumber(L, -1);
  lua_getfield(L, 1, "buckets"); /* [t, h, sum, buckets] */
  luaL_argcheck(L, lua_istable(L, -1), 1, "pacer.hist: load: 'buckets' must be a list");
  lua_Integer n = luaL_len(L, -1);
  luaL_argcheck(L, n % 2 == 0, 1, "pacer.hist: load: 'buckets' must hold index, count pairs");
  for (lua_Integer j = 1; j <= n; j += 2) {
    lua_geti(L, -1, j);
    lua_geti(L, -2, j + 1);
    int ok1, ok2;
    double i = lua_tonumberx(L, -2, &ok1), c = lua_tonumberx(L, -1, &ok2);
    lua_pop(L, 2);
    if (!ok1 || !ok2 || !(i >= 0 && i < HIST_BUCKETS) || i != floor(i) || !(c >= 0 && c <= UINT32_MAX) || c != floor(c))
      return luaL_error(L, "pacer.hist: load: bucket pair %d is not an index (0..%d) and a count", (int)(j / 2 + 1),
                        HIST_BUCKETS - 1);
    h->buckets[(int)i] = (uint32_t)c;
  }
  lua_settop(L, 2);
  return 1;
}

static int hist_m_tostring(lua_State *L) {
  hist *h = checkhist(L, 1);
  lua_pushfstring(L, "pacer.hist (%d values, p50 %fs)", (int)h->count, (double)hist_percentile(h, 50) / 1e9);
  return 1;
}

int luaopen_pacer_hist(lua_State *L) {
  static const luaL_Reg methods[] = {{"record", hist_m_record},   {"percentile", hist_m_percentile},
                                     {"merge", hist_m_merge},     {"reset", hist_m_reset},
                                     {"count", hist_m_count},     {"sum", hist_m_sum},
                                     {"summary", hist_m_summary}, {"cumulative", hist_m_cumulative},
                                     {"dump", hist_m_dump},       {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__tostring", hist_m_tostring}, {NULL, NULL}};
  luaL_newmetatable(L, PACER_HIST);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, hist_new);
  lua_setfield(L, -2, "new");
  lua_pushcfunction(L, hist_load);
  lua_setfield(L, -2, "load");
  lua_pushinteger(L, (lua_Integer)sizeof(lhist));
  lua_setfield(L, -2, "bytes"); /* the memory of one histogram */
  return 1;
}
