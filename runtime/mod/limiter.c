/* limiter.c: pacer.limiter, one or more GCRA rules checked together. acquire(n) takes
 * n units of every rule (a request's cost). Waiters queue by priority (1 first, 9 last;
 * FIFO within one priority); only the head waits on a timer, so thousands of waiters
 * cost O(1) each and a rate change takes effect at once. A waiter may give a max_wait:
 * if its slot is further off than that, it is refused at once and takes nothing.
 * Under `pacer --workers N` a limiter is one of the run's shared limiters (see
 * sched/workers.h): each entry point reads the shared schedule in and writes it back
 * under the workers' lock, and the code between works on the local copy as it always did.
 * Each worker keeps its own waiters and publishes what they ask for; a worker's first
 * waiter lets an earlier or better-placed one of another worker go first. */
#include "core/gcra.h"
#include "core/units.h"
#include "mod/sendpace.h"
#include "sched/loop.h"
#include "sched/task.h"
#include "sched/workers.h"
#include <event2/event.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define PACER_LIMITER "pacer.limiter"
#define MAX_RULES     8
#define NPRIO         WORKERS_PRIO /* priorities 1..9 */
#define DEFAULT_PRIO  5
/* Another worker's first waiter whose timer is this far overdue: that worker is busy
 * (or stopped) and the slot goes to the next in line rather than wait for it. */
#define STALLED_NS 2000000
/* How soon a waiter that let another worker's go first looks again, at the least. */
#define DEFER_NS 200000
/* The workers keep one line only for a rule of 1,000/s or slower: faster, a slot is
 * never far off, and a look at the others' queues per grant would cost more than the
 * order is worth. */
#define LINE_NS 1000000

typedef struct waiter {
  task *t;
  int64_t since;
  int64_t cost;
  struct waiter *next;
} waiter;

typedef struct limiter {
  int nrules;
  gcra rules[MAX_RULES];
  double counts[MAX_RULES]; /* as declared, for rules() */
  int64_t periods[MAX_RULES];
  waiter *head[NPRIO], *tail[NPRIO]; /* one FIFO per priority */
  int64_t queued[NPRIO];             /* units the waiters of each priority ask for */
  struct event *timer;
  pacer_loop *loop;
  int64_t waited_ns; /* total time tasks spent queued here */
  int64_t granted;
  int64_t answered;    /* lim:answered()'s count, without workers */
  sendpace *sp;        /* the schedule of the sends these grants led to */
  int64_t due;         /* when the timer was meant to fire: a grant's lateness counts from it */
  shared_limiter *shm; /* with --workers: the schedule all workers share, or NULL */
  workers_region *region;
  int64_t gen;   /* the shared rules this copy holds (shared_limiter.gen) */
  int depth;     /* sync_in()s not yet matched by a sync_out() */
  int me, count; /* this worker's place (0-based) among count */
  int rules_set; /* a rate change to publish at sync_out */
} limiter;

static limiter *checklimiter(lua_State *L, int i) {
  return luaL_checkudata(L, i, PACER_LIMITER);
}

/* With workers: takes the lock and reads the shared schedule into this copy (the whole
 * rules after another worker changed the rate). Nests: only the outermost call reads. */
static void sync_in(limiter *lim) {
  if (!lim->shm || lim->depth++ > 0) return;
  workers_lock(lim->region);
  shared_limiter *s = lim->shm;
  if (s->gen != lim->gen) {
    lim->nrules = s->nrules;
    memcpy(lim->rules, s->rules, sizeof lim->rules);
    memcpy(lim->counts, s->counts, sizeof lim->counts);
    memcpy(lim->periods, s->periods, sizeof lim->periods);
    lim->gen = s->gen;
    sendpace_rules(lim->sp, lim->nrules);
  } else {
    for (int i = 0; i < lim->nrules; i++) lim->rules[i].tat = s->rules[i].tat;
  }
  sendpace_load(lim->sp, s->send_tat);
}

