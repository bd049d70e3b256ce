/* corelib.c: Lua bindings of the pure parsers: rates, durations, Retry-After, HTTP
 * dates, quota headers. */
#include "core/quota.h"
#include "core/units.h"
#include "mod/bind.h"
#include "sched/loop.h"
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* parse_rate("50/min" | 10) -> per_second, count, period_seconds; raises naming the value */
static int l_parse_rate(lua_State *L) {
  double count;
  int64_t period;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    count = lua_tonumber(L, 1);
    period = 1000000000;
    if (!(count > 0) || count > 1e9)
      return luaL_error(L, "invalid rate %s: a rate must be positive", lua_tostring(L, 1));
  } else {
    const char *s = luaL_checkstring(L, 1);
    const char *err = parse_rate(s, &count, &period);
    if (err) return luaL_error(L, "invalid rate '%s': %s", s, err);
  }
  lua_pushnumber(L, count * 1e9 / (double)period);
  lua_pushnumber(L, count);
  lua_pushnumber(L, (double)period / 1e9);
  return 3;
}

/* parse_duration("250ms" | 1.5) -> seconds; raises naming the value */
static int l_parse_duration(lua_State *L) {
  if (lua_type(L, 1) == LUA_TNUMBER) {
    double s = lua_tonumber(L, 1);
    const char *why = check_seconds(s);
    if (why) return luaL_error(L, "invalid duration %s: %s", lua_tostring(L, 1), why);
    lua_pushnumber(L, s);
    return 1;
  }
  const char *s = luaL_checkstring(L, 1);
  int64_t ns;
  const char *err = parse_duration(s, &ns);
  if (err) return luaL_error(L, "invalid duration '%s': %s", s, err);
  lua_pushnumber(L, (double)ns / 1e9);
  return 1;
}

/* parse_retry_after(value [, now]) -> seconds | nil */
static int l_parse_retry_after(lua_State *L) {
  const char *v = luaL_optstring(L, 1, NULL);
  double now = luaL_optnumber(L, 2, loop_wall()), secs;
  if (!v || parse_retry_after(v, now, &secs) < 0) return 0;
  lua_pushnumber(L, secs);
  return 1;
}

/* http_date(epoch) -> "Sun, 06 Nov 1994 08:49:37 GMT" */
static int l_http_date(lua_State *L) {
  time_t t = (time_t)luaL_checknumber(L, 1);
  struct tm tm;
  char buf[64];
  if (!gmtime_r(&t, &tm)) return 0;
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  lua_pushstring(L, buf);
  return 1;
}

/* Raw lookup: names are lower-case already, and a case-folding __index would cost a
 * Lua call per miss. */
static const char *header(lua_State *L, const char *name) {
  lua_pushstring(L, name);
  lua_rawget(L, 1);
  const char *v = lua_tostring(L, -1);
  lua_pop(L, 1); /* the string stays alive in the headers table */
  return v;
}

/* The leading integer of "100" or "100, 100;w=60" (older drafts list policies after it). */
static int leading_int(const char *v, int64_t *out) {
  char buf[32];
  size_t n = strcspn(v, ",;");
  if (n >= sizeof buf) return -1;
  memcpy(buf, v, n);
  buf[n] = 0;
  return parse_quota_int(buf, out);
}

static int64_t param(const sf_item *it, const char *key, int *found) {
  for (int i = 0; i < it->nparams; i++)
    if (strcmp(it->params[i].key, key) == 0) {
      *found = 1;
      return it->params[i].value;
    }
  *found = 0;
  return 0;
}

/* One policy of the IETF fields: r and t from RateLimit, q and w from the RateLimit-Policy
 * item of the same name. */
typedef struct policy_view {
  const char *name;
  int has_r, has_t, has_q, has_w;
  int64_t r, t, q, w;
} policy_view;

static policy_view view_of(const sf_item *item, const sf_item *pols, int np) {
  policy_view v = {item->name, 0, 0, 0, 0, 0, 0, 0, 0};
  v.r = param(item, "r", &v.has_r);
  v.t = param(item, "t", &v.has_t);
  for (int j = 0; j < np; j++)
    if (strcmp(pols[j].name, item->name) == 0) {
      v.q = param(&pols[j], "q", &v.has_q);
      v.w = param(&pols[j], "w", &v.has_w);
    }
  return v;
}

/* remaining=, reset=, limit=, window= on the table at the top, for those present. */
static void set_view(lua_State *L, const policy_view *v) {
  if (v->has_r) bind_set_int(L, "remaining", v->r);
  if (v->has_t) bind_set_int(L, "reset", v->t);
  if (v->has_q) bind_set_int(L, "limit", v->q);
  if (v->has_w) bind_set_int(L, "window", v->w);
}

