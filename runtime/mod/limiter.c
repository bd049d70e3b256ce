/* limiter.c: pacer.limiter, one or more GCRA rules checked together. acquire() queues
 * tasks FIFO; only the head waits on a timer, so thousands of waiters cost O(1) each
 * and a rate change takes effect at once. */
#include "core/gcra.h"
#include "core/list.h"
#include "core/units.h"
#include "mod/bind.h"
#include "sched/loop.h"
#include "sched/task.h"
#include <event2/event.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define PACER_LIMITER "pacer.limiter"
#define MAX_RULES     8

typedef struct waiter {
  task *t;
  int64_t since;
  list_node link;
} waiter;

typedef struct limiter {
  int nrules;
  gcra rules[MAX_RULES];
  double counts[MAX_RULES]; /* as declared, for rules() */
  int64_t periods[MAX_RULES];
  list_node waiters; /* FIFO of waiter */
  struct event *timer;
  pacer_loop *loop;
  int64_t waited_ns; /* total time tasks spent queued here */
  int64_t granted;
} limiter;

static limiter *checklimiter(lua_State *L, int i) {
  return luaL_checkudata(L, i, PACER_LIMITER);
}

static int64_t wait_ns(limiter *lim, int64_t now) {
  int64_t w = 0;
  for (int i = 0; i < lim->nrules; i++) {
    int64_t x = gcra_wait(&lim->rules[i], now);
    if (x > w) w = x;
  }
  return w;
}

static void commit(limiter *lim, int64_t now) {
  for (int i = 0; i < lim->nrules; i++) gcra_commit(&lim->rules[i], now);
  lim->granted++;
}

static void arm(limiter *lim, int64_t ns) {
  struct timeval tv = bind_timeval_ns(ns);       /* rounded up: never before the slot */
  event_base_update_cache_time(lim->loop->base); /* count from now, not from the turn's start */
  evtimer_add(lim->timer, &tv);
}

/* Lets every waiter whose slot has come go, then arms the timer for the next one. */
static void on_slot(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  limiter *lim = arg;
  int64_t now = loop_now_ns();
  while (!list_empty(&lim->waiters)) {
    int64_t w = wait_ns(lim, now);
    if (w > 0) {
      arm(lim, w);
      return;
    }
    waiter *h = LIST_ENTRY(list_pop(&lim->waiters), waiter, link);
    commit(lim, now);
    lim->waited_ns += now - h->since;
    lua_State *co = task_thread(h->t);
    lua_pushnumber(co, (double)(now - h->since) / 1e9);
    task_wake(h->t, 1);
    free(h);
  }
}

/* Parses rule i from the value at the top of the stack ("10/s", a number, or
 * {rate=, burst=}) into count/period/burst. */
static void read_rule(lua_State *L, int idx, int64_t def_burst, double *count, int64_t *period, int64_t *burst) {
  int top = lua_gettop(L);
  idx = lua_absindex(L, idx);
  *burst = def_burst;
  if (lua_istable(L, idx)) {
    lua_getfield(L, idx, "burst");
    if (!lua_isnil(L, -1)) {
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
        luaL_error(L, "pacer.limiter: 'burst' must be an integer >= 1");
      *burst = lua_tointeger(L, -1);
    }
    lua_getfield(L, idx, "rate");
    idx = lua_gettop(L);
  }
  if (lua_type(L, idx) == LUA_TNUMBER) {
    double r = lua_tonumber(L, idx);
    if (!(r > 0) || r > 1e9) luaL_error(L, "pacer.limiter: rate must be a positive number, got %f", r);
    *count = r;
    *period = 1000000000;
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    const char *err = parse_rate(lua_tostring(L, idx), count, period);
    if (err) luaL_error(L, "pacer.limiter: invalid rate '%s': %s", lua_tostring(L, idx), err);
  } else {
    luaL_error(L, "pacer.limiter: rate must be a string like \"10/s\" or a number, got %s", luaL_typename(L, idx));
  }
  lua_settop(L, top);
}

