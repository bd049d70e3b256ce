/* sendpace.c: the send-side schedule of a limiter (see sendpace.h). */
#include "mod/sendpace.h"
#include "mod/bind.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UNCLAIMED_NS 100000000LL /* 100 ms: a grant no request took by then was not for one */
#define SPIN_MAX_NS  2000000LL   /* the longest a send is held in place (the loop waits too) */
#define HOLD_MIN_NS  1000000LL   /* a slot further off than this is waited for on a timer */
#define HOLD_EARLY   500000LL    /* ... which hands the transfer to libcurl this much before it */
#define LEAD_MAX     1000000LL   /* 1 ms: a grant ahead of its slot by more would be held too long */
#define MARGIN_MIN                                                                                                     \
  1000000LL                    /* 1 ms: a burst > 1 gives up 1 % of its tolerance (at least                            \
                                * this, at most half), once, to cover a server that times                              \
                                * arrivals later than we time sends (its first one most) */
#define MARGIN_1_MAX 50000LL   /* 50 us: for a burst of 1, added to every interval */
#define FINE_NS      100000LL  /* burst-1 intervals under 100 us (over 10,000/s): no lead, no stall rule */
#define PRECISE_MIN  1000000LL /* 1 ms: burst-1 intervals from here up have their writes timed */
#define STALL_MIN    250000LL  /* 250 us: a write or answer later than usual by less is no stall */
#define LEARN_PPM    2000      /* a refused burst-1 send adds 0.2 % to the interval, then doubles it */
#define LEARN_MAX    20000     /* ... up to 2 %: a server that times arrivals that loosely */

typedef struct sp_rule {
  int64_t interval;  /* the rule's T (plus margin_1 for a burst of 1) */
  int64_t tolerance; /* the rule's tau less the margin */
  int64_t slack;     /* grant-side tau minus ours: how much sooner grants may come */
  int64_t tat;       /* plain GCRA over the times requests went out */
  int64_t learnt;    /* ppm of the interval added after the server refused (429) a send */
} sp_rule;

typedef struct grant {
  task *t;
  int64_t at, cost;
} grant;

struct sendpace {
  int refs; /* the limiter (until orphaned) and each transfer holding a claim */
  gcra *grant_rules;
  int nrules;
  sp_rule rules[SENDPACE_RULES];
  list_node link; /* on loop->sendpaces while the limiter lives */
  grant pending[SENDPACE_PENDING];
  int npending;
  int64_t unsent;                         /* units granted, not on the wire yet (pending + claimed) */
  int64_t queued;                         /* units handed to libcurl, not on the wire yet */
  int64_t samples[SENDPACE_LEAD_SAMPLES]; /* grant -> wire, ns, a ring */
  int nsamples, next_sample;
  int64_t lead;
  int64_t rtts[SENDPACE_LEAD_SAMPLES]; /* send -> answer, ns, a ring */
  int nrtts, next_rtt;
  int64_t wires[SENDPACE_LEAD_SAMPLES]; /* send -> written (sendpace_wire), ns, a ring */
  int nwires, next_wire;
  int64_t last_sent; /* the latest send time */
  int64_t sent, spun_ns, early, stalls;
  int64_t pushed;                   /* ns the wire and stall rules moved the send schedule later, in all */
  void (*sync)(void *arg, int out); /* --workers: the limiter's lock and shared schedule */
  void *sync_arg;
};

sendpace *sendpace_new(pacer_loop *loop, gcra *rules, int nrules) {
  sendpace *sp = calloc(1, sizeof *sp);
  if (!sp) return NULL;
  sp->refs = 1;
  sp->grant_rules = rules;
  sendpace_rules(sp, nrules);
  list_push(&loop->sendpaces, &sp->link);
  return sp;
}

