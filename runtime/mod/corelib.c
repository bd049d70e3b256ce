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

/* One policy of the IETF fields: r and t from RateLimit, q, w and qu from the
 * RateLimit-Policy item of the same name (and partition key, when both carry one). */
typedef struct policy_view {
  const char *name;
  int has_r, has_t, has_q, has_w;
  int64_t r, t, q, w;
  const char *pkv, *quv; /* the field values the pk / qu spans point into */
  sf_text pk, qu;
} policy_view;

/* The two parsed fields: up to SMALL_LIST items in place, more in a userdata. */
#define SMALL_LIST 8
/* More policies than this in one field are not read: each becomes a Lua table per
 * response and is matched against every item of the other field (n * m compares), so a
 * hostile header of thousands of items would cost milliseconds and megabytes on every
 * answer. Real APIs send a handful; the rest are counted in quota.dropped. */
#define QUOTA_MAX_POLICIES 64
typedef struct sf_list {
  const char *v;
  sf_item small[SMALL_LIST], *items;
  int n, total; /* read, and in the field; n = -1: malformed */
  sf_error err;
} sf_list;

/* Parses v into *l; a list longer than SMALL_LIST goes in a userdata left on the stack. */
static void read_list(lua_State *L, const char *v, sf_list *l) {
  l->v = v, l->items = l->small, l->n = l->total = 0, l->err = (sf_error){NULL, 0};
  if (!v) return;
  l->n = l->total = parse_sf_list(v, l->small, SMALL_LIST, &l->err);
  if (l->total > SMALL_LIST) {
    l->n = l->total < QUOTA_MAX_POLICIES ? l->total : QUOTA_MAX_POLICIES;
    l->items = lua_newuserdatauv(L, (size_t)l->n * sizeof *l->items, 0);
    parse_sf_list(v, l->items, l->n, NULL);
  }
}

static int same_text(const char *av, const sf_text *a, const char *bv, const sf_text *b) {
  return a->len == b->len && memcmp(av + a->off, bv + b->off, a->len) == 0;
}

static policy_view view_of(const sf_item *item, const char *iv, const sf_list *pols) {
  policy_view v = {item->name, 0, 0, 0, 0, 0, 0, 0, 0, iv, iv, item->pk, item->qu};
  v.r = param(item, "r", &v.has_r);
  v.t = param(item, "t", &v.has_t);
  for (int j = 0; j < pols->n; j++) {
    const sf_item *p = &pols->items[j];
    if (strcmp(p->name, item->name) != 0) continue;
    if (item->pk.kind && p->pk.kind && !same_text(iv, &item->pk, pols->v, &p->pk)) continue;
    v.q = param(p, "q", &v.has_q);
    v.w = param(p, "w", &v.has_w);
    if (!v.pk.kind) v.pk = p->pk, v.pkv = pols->v;
    if (!v.qu.kind) v.qu = p->qu, v.quv = pols->v;
    break;
  }
  return v;
}

/* t[k] = the decoded text, for the table at the top. */
static void set_text(lua_State *L, const char *k, const char *v, const sf_text *t, int is_unit) {
  if (!t->kind) return;
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, t->len + 1);
  long n = sf_decode(v, t, out);
  luaL_pushresultsize(&b, n > 0 ? (size_t)n : 0);
  /* the draft's registry says "request", its text "requests": one name for both */
  if (is_unit && strcmp(lua_tostring(L, -1), "request") == 0) {
    lua_pop(L, 1);
    lua_pushliteral(L, "requests");
  }
  lua_setfield(L, -2, k);
}

/* remaining=, reset=, limit=, window=, partition=, unit= on the table at the top. */
static void set_view(lua_State *L, const policy_view *v) {
  if (v->has_r) bind_set_int(L, "remaining", v->r);
  if (v->has_t) bind_set_int(L, "reset", v->t);
  if (v->has_q) bind_set_int(L, "limit", v->q);
  if (v->has_w) bind_set_int(L, "window", v->w);
  set_text(L, "partition", v->pkv, &v->pk, 0);
  set_text(L, "unit", v->quv, &v->qu, 1);
}

/* The IETF structured fields: RateLimit-Policy gives quotas and windows, RateLimit the
 * remaining and reset per policy. Fills q (at the top) with the tightest policy and,
 * when there are several or they name partitions, policies = {{name=, ...}}. Returns 1
 * if any. */