static void load_rules(lua_State *L, limiter *lim, int opts) {
  int64_t burst = 1;
  lua_getfield(L, opts, "burst");
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
      luaL_error(L, "pacer.limiter: 'burst' must be an integer >= 1, got %s", luaL_tolstring(L, -1, NULL));
    burst = lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  lua_getfield(L, opts, "rules");
  lua_getfield(L, opts, "rate");
  if (!lua_isnil(L, -1) && !lua_isnil(L, -2)) luaL_error(L, "pacer.limiter: give 'rate' or 'rules', not both");
  int n = 0;
  if (!lua_isnil(L, -1)) {
    double c;
    int64_t p, b;
    read_rule(L, -1, burst, &c, &p, &b);
    lim->counts[0] = c, lim->periods[0] = p;
    if (gcra_init(&lim->rules[0], c, p, b) < 0) luaL_error(L, "pacer.limiter: rate out of range");
    n = 1;
  } else if (lua_istable(L, -2)) {
    int len = (int)lua_rawlen(L, -2);
    if (len < 1 || len > MAX_RULES) luaL_error(L, "pacer.limiter: 'rules' must hold 1 to %d rates", MAX_RULES);
    for (int i = 1; i <= len; i++) {
      double c;
      int64_t p, b;
      lua_rawgeti(L, -2, i);
      read_rule(L, -1, burst, &c, &p, &b);
      lua_pop(L, 1);
      lim->counts[n] = c, lim->periods[n] = p;
      if (gcra_init(&lim->rules[n], c, p, b) < 0) luaL_error(L, "pacer.limiter: rate out of range");
      n++;
    }
  } else {
    luaL_error(L, "pacer.limiter: a 'rate' (e.g. \"10/s\") or 'rules' (e.g. {\"5/s\", \"100/min\"}) is required");
  }
  lua_pop(L, 2);
  lim->nrules = n;
}

/* pacer.limiter{rate = "10/s" | rules = {...}, burst = 1} */
static int l_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 1)) { /* reject unknown options by name */
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    if (strcmp(k, "rate") && strcmp(k, "rules") && strcmp(k, "burst"))
      return luaL_error(L, "pacer.limiter: unknown option '%s' (known: rate, rules, burst)", k);
    lua_pop(L, 1);
  }
  limiter tmp;
  memset(&tmp, 0, sizeof tmp);
  load_rules(L, &tmp, 1); /* may raise: nothing allocated yet */
  limiter *lim = lua_newuserdatauv(L, sizeof *lim, 0);
  *lim = tmp;
  list_init(&lim->waiters);
  lim->loop = loop_get(L);
  lim->timer = NULL;
  luaL_setmetatable(L, PACER_LIMITER);
  lim->timer = evtimer_new(lim->loop->base, on_slot, lim);
  if (!lim->timer) return luaL_error(L, "pacer.limiter: out of memory");
  return 1;
}

/* lim:acquire() -> seconds waited. Yields until every rule allows one more request. */
static int lim_acquire(lua_State *L) {
  limiter *lim = checklimiter(L, 1);
  int64_t now = loop_now_ns();
  if (list_empty(&lim->waiters) && wait_ns(lim, now) == 0) {
    commit(lim, now);
    lua_pushnumber(L, 0);
    return 1;
  }
  task *t = task_check_current(L, "limiter:acquire");
  waiter *w = malloc(sizeof *w);
  if (!w) return luaL_error(L, "limiter:acquire: out of memory");
  w->t = t;
  w->since = now;
  if (list_empty(&lim->waiters)) arm(lim, wait_ns(lim, now)); /* only the head waits on the timer */
  list_push(&lim->waiters, &w->link);
  return task_suspend(L);
}