/* This worker's queue, as the others see it. */
static void publish(limiter *lim) {
  shared_queue *q = &lim->shm->queues[lim->me];
  memcpy(q->units, lim->queued, sizeof q->units);
  q->head_prio = 0;
  for (int p = 0; p < NPRIO; p++) {
    waiter *h = lim->head[p];
    if (!h) continue;
    q->head_prio = p + 1, q->head_since = h->since, q->head_cost = h->cost, q->head_due = lim->due;
    break;
  }
}

/* Writes this copy's schedule and queue back (and its rules after a rate change) and
 * unlocks. */
static void sync_out(limiter *lim) {
  if (!lim->shm || --lim->depth > 0) return;
  shared_limiter *s = lim->shm;
  publish(lim);
  if (lim->rules_set) {
    s->nrules = lim->nrules;
    memcpy(s->rules, lim->rules, sizeof s->rules);
    memcpy(s->counts, lim->counts, sizeof s->counts);
    memcpy(s->periods, lim->periods, sizeof s->periods);
    lim->gen = ++s->gen;
    lim->rules_set = 0;
  } else {
    for (int i = 0; i < lim->nrules; i++) s->rules[i].tat = lim->rules[i].tat;
  }
  sendpace_store(lim->sp, s->send_tat);
  workers_unlock(lim->region);
}

/* The send side's way in (sendpace_send and _answered change the schedule too). */
static void sync_hook(void *arg, int out) {
  if (out)
    sync_out(arg);
  else
    sync_in(arg);
}

/* Nanoseconds until n units conform on every rule; -1 when n is above a rule's burst. */
static int64_t wait_ns(limiter *lim, int64_t now, int64_t n) {
  int64_t w = 0;
  for (int i = 0; i < lim->nrules; i++) {
    int64_t x = gcra_wait_n(&lim->rules[i], now, n);
    if (x < 0) return -1;
    if (x > w) w = x;
  }
  return w;
}

/* When the last of `units` units (queued ahead, then one's own) would conform, if no
 * one of a better priority came: an estimate for max_wait, never capped by the burst. */
static int64_t eta_ns(limiter *lim, int64_t now, int64_t units) {
  int64_t w = 0;
  for (int i = 0; i < lim->nrules; i++) {
    const gcra *g = &lim->rules[i];
    int64_t base = g->tat > now ? g->tat : now;
    double at = (double)base + (double)(units - 1) * (double)g->interval - (double)g->tolerance;
    double x = at - (double)now;
    if (x > 9e18) x = 9e18;
    if (x > w) w = (int64_t)x;
  }
  return w;
}

/* keep: a grant late by less than an interval keeps the schedule (its sends are held
 * to their spacing by the send side, mod/sendpace.c) */
static void commit(limiter *lim, int64_t now, int64_t n, int keep) {
  for (int i = 0; i < lim->nrules; i++) {
    gcra *g = &lim->rules[i];
    int64_t at = keep && g->tat < now && now - g->tat < g->interval ? g->tat : now;
    gcra_commit_n(g, at, n);
  }
  lim->granted++;
}

/* The smallest burst of the rules: the largest cost a request may have. */
static int64_t max_cost(limiter *lim) {
  int64_t m = INT64_MAX;
  for (int i = 0; i < lim->nrules; i++)
    if (lim->rules[i].burst < m) m = lim->rules[i].burst;
  return m;
}

/* The priority (0-based) of the first waiter to serve, or -1 when none waits. */
static int first_prio(limiter *lim) {
  for (int p = 0; p < NPRIO; p++)
    if (lim->head[p]) return p;
  return -1;
}

/* Whether the workers keep one line of waiters here (call synced in). */
static int in_line(limiter *lim) {
  if (!lim->shm) return 0;
  for (int i = 0; i < lim->nrules; i++)
    if (lim->rules[i].interval >= LINE_NS) return 1;
  return 0;
}