void sendpace_rules(sendpace *sp, int nrules) {
  if (!sp) return;
  int64_t now = loop_now_ns();
  for (int i = 0; i < nrules; i++) {
    const gcra *g = &sp->grant_rules[i];
    sp_rule *r = &sp->rules[i];
    int64_t old = i < sp->nrules ? r->interval : 0;
    int64_t m = g->tolerance / 100 > MARGIN_MIN ? g->tolerance / 100 : MARGIN_MIN;
    if (m > g->tolerance / 2) m = g->tolerance / 2;
    r->tolerance = g->tolerance - m;
    r->slack = m;
    /* a burst of 1 has no tolerance to spend on a server that times an arrival later
     * than the one after it: each interval carries a little of its own (50 us, at most
     * 1 %: the server's wake-up jitter on a shared machine, which no clock of ours sees
     * and which is not smaller at a higher rate; a stall beyond it is sendpace_wire's and
     * sendpace_answered's to catch) */
    int64_t m1 = g->interval / 100 < MARGIN_1_MAX ? g->interval / 100 : MARGIN_1_MAX;
    r->interval = g->tolerance == 0 ? g->interval + m1 + g->interval * r->learnt / 1000000 : g->interval;
    /* a rate change: what the sends still owe is rescaled, as the grant side does */
    if (old > 0 && r->tat > now) r->tat = now + (int64_t)((double)(r->tat - now) * ((double)r->interval / (double)old));
    if (old == 0) r->tat = INT64_MIN / 2;
  }
  sp->nrules = nrules;
}

static void unref(sendpace *sp) {
  if (--sp->refs == 0) free(sp);
}

void sendpace_orphan(sendpace *sp) {
  if (!sp) return;
  sp->grant_rules = NULL;
  sp->sync = NULL;
  sp->npending = 0;
  list_remove(&sp->link);
  unref(sp);
}

void sendpace_sync(sendpace *sp, void (*hook)(void *arg, int out), void *arg) {
  sp->sync = hook, sp->sync_arg = arg;
}

void sendpace_load(sendpace *sp, const int64_t *tats) {
  if (!sp) return;
  for (int i = 0; i < sp->nrules; i++) sp->rules[i].tat = tats[i];
}

void sendpace_store(const sendpace *sp, int64_t *tats) {
  if (!sp) return;
  for (int i = 0; i < sp->nrules; i++) tats[i] = sp->rules[i].tat;
}

/* Reads in (out = 0) or writes back (1) the shared schedules of a transfer's limiters. */
static void sync_claims(sendpace_claims *c, int out) {
  for (int k = 0; k < c->n; k++)
    if (c->sp[k]->sync) c->sp[k]->sync(c->sp[k]->sync_arg, out);
}

int64_t sendpace_lead(const sendpace *sp) {
  return sp ? sp->lead : 0;
}

static void take_pending(sendpace *sp, int i) {
  memmove(&sp->pending[i], &sp->pending[i + 1], (size_t)(sp->npending - i - 1) * sizeof sp->pending[0]);
  sp->npending--;
}

/* Forgets the unclaimed grants that aged out, and any of task t (NULL: none): an
 * earlier grant of a task that asks again took a slot and never sent on it. */
static void expire(sendpace *sp, int64_t now, const task *t) {
  for (int i = 0; i < sp->npending;) {
    if (now - sp->pending[i].at > UNCLAIMED_NS || sp->pending[i].t == t) {
      sp->unsent -= sp->pending[i].cost;
      take_pending(sp, i);
    } else {
      i++;
    }
  }
}

void sendpace_granted(sendpace *sp, task *t, int64_t now, int64_t cost) {
  if (!sp) return;
  expire(sp, now, t);
  if (sp->npending == SENDPACE_PENDING) {
    sp->unsent -= sp->pending[0].cost;
    take_pending(sp, 0);
  }
  sp->pending[sp->npending++] = (grant){t, now, cost};
  sp->unsent += cost;
}

void sendpace_claim(pacer_loop *loop, task *t, sendpace_claims *c) {
  c->n = 0;
  c->done = 0;
  c->queued = 0;
  c->wired = 0;
  c->wire_extra = 0;
  for (list_node *n = loop->sendpaces.next; n != &loop->sendpaces && c->n < SENDPACE_CLAIMS; n = n->next) {
    sendpace *sp = LIST_ENTRY(n, sendpace, link);
    for (int i = 0; i < sp->npending; i++) {
      if (sp->pending[i].t != t) continue;
      c->sp[c->n] = sp;
      c->cost[c->n] = sp->pending[i].cost;
      c->granted[c->n] = sp->pending[i].at;
      c->n++;
      sp->refs++;
      take_pending(sp, i); /* still counted in unsent until it goes out */
      break;
    }
  }
}