/* The IETF structured fields: RateLimit-Policy gives quotas and windows, RateLimit the
 * remaining and reset per policy. Fills q with the tightest policy. Returns 1 if any. */
static int structured(lua_State *L, const char *rl, const char *pol) {
  sf_item items[8], pols[8];
  int n = rl ? parse_sf_list(rl, items, 8) : 0, np = pol ? parse_sf_list(pol, pols, 8) : 0;
  if (n < 0 || np < 0) return 0; /* malformed: ignored */
  /* draft-03 dictionary form: limit=100, remaining=50, reset=30 */
  if (n > 0 && items[0].has_value) {
    int any = 0;
    for (int i = 0; i < n; i++) {
      if (!items[i].has_value) continue;
      const char *k = items[i].name;
      if (!strcmp(k, "limit") || !strcmp(k, "remaining") || !strcmp(k, "reset")) {
        bind_set_int(L, k, items[i].value);
        any = 1;
      }
    }
    return any;
  }
  policy_view views[8];
  for (int i = 0; i < n; i++) views[i] = view_of(&items[i], pols, np);
  if (n > 1) { /* every policy, for pacing by the tightest: policies = {{name=, ...}} */
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
      lua_createtable(L, 0, 5);
      bind_set_str(L, "name", views[i].name);
      set_view(L, &views[i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "policies");
  }
  int best = -1; /* the tightest: least remaining of its quota */
  double best_ratio = 2;
  for (int i = 0; i < n; i++) {
    const policy_view *v = &views[i];
    if (!v->has_r) continue;
    double ratio = v->has_q && v->q > 0 ? (double)v->r / (double)v->q : (double)v->r / 1e18;
    if (ratio < best_ratio) best_ratio = ratio, best = i;
  }
  if (best >= 0) {
    set_view(L, &views[best]);
    bind_set_str(L, "policy", views[best].name);
    return 1;
  }
  if (np > 0) { /* only the policy: the quota is known, usage not */
    policy_view v = {pols[0].name, 0, 0, 0, 0, 0, 0, 0, 0};
    v.q = param(&pols[0], "q", &v.has_q);
    v.w = param(&pols[0], "w", &v.has_w);
    set_view(L, &v);
    bind_set_str(L, "policy", v.name);
    return v.has_q;
  }
  return 0;
}

/* parse_quota(headers [, now]) -> {limit=, remaining=, reset=, window=, policy=, used=,
 * resource=} from whichever family of rate-limit headers is present, or nil.
 * Malformed values are skipped, never raised. */
static int l_parse_quota(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  double now = luaL_optnumber(L, 2, loop_wall());
  lua_createtable(L, 0, 6);
  int any = structured(L, header(L, "ratelimit"), header(L, "ratelimit-policy"));
  static const char *families[][4] = {
      {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "ratelimit-used"},
      {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-used"},
      {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset", "x-rate-limit-used"},
  };
  for (int f = 0; f < 3 && !any; f++) {
    const char *lim = header(L, families[f][0]), *rem = header(L, families[f][1]), *rst = header(L, families[f][2]),
               *used = header(L, families[f][3]);
    int64_t v;
    double secs;
    if (lim && leading_int(lim, &v) == 0) bind_set_int(L, "limit", v), any = 1;
    if (rem && leading_int(rem, &v) == 0) bind_set_int(L, "remaining", v), any = 1;
    if (rst && parse_quota_reset(rst, now, &secs) == 0) {
      bind_set_num(L, "reset", secs);
      any = 1;
    }
    if (used && leading_int(used, &v) == 0) bind_set_int(L, "count", v);
  }
  if (!any) return 0;
  const char *res = header(L, "x-ratelimit-resource");
  bind_set_str(L, "resource", res);
  lua_getfield(L, -1, "limit");
  lua_getfield(L, -2, "remaining");
  if (lua_isinteger(L, -1) && lua_isinteger(L, -2) && lua_tointeger(L, -2) > 0) {
    double l = (double)lua_tointeger(L, -2), r = (double)lua_tointeger(L, -1);
    lua_pop(L, 2);
    bind_set_num(L, "used", r >= l ? 0 : (l - r) / l);
  } else {
    lua_pop(L, 2);
  }
  return 1;
}

int luaopen_pacer_corelib(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"parse_rate", l_parse_rate},   {"parse_duration", l_parse_duration}, {"parse_retry_after", l_parse_retry_after},
      {"parse_quota", l_parse_quota}, {"http_date", l_http_date},           {NULL, NULL}};
  luaL_newlib(L, funcs);
  lua_pushliteral(L, PACER_VERSION); /* one version, from CMake's project() */
  lua_setfield(L, -2, "version");
  return 1;
}