/* Units queued by waiters of priority <= p (0-based): this worker's, and with `others`
 * every worker's (call synced in). */
static int64_t queued_upto(limiter *lim, int p, int others) {
  int64_t u = 0;
  for (int i = 0; i <= p; i++) u += lim->queued[i];
  if (!lim->shm || !others) return u;
  for (int k = 0; k < lim->count; k++)
    if (k != lim->me)
      for (int i = 0; i <= p; i++) u += lim->shm->queues[k].units[i];
  return u;
}

/* Another worker's first waiter that is to go before this worker's (priority p, queued
 * at since), or NULL: a better priority, or the same one queued earlier, whose worker is
 * not stalled (call synced in). */
static const shared_queue *ahead_of(limiter *lim, int p, int64_t since, int64_t now) {
  if (!lim->shm) return NULL;
  const shared_queue *first = NULL;
  int me = lim->me;
  for (int k = 0; k < lim->count; k++) {
    const shared_queue *q = &lim->shm->queues[k];
    if (k == me || q->head_prio == 0 || q->head_due < now - STALLED_NS) continue;
    int qp = q->head_prio - 1;
    if (qp < p || (qp == p && (q->head_since < since || (q->head_since == since && k < me)))) {
      if (!first || qp < first->head_prio - 1 || (qp == first->head_prio - 1 && q->head_since < first->head_since))
        first = q;
    }
  }
  return first;
}

/* Nanoseconds until n units conform once `before` units went at t (a waiter ahead). */
static int64_t wait_after(limiter *lim, int64_t t, int64_t before, int64_t n) {
  int64_t w = 0;
  for (int i = 0; i < lim->nrules; i++) {
    gcra g = lim->rules[i];
    gcra_commit_n(&g, t, before);
    int64_t x = gcra_wait_n(&g, t, n);
    if (x > w) w = x;
  }
  return w;
}

static waiter *pop(limiter *lim, int p) {
  waiter *h = lim->head[p];
  lim->head[p] = h->next;
  if (!lim->head[p]) lim->tail[p] = NULL;
  lim->queued[p] -= h->cost;
  return h;
}

static void arm(limiter *lim, int64_t ns) {
  /* round up to the microsecond so the timer never fires before the slot */
  int64_t us = (ns + 999) / 1000;
  struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
  event_base_update_cache_time(lim->loop->base); /* count from now, not from the turn's start */
  lim->due = loop_now_ns() + ns;
  evtimer_add(lim->timer, &tv);
}

/* Lets every waiter whose slot has come go, best priority first, then arms the timer
 * for the next one. A waiter whose cost a rate change put above the burst is woken
 * with nil, {kind = "cost"} rather than left to wait forever. */
static void on_slot(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  limiter *lim = arg;
  int64_t now = loop_now_ns();
  int64_t lead = sendpace_lead(lim->sp);
  int p;
  sync_in(lim);
  while ((p = first_prio(lim)) >= 0) {
    int64_t w = wait_ns(lim, now + lead, lim->head[p]->cost);
    if (w > 0) {
      arm(lim, w);
      sync_out(lim);
      return;
    }
    const shared_queue *q = w == 0 && in_line(lim) ? ahead_of(lim, p, lim->head[p]->since, now) : NULL;
    if (q) { /* its worker takes this slot: look again when the next one is due */
      int64_t next = wait_after(lim, now + lead, q->head_cost, lim->head[p]->cost);
      arm(lim, next > DEFER_NS ? next : DEFER_NS);
      sync_out(lim);
      return;
    }
    waiter *h = pop(lim, p);
    lua_State *co = task_thread(h->t);
    if (w < 0) {
      lua_pushnil(co);
      lua_createtable(co, 0, 2);
      lua_pushliteral(co, "cost");
      lua_setfield(co, -2, "kind");
      lua_pushfstring(co, "limiter:acquire: a cost of %d is above the burst of the limiter's new rules", (int)h->cost);
      lua_setfield(co, -2, "message");
      task_wake(h->t, 2);
    } else {
      /* with sends to follow (a lead), the grant keeps the schedule: its timer's
       * lateness is the send side's to absorb, not lost for good */
      int64_t at = lead > 0 && lim->due < now ? lim->due : now;
      commit(lim, at + lead, h->cost, lead > 0);
      sendpace_granted(lim->sp, h->t, at, h->cost);
      lim->waited_ns += now - h->since;
      /* the promised slot, for lateness: when the timer was due, or now if sooner */
      int64_t slot = lim->due > h->since ? lim->due : h->since;
      lua_pushnumber(co, (double)(now - h->since) / 1e9);
      lua_pushnumber(co, (double)(slot < now ? slot : now) / 1e9);
      task_wake(h->t, 2);
    }
    free(h);
  }
  sync_out(lim);
}