/* How long until a request of `cost` may go out on every rule, after `ahead` units that
 * go first (ns, <= 0: now). */
static int64_t send_wait(const sendpace *sp, int64_t now, int64_t ahead, int64_t cost) {
  int64_t w = INT64_MIN;
  for (int i = 0; i < sp->nrules; i++) {
    const sp_rule *r = &sp->rules[i];
    int64_t base = r->tat > now ? r->tat : now;
    int64_t x = base + (ahead + cost - 1) * r->interval - r->tolerance - now;
    /* a drained schedule always lets a request go: a cost of the whole burst would
     * otherwise wait for ever on the tolerance our margin took off */
    int64_t drained = base + ahead * r->interval - now;
    if (x > drained) x = drained;
    if (x > w) w = x;
  }
  return w;
}

/* A sorted copy of a ring of n samples into out (insertion sort: n <= 32, and twice a
 * request; qsort's callbacks cost more than the sort here). */
static void sorted(const int64_t *ring, int n, int64_t *out) {
  for (int i = 0; i < n; i++) {
    int64_t v = ring[i];
    int j = i;
    for (; j > 0 && out[j - 1] > v; j--) out[j] = out[j - 1];
    out[j] = v;
  }
}

/* Records sample in a ring of recent times (send to write, send to answer) and says
 * how much of it is a stall: its excess over the fastest when that is beyond the usual
 * spread (twice the median's excess over the fastest, at least STALL_MIN), else 0;
 * the whole sample while there are too few to know what is usual. */
static int64_t stalled(int64_t *ring, int *n, int *next, int64_t sample) {
  ring[*next] = sample;
  *next = (*next + 1) % SENDPACE_LEAD_SAMPLES;
  if (*n < SENDPACE_LEAD_SAMPLES) (*n)++;
  if (*n < 8) return sample;
  int64_t s[SENDPACE_LEAD_SAMPLES];
  sorted(ring, *n, s);
  int64_t beyond = sample - s[0], usual = s[*n / 2] - s[0];
  return beyond > (2 * usual > STALL_MIN ? 2 * usual : STALL_MIN) ? beyond : 0;
}

/* The lead for rules with a burst of 1: a high quantile of recent grant-to-wire times,
 * so that most grants arrive just before their slot and are held the few us left;
 * never more than half an interval. */
static void learn_lead(sendpace *sp, int64_t sample) {
  int64_t min_interval = INT64_MAX;
  for (int i = 0; i < sp->nrules; i++)
    if (sp->rules[i].tolerance == 0 && sp->rules[i].interval < min_interval) min_interval = sp->rules[i].interval;
  if (min_interval == INT64_MAX || min_interval < FINE_NS) { /* none, or too fine for a lead to matter */
    sp->lead = 0;
    return;
  }
  sp->samples[sp->next_sample] = sample;
  sp->next_sample = (sp->next_sample + 1) % SENDPACE_LEAD_SAMPLES;
  if (sp->nsamples < SENDPACE_LEAD_SAMPLES) sp->nsamples++;
  int64_t s[SENDPACE_LEAD_SAMPLES];
  sorted(sp->samples, sp->nsamples, s);
  int64_t q = s[(sp->nsamples * 7) / 8];
  int64_t cap = min_interval / 2 < LEAD_MAX ? min_interval / 2 : LEAD_MAX;
  sp->lead = q < cap ? q : cap;
}

/* How long until the transfer's request may go out on all its limiters (ns), after the
 * transfers handed to libcurl before it (queued = 1) or not (0). */
static int64_t claims_wait(const sendpace_claims *c, int64_t now, int queued) {
  int64_t w = 0;
  for (int k = 0; k < c->n; k++) {
    if (!c->sp[k]->grant_rules) continue; /* its limiter is gone */
    int64_t x = send_wait(c->sp[k], now, queued ? c->sp[k]->queued : 0, c->cost[k]);
    if (x > w) w = x;
  }
  return w;
}