static int structured(lua_State *L, sf_list *rl, sf_list *pol) {
  if (rl->n < 0 || pol->n < 0) return 0; /* malformed: ignored (the caller says why) */
  int n = rl->n, np = pol->n;
  int dropped = (rl->total - rl->n) + (pol->total - pol->n);
  if (dropped > 0) bind_set_int(L, "dropped", dropped);
  /* draft-03 dictionary form: limit=100, remaining=50, reset=30 */
  if (n > 0 && rl->items[0].has_value) {
    int any = 0;
    for (int i = 0; i < n; i++) {
      if (!rl->items[i].has_value) continue;
      const char *k = rl->items[i].name;
      if (!strcmp(k, "limit") || !strcmp(k, "remaining") || !strcmp(k, "reset")) {
        bind_set_int(L, k, rl->items[i].value);
        any = 1;
      }
    }
    return any;
  }
  int partitioned = 0;
  for (int i = 0; i < n; i++) partitioned |= rl->items[i].pk.kind != SF_TEXT_NONE;
  for (int i = 0; i < np; i++) partitioned |= pol->items[i].pk.kind != SF_TEXT_NONE;
  int best = -1; /* the tightest: least remaining of its quota */
  double best_ratio = 2;
  if (n > 1 || (n > 0 && partitioned)) { /* every policy: policies = {{name=, ...}} */
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
      policy_view v = view_of(&rl->items[i], rl->v, pol);
      lua_createtable(L, 0, 7);
      bind_set_str(L, "name", v.name);
      set_view(L, &v);
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "policies");
  }
  for (int i = 0; i < n; i++) {
    policy_view v = view_of(&rl->items[i], rl->v, pol);
    if (!v.has_r) continue;
    double ratio = v.has_q && v.q > 0 ? (double)v.r / (double)v.q : (double)v.r / 1e18;
    if (ratio < best_ratio) best_ratio = ratio, best = i;
  }
  if (best >= 0) {
    policy_view v = view_of(&rl->items[best], rl->v, pol);
    set_view(L, &v);
    bind_set_str(L, "policy", v.name);
    return 1;
  }
  if (np > 0) { /* only the policy: the quota is known, usage not */
    const sf_item *p = &pol->items[0];
    policy_view v = {p->name, 0, 0, 0, 0, 0, 0, 0, 0, pol->v, pol->v, p->pk, p->qu};
    v.q = param(p, "q", &v.has_q);
    v.w = param(p, "w", &v.has_w);
    set_view(L, &v);
    bind_set_str(L, "policy", v.name);
    return v.has_q;
  }
  return 0;
}

/* "RateLimit-Policy: pk is not ... (at byte 12)" for a malformed field, else NULL. */
static const char *malformed(lua_State *L, const char *field, const sf_list *l) {
  if (l->n >= 0) return NULL;
  return lua_pushfstring(L, "%s: %s (at byte %d)", field, l->err.why ? l->err.why : "malformed", (int)l->err.at);
}

/* parse_quota(headers [, now]) -> {limit=, remaining=, reset=, window=, policy=, used=,
 * resource=, partition=, unit=, policies=, dropped=} from whichever family of rate-limit
 * headers is present, or nil; and, second, why a malformed RateLimit / RateLimit-Policy
 * field was ignored (the draft says to ignore it), or nil. Never raises on bad values. */
/* Whether the (raw) headers table has a name that parse_quota reads: every one starts
 * with "ratelimit", "x-ratelimit" or "x-rate-limit". One pass over a usual answer's few
 * headers costs less than the fifteen lookups that would all miss. */
static int has_quota_names(lua_State *L) {
  int found = 0;
  lua_pushnil(L);
  while (!found && lua_next(L, 1)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) continue;
    size_t n;
    const char *k = lua_tolstring(L, -1, &n);
    found = quota_header_name(k, n);
  }
  if (found) lua_pop(L, 1); /* the key lua_next left */
  return found;
}

static int l_parse_quota(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!lua_isnoneornil(L, 2)) luaL_checknumber(L, 2);
  if (!has_quota_names(L)) { /* what the lookups below would give: no quota, no complaint */
    lua_pushnil(L);
    lua_pushnil(L);
    return 2;
  }
  double now = luaL_optnumber(L, 2, loop_wall());
  lua_settop(L, 2);
  sf_list rl, pol; /* [headers, now, ud?, ud?] */
  read_list(L, header(L, "ratelimit"), &rl);
  read_list(L, header(L, "ratelimit-policy"), &pol);
  const char *why = malformed(L, "RateLimit", &rl);
  if (!why) why = malformed(L, "RateLimit-Policy", &pol);
  if (!why) lua_pushnil(L);
  int why_at = lua_gettop(L);
  lua_createtable(L, 0, 6);
  int any = structured(L, &rl, &pol);
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
  if (!any) lua_pushnil(L);
  lua_pushvalue(L, why_at);
  if (!any) return 2;
  lua_pop(L, 1);
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
  lua_pushvalue(L, why_at);
  return 2;
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