/* Re-times the head's timer (the head changed, or the rules did). */
static void rearm(limiter *lim, int64_t now) {
  evtimer_del(lim->timer);
  int p = first_prio(lim);
  if (p < 0) return;
  sync_in(lim);
  int64_t w = wait_ns(lim, now + sendpace_lead(lim->sp), lim->head[p]->cost);
  arm(lim, w > 0 ? w : 0);
  sync_out(lim); /* after arm: the others see when this worker's timer is due */
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

/* Under --workers: binds tmp to the run's next shared limiter, the one every worker's
 * limiter of the same place in the script shares; the first worker there sets it up. */
static void share(lua_State *L, limiter *tmp, pacer_loop *loop) {
  int seq = loop->limiters_made++;
  shared_limiter *s = workers_slot(loop->shared, seq);
  if (!s)
    luaL_error(L, "pacer.limiter: more than %d limiters shared between workers (make the rest with shared = false)",
               WORKERS_LIMITERS);
  workers_lock(loop->shared);
  int same = 1;
  if (!s->used) {
    s->used = 1, s->gen = 1, s->nrules = tmp->nrules;
    memcpy(s->rules, tmp->rules, sizeof s->rules);
    memcpy(s->counts, tmp->counts, sizeof s->counts);
    memcpy(s->periods, tmp->periods, sizeof s->periods);
    for (int i = 0; i < WORKERS_RULES; i++) s->send_tat[i] = INT64_MIN / 2;
  } else if (s->gen == 1) { /* not yet changed at run time: it must be the same limiter */
    same = s->nrules == tmp->nrules;
    for (int i = 0; same && i < tmp->nrules; i++)
      same = s->counts[i] == tmp->counts[i] && s->periods[i] == tmp->periods[i] &&
             s->rules[i].burst == tmp->rules[i].burst;
  }
  workers_unlock(loop->shared);
  if (!same)
    luaL_error(L,
               "pacer.limiter: limiter #%d of this worker has other rules than limiter #%d of another: with "
               "--workers every worker must make the same limiters in the same order (or pass shared = false)",
               seq + 1, seq + 1);
  tmp->shm = s, tmp->region = loop->shared, tmp->gen = 0; /* gen 0: the first sync_in reads it all */
  tmp->me = loop->worker_id - 1, tmp->count = loop->worker_count;
}

/* pacer.limiter{rate = "10/s" | rules = {...}, burst = 1, shared = true} */
static int l_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 1)) { /* reject unknown options by name */
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    if (strcmp(k, "rate") && strcmp(k, "rules") && strcmp(k, "burst") && strcmp(k, "shared"))
      return luaL_error(L, "pacer.limiter: unknown option '%s' (known: rate, rules, burst, shared)", k);
    lua_pop(L, 1);
  }
  lua_getfield(L, 1, "shared");
  if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
    return luaL_error(L, "pacer.limiter: 'shared' must be a boolean, got %s", luaL_typename(L, -1));
  int shared = !lua_isboolean(L, -1) || lua_toboolean(L, -1);
  lua_pop(L, 1);
  limiter tmp;
  memset(&tmp, 0, sizeof tmp);
  load_rules(L, &tmp, 1); /* may raise: nothing allocated yet */
  pacer_loop *loop = loop_get(L);
  if (shared && loop->shared) share(L, &tmp, loop);
  limiter *lim = lua_newuserdatauv(L, sizeof *lim, 0);
  *lim = tmp;
  lim->loop = loop_get(L);
  lim->timer = NULL;
  luaL_setmetatable(L, PACER_LIMITER);
  lim->sp = NULL;
  lim->timer = evtimer_new(lim->loop->base, on_slot, lim);
  if (lim->timer) lim->sp = sendpace_new(lim->loop, lim->rules, lim->nrules);
  if (!lim->timer || !lim->sp) return luaL_error(L, "pacer.limiter: out of memory");
  if (lim->shm) sendpace_sync(lim->sp, sync_hook, lim);
  return 1;
}