int64_t sendpace_hold(sendpace_claims *c) {
  if (c->n == 0 || c->done) return 0;
  sync_claims(c, 0);
  int64_t w = claims_wait(c, loop_now_ns(), 1);
  sync_claims(c, 1);
  return w > HOLD_MIN_NS ? w - HOLD_EARLY : 0;
}

void sendpace_queue(sendpace_claims *c) {
  for (int k = 0; k < c->n && !c->queued; k++) c->sp[k]->queued += c->cost[k];
  c->queued = 1;
}

static void unqueue(sendpace_claims *c) {
  for (int k = 0; k < c->n && c->queued; k++) c->sp[k]->queued -= c->cost[k];
  c->queued = 0;
}

int64_t sendpace_send(sendpace_claims *c) {
  int64_t now = loop_now_ns(), arrived = now, t0 = now;
  unqueue(c);
  if (c->n == 0 || c->done) return now;
  sync_claims(c, 0);
  int64_t w;
  /* the rest of a slot is shorter than the loop's own wake-up jitter: held here, with
   * the lock let go (other workers' sends may take the slot: then look again); a slot
   * further off than the spin may last is never sent early: the caller holds it again */
  while ((w = claims_wait(c, now, 0)) > 0) {
    if (w > SPIN_MAX_NS - (now - t0)) {
      for (int k = 0; k < c->n; k++) c->sp[k]->early++;
      sync_claims(c, 1);
      return -1;
    }
    int64_t until = now + w;
    sync_claims(c, 1);
    while (now < until) now = loop_now_ns();
    sync_claims(c, 0);
  }
  if (now > t0)
    for (int k = 0; k < c->n; k++) c->sp[k]->spun_ns += now - t0;
  for (int k = 0; k < c->n; k++) {
    sendpace *sp = c->sp[k];
    sp->unsent -= c->cost[k];
    if (!sp->grant_rules) continue;
    expire(sp, now, NULL);
    sp->sent++;
    for (int i = 0; i < sp->nrules; i++) {
      sp_rule *r = &sp->rules[i];
      r->tat = (r->tat > now ? r->tat : now) + c->cost[k] * r->interval;
      /* the limiter's schedule follows the sends: the next grant is timed from where
       * this one really went out, with the units still on their way counted ahead */
      gcra *g = &sp->grant_rules[i];
      int64_t after = r->tat + sp->unsent * r->interval + r->slack;
      if (g->tat < after) g->tat = after;
    }
    learn_lead(sp, arrived - c->granted[k]); /* the path's own time, not the hold */
  }
  sync_claims(c, 1);
  c->done = 1;
  c->sent_at = now;
  for (int k = 0; k < c->n; k++) c->sp[k]->last_sent = now;
  return now;
}

static int64_t burst1_interval(const sendpace *sp) {
  for (int i = 0; i < sp->nrules; i++)
    if (sp->rules[i].tolerance == 0) return sp->rules[i].interval;
  return 0;
}

int sendpace_precise(const sendpace_claims *c) {
  for (int k = 0; k < c->n; k++)
    if (c->sp[k]->grant_rules && burst1_interval(c->sp[k]) >= PRECISE_MIN) return 1;
  return 0;
}

void sendpace_wire(sendpace_claims *c) {
  if (!c->done || c->n == 0 || c->wired) return;
  c->wired = 1;
  int64_t now = loop_now_ns(), late = now - c->sent_at;
  c->wire_at = now;
  sync_claims(c, 0);
  for (int k = 0; k < c->n; k++) {
    sendpace *sp = c->sp[k];
    if (!sp->grant_rules) continue;
    /* the next send may take as little as the fastest recent time to its own write:
     * a stall on the way to this one (the loop or the process held up) would come off
     * the gap the server sees. The usual spread is not counted: it is mostly the write
     * itself, which wakes the server (its arrival is no later for a slow write) */
    int64_t extra = stalled(sp->wires, &sp->nwires, &sp->next_wire, late);
    if (sp->last_sent != c->sent_at) continue; /* a later send set the pace */
    if (extra > c->wire_extra) c->wire_extra = extra;
    if (extra <= 0) continue;
    sp->pushed += extra;
    for (int i = 0; i < sp->nrules; i++) {
      sp_rule *r = &sp->rules[i];
      if (r->tolerance != 0) continue;
      r->tat += extra;
      gcra *g = &sp->grant_rules[i];
      int64_t after = r->tat + sp->unsent * r->interval + r->slack;
      if (g->tat < after) g->tat = after;
    }
  }
  sync_claims(c, 1);
}