/* lim:try_acquire() -> true | false, seconds to wait */
static int lim_try_acquire(lua_State *L) {
  limiter *lim = checklimiter(L, 1);
  int64_t now = loop_now_ns();
  int64_t w = wait_ns(lim, now);
  if (list_empty(&lim->waiters) && w == 0) {
    commit(lim, now);
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_pushnumber(L, (double)(w > 0 ? w : 1000) / 1e9);
  return 2;
}

/* lim:set_rate("20/s" | {rules} [, burst]) changes the rules at run time: the debt each
 * rule carries is kept in requests and paid at the new rate; queued tasks are re-timed.
 * The burst stays as it was unless given. */
static int lim_set_rate(lua_State *L) {
  limiter *lim = checklimiter(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 3);
  lua_createtable(L, 0, 2); /* [lim, rate, burst, opts] */
  lua_pushvalue(L, 2);
  lua_setfield(L, 4, lua_istable(L, 2) && lua_rawlen(L, 2) > 0 ? "rules" : "rate");
  if (!lua_isnil(L, 3))
    lua_pushvalue(L, 3);
  else
    lua_pushinteger(L, lim->rules[0].burst); /* keep the burst unless told */
  lua_setfield(L, 4, "burst");
  limiter tmp;
  memset(&tmp, 0, sizeof tmp);
  load_rules(L, &tmp, 4);
  int64_t now = loop_now_ns();
  for (int i = 0; i < tmp.nrules; i++) {
    if (i < lim->nrules) /* rule i keeps its schedule, rescaled to the new rate */
      gcra_set_rate(&lim->rules[i], tmp.counts[i], tmp.periods[i], tmp.rules[i].burst, now);
    else
      lim->rules[i] = tmp.rules[i];
  }
  lim->nrules = tmp.nrules;
  memcpy(lim->counts, tmp.counts, sizeof tmp.counts);
  memcpy(lim->periods, tmp.periods, sizeof tmp.periods);
  if (!list_empty(&lim->waiters)) {
    evtimer_del(lim->timer);
    arm(lim, wait_ns(lim, now));
  }
  return 0;
}

/* lim:state() -> {rate=per second of the tightest rule, remaining=, reset=, waiting=, waited=, granted=} */
static int lim_state(lua_State *L) {
  limiter *lim = checklimiter(L, 1);
  int64_t now = loop_now_ns();
  int64_t remaining = INT64_MAX, reset = 0;
  double rate = 1e18;
  for (int i = 0; i < lim->nrules; i++) {
    int64_t r = gcra_remaining(&lim->rules[i], now), s = gcra_reset(&lim->rules[i], now);
    if (r < remaining) remaining = r;
    if (s > reset) reset = s;
    double per_s = lim->counts[i] * 1e9 / (double)lim->periods[i];
    if (per_s < rate) rate = per_s;
  }
  lua_Integer waiting = (lua_Integer)list_len(&lim->waiters);
  lua_createtable(L, 0, 6);
  bind_set_num(L, "rate", rate);
  bind_set_int(L, "remaining", remaining);
  bind_set_num(L, "reset", (double)reset / 1e9);
  bind_set_int(L, "waiting", waiting);
  bind_set_num(L, "waited", (double)lim->waited_ns / 1e9);
  bind_set_int(L, "granted", lim->granted);
  return 1;
}

/* lim:debts() -> {seconds...}: per rule, how far its schedule runs ahead of now (<= 0:
 * nothing owed). With lim:restore(debts) a limiter picks up where another left off. */
static int lim_debts(lua_State *L) {
  limiter *lim = checklimiter(L, 1);
  int64_t now = loop_now_ns();
  lua_createtable(L, lim->nrules, 0);
  for (int i = 0; i < lim->nrules; i++) {
    int64_t d = lim->rules[i].tat - now;
    lua_pushnumber(L, d < -(int64_t)1e18 ? -1e9 : (double)d / 1e9);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* lim:restore({seconds...}): takes on debts still owed (never forgives its own). */
static int lim_restore(lua_State *L) {
  limiter *lim = checklimiter(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t now = loop_now_ns();
  for (int i = 0; i < lim->nrules; i++) {
    lua_rawgeti(L, 2, i + 1);
    double d = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(d > 0) || d > 1e9) continue;
    int64_t tat = now + (int64_t)(d * 1e9);
    if (tat > lim->rules[i].tat) lim->rules[i].tat = tat;
  }
  return 0;
}

static int lim_gc(lua_State *L) {
  limiter *lim = checklimiter(L, 1);
  if (lim->timer) event_free(lim->timer);
  lim->timer = NULL;
  list_node *n;
  while ((n = list_pop(&lim->waiters))) free(LIST_ENTRY(n, waiter, link));
  return 0;
}

static int lim_tostring(lua_State *L) {
  limiter *lim = checklimiter(L, 1);
  lua_pushfstring(L, "pacer.limiter (%d rule%s): %p", lim->nrules, lim->nrules == 1 ? "" : "s", (void *)lim);
  return 1;
}

int luaopen_pacer_limiter(lua_State *L) {
  static const luaL_Reg methods[] = {{"acquire", lim_acquire},
                                     {"try_acquire", lim_try_acquire},
                                     {"set_rate", lim_set_rate},
                                     {"state", lim_state},
                                     {"debts", lim_debts},
                                     {"restore", lim_restore},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", lim_gc}, {"__tostring", lim_tostring}, {NULL, NULL}};
  bind_createmeta(L, PACER_LIMITER, methods, meta);
  lua_pushcfunction(L, l_new);
  return 1;
}