/* The cost argument at index i (default 1): an integer >= 1 no rule's burst is below. */
static int64_t checkcost(lua_State *L, limiter *lim, int i, const char *what) {
  lua_Integer n = luaL_optinteger(L, i, 1);
  luaL_argcheck(L, n >= 1, i, "the cost must be an integer >= 1");
  int64_t m = max_cost(lim);
  if (n > m)
    luaL_error(L, "%s: a cost of %d is above the limiter's burst (%d): it could never be granted", what, (int)n,
               (int)m);
  return n;
}

/* Reads {priority = 1..9, max_wait = seconds} at index i into *prio (0-based), *max_ns
 * (-1: no limit). */
static void checkwaitopts(lua_State *L, int i, int *prio, int64_t *max_ns) {
  *prio = DEFAULT_PRIO - 1, *max_ns = -1;
  if (lua_isnoneornil(L, i)) return;
  luaL_checktype(L, i, LUA_TTABLE);
  lua_getfield(L, i, "priority");
  if (!lua_isnil(L, -1)) {
    int isint;
    lua_Integer p = lua_tointegerx(L, -1, &isint);
    if (!isint || p < 1 || p > NPRIO) luaL_error(L, "limiter:acquire: 'priority' must be an integer 1..9");
    *prio = (int)p - 1;
  }
  lua_getfield(L, i, "max_wait");
  if (lua_type(L, -1) == LUA_TSTRING) {
    int64_t ns;
    const char *err = parse_duration(lua_tostring(L, -1), &ns);
    if (err) luaL_error(L, "limiter:acquire: option 'max_wait': %s", err);
    *max_ns = ns;
  } else if (!lua_isnil(L, -1)) {
    int isnum;
    double s = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !(s >= 0) || s > 1e9) luaL_error(L, "limiter:acquire: 'max_wait' must be a duration >= 0");
    *max_ns = (int64_t)(s * 1e9);
  }
  lua_pop(L, 2);
}

/* lim:acquire([n [, {priority =, max_wait =}]]) -> seconds waited, the slot it was
 * granted (pacer.now()'s clock: a send later than that is late). Yields until every
 * rule allows n more units and no better-placed waiter is ahead. With max_wait, when
 * the slot is further off than that: nil, {kind = "deadline", wait = seconds} at once. */