/* The server refused a send at a burst of 1 (it timed the gap shorter than we did): the
 * rule's interval grows a little, so a declared rate stops costing a 429 each time. */
static void learn_refusal(sendpace *sp) {
  int grew = 0;
  for (int i = 0; i < sp->nrules; i++) {
    sp_rule *r = &sp->rules[i];
    if (r->tolerance != 0 || r->interval < FINE_NS || r->learnt >= LEARN_MAX) continue;
    r->learnt = r->learnt ? 2 * r->learnt : LEARN_PPM;
    if (r->learnt > LEARN_MAX) r->learnt = LEARN_MAX;
    grew = 1;
  }
  if (grew) sendpace_rules(sp, sp->nrules);
}

void sendpace_answered(sendpace_claims *c, int refused) {
  if (!c->done || c->n == 0) return;
  /* (from the write when it was seen: the time to it is sendpace_wire's to judge) */
  int64_t now = loop_now_ns(), rtt = now - (c->wired ? c->wire_at : c->sent_at);
  sync_claims(c, 0);
  for (int k = 0; k < c->n; k++) {
    sendpace *sp = c->sp[k];
    if (!sp->grant_rules || burst1_interval(sp) < FINE_NS) continue;
    if (refused) learn_refusal(sp);
    /* a stalled answer: the server may have timed the request as late as the whole
     * excess over the fastest answer (it woke late, then answered at once: seen here);
     * at most one interval. The first answers (a new connection's among them) count whole */
    int64_t beyond = stalled(sp->rtts, &sp->nrtts, &sp->next_rtt, rtt);
    if (sp->last_sent != c->sent_at || beyond <= 0) continue; /* (or a later send went out already) */
    sp->stalls++;
    int64_t moved = 0;
    for (int i = 0; i < sp->nrules; i++) {
      sp_rule *r = &sp->rules[i];
      if (r->tolerance != 0) continue;
      int64_t extra = beyond < r->interval ? beyond : r->interval;
      int64_t floor = c->sent_at + c->wire_extra + r->interval + extra;
      if (r->tat < floor) {
        if (floor - r->tat > moved) moved = floor - r->tat;
        r->tat = floor;
      }
      gcra *g = &sp->grant_rules[i];
      int64_t after = r->tat + sp->unsent * r->interval + r->slack;
      if (g->tat < after) g->tat = after;
    }
    sp->pushed += moved;
  }
  sync_claims(c, 1);
}

void sendpace_release(sendpace_claims *c) {
  unqueue(c);
  for (int k = 0; k < c->n; k++) {
    if (!c->done) c->sp[k]->unsent -= c->cost[k];
    unref(c->sp[k]);
  }
  c->n = 0;
}

void sendpace_push_state(lua_State *L, const sendpace *sp) {
  if (!sp) return;
  bind_set_int(L, "sent", sp->sent);
  bind_set_num(L, "lead", (double)sp->lead / 1e9);
  bind_set_num(L, "spun", (double)sp->spun_ns / 1e9);
  bind_set_int(L, "early", sp->early);
  bind_set_int(L, "stalls", sp->stalls);
  bind_set_num(L, "pushed", (double)sp->pushed / 1e9);
  int64_t learnt = 0;
  for (int i = 0; i < sp->nrules; i++)
    if (sp->rules[i].learnt > learnt) learnt = sp->rules[i].learnt;
  bind_set_num(L, "margin", (double)learnt / 1e6);
}