static int lim_acquire(lua_State *L) {
  limiter *lim = checklimiter(L, 1);
  int64_t n = checkcost(L, lim, 2, "limiter:acquire");
  int prio;
  int64_t max_ns;
  checkwaitopts(L, 3, &prio, &max_ns);
  int64_t now = loop_now_ns();
  int64_t lead = sendpace_lead(lim->sp);
  sync_in(lim);
  int64_t ahead = queued_upto(lim, prio, in_line(lim));
  if (ahead == 0 && wait_ns(lim, now + lead, n) == 0) {
    commit(lim, now + lead, n, lead > 0);
    sync_out(lim);
    if (task_current(L)) sendpace_granted(lim->sp, task_current(L), now, n);
    lua_pushnumber(L, 0);
    lua_pushnumber(L, (double)now / 1e9);
    return 2;
  }
  int64_t eta = eta_ns(lim, now, queued_upto(lim, prio, 1) + n); /* every worker's waiters ahead */
  if (max_ns >= 0) {
    if (eta > max_ns) {
      sync_out(lim);
      lua_pushnil(L);
      lua_createtable(L, 0, 3);
      lua_pushliteral(L, "deadline");
      lua_setfield(L, -2, "kind");
      lua_pushnumber(L, (double)eta / 1e9);
      lua_setfield(L, -2, "wait");
      lua_pushfstring(L, "the limiter's next slot is %fs away, beyond max_wait (%fs)", (double)eta / 1e9,
                      (double)max_ns / 1e9);
      lua_setfield(L, -2, "message");
      return 2;
    }
  }
  task *t = task_current(L);
  waiter *w = t ? malloc(sizeof *w) : NULL;
  if (!w) {
    sync_out(lim); /* not to raise an error with the lock held */
    if (!t) task_check_current(L, "limiter:acquire");
    return luaL_error(L, "limiter:acquire: out of memory");
  }
  w->t = t;
  w->since = now;
  w->cost = n;
  w->next = NULL;
  int first = first_prio(lim);
  if (lim->tail[prio])
    lim->tail[prio]->next = w;
  else
    lim->head[prio] = w;
  lim->tail[prio] = w;
  lim->queued[prio] += n;
  if (first < 0 || prio < first) rearm(lim, now); /* a new head */
  sync_out(lim);
  return task_suspend(L);
}

/* lim:try_acquire([n]) -> true | false, seconds to wait (never queues) */
static int lim_try_acquire(lua_State *L) {
  limiter *lim = checklimiter(L, 1);
  int64_t n = checkcost(L, lim, 2, "limiter:try_acquire");
  int64_t now = loop_now_ns();
  sync_in(lim);
  int64_t w = wait_ns(lim, now, n);
  if (w == 0 && queued_upto(lim, NPRIO - 1, in_line(lim)) == 0) {
    commit(lim, now, n, 0);
    sync_out(lim);
    lua_pushboolean(L, 1);
    return 1;
  }
  int64_t eta = eta_ns(lim, now, queued_upto(lim, NPRIO - 1, 1) + n);
  sync_out(lim);
  lua_pushboolean(L, 0);
  lua_pushnumber(L, (double)(eta > 0 ? eta : 1000) / 1e9);
  return 2;
}

/* lim:max_cost() -> the largest cost one acquire may ask for (the smallest burst) */
static int lim_max_cost(lua_State *L) {
  lua_pushinteger(L, max_cost(checklimiter(L, 1)));
  return 1;
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
  sync_in(lim);
  for (int i = 0; i < tmp.nrules; i++) {
    if (i < lim->nrules) /* rule i keeps its schedule, rescaled to the new rate */
      gcra_set_rate(&lim->rules[i], tmp.counts[i], tmp.periods[i], tmp.rules[i].burst, now);
    else
      lim->rules[i] = tmp.rules[i];
  }
  lim->nrules = tmp.nrules;
  memcpy(lim->counts, tmp.counts, sizeof tmp.counts);
  memcpy(lim->periods, tmp.periods, sizeof tmp.periods);
  sendpace_rules(lim->sp, lim->nrules);
  lim->rules_set = 1;
  sync_out(lim);
  rearm(lim, now);
  return 0;
}

/* lim:answered([n]): counts n (1) answers that got through; state().answered sums them
 * over the workers: adaptive pacing's measure of what the server let through. */
static int lim_answered(lua_State *L) {
  limiter *lim = checklimiter(L, 1);
  lua_Integer n = luaL_optinteger(L, 2, 1);
  luaL_argcheck(L, n >= 0, 2, "limiter:answered: a count must be >= 0");
  lim->answered += n;
  if (lim->shm) {
    workers_lock(lim->region);
    lim->shm->answered += n;
    workers_unlock(lim->region);
  }
  return 0;
}

/* lim:state() -> {rate=per second of the tightest rule, remaining=, reset=, waiting=, waited=, granted=,
 * answered=(lim:answered()'s count, every worker's), shared=(one limiter for all the workers of --workers N)} */
static int lim_state(lua_State *L) {
  limiter *lim = checklimiter(L, 1);
  int64_t now = loop_now_ns();
  int64_t remaining = INT64_MAX, reset = 0;
  double rate = 1e18;
  sync_in(lim);
  for (int i = 0; i < lim->nrules; i++) {
    int64_t r = gcra_remaining(&lim->rules[i], now), s = gcra_reset(&lim->rules[i], now);
    if (r < remaining) remaining = r;
    if (s > reset) reset = s;
    double per_s = lim->counts[i] * 1e9 / (double)lim->periods[i];
    if (per_s < rate) rate = per_s;
  }
  int64_t answered = lim->shm ? lim->shm->answered : lim->answered;
  sync_out(lim);
  int waiting = 0;
  for (int p = 0; p < NPRIO; p++)
    for (waiter *w = lim->head[p]; w; w = w->next) waiting++;
  lua_createtable(L, 0, 8);
  lua_pushnumber(L, rate);
  lua_setfield(L, -2, "rate");
  lua_pushinteger(L, remaining);
  lua_setfield(L, -2, "remaining");
  lua_pushnumber(L, (double)reset / 1e9);
  lua_setfield(L, -2, "reset");
  lua_pushinteger(L, waiting);
  lua_setfield(L, -2, "waiting");
  lua_pushnumber(L, (double)lim->waited_ns / 1e9);
  lua_setfield(L, -2, "waited");
  lua_pushinteger(L, lim->granted);
  lua_setfield(L, -2, "granted");
  lua_pushinteger(L, answered);
  lua_setfield(L, -2, "answered");
  lua_pushboolean(L, lim->shm != NULL);
  lua_setfield(L, -2, "shared");
  sendpace_push_state(L, lim->sp);
  return 1;
}

/* lim:debts() -> {seconds...}: per rule, how far its schedule runs ahead of now (<= 0:
 * nothing owed). With lim:restore(debts) a limiter picks up where another left off. */
static int lim_debts(lua_State *L) {
  limiter *lim = checklimiter(L, 1);
  int64_t now = loop_now_ns();
  sync_in(lim);
  sync_out(lim); /* only read: the copy is now the shared schedule */
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
  sync_in(lim);
  for (int i = 0; i < lim->nrules; i++) {
    lua_rawgeti(L, 2, i + 1);
    double d = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(d > 0) || d > 1e9) continue;
    int64_t tat = now + (int64_t)(d * 1e9);
    if (tat > lim->rules[i].tat) lim->rules[i].tat = tat;
  }
  sync_out(lim);
  return 0;
}

static int lim_gc(lua_State *L) {
  limiter *lim = checklimiter(L, 1);
  if (lim->timer) event_free(lim->timer);
  lim->timer = NULL;
  sendpace_orphan(lim->sp);
  lim->sp = NULL;
  for (int p = 0; p < NPRIO; p++) {
    while (lim->head[p]) free(pop(lim, p));
  }
  if (lim->shm) { /* its waiters, gone, hold no other worker up */
    workers_lock(lim->region);
    publish(lim);
    workers_unlock(lim->region);
  }
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
                                     {"max_cost", lim_max_cost},
                                     {"set_rate", lim_set_rate},
                                     {"state", lim_state},
                                     {"debts", lim_debts},
                                     {"restore", lim_restore},
                                     {"answered", lim_answered},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", lim_gc}, {"__tostring", lim_tostring}, {NULL, NULL}};
  luaL_newmetatable(L, PACER_LIMITER);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_new);
  return 1;
}
