/* gcra.c: GCRA arithmetic (see gcra.h). */
#include "core/gcra.h"
#include <math.h>

#define CATCH_UP_BELOW 1000000 /* 1 ms: intervals shorter than this absorb timer lateness */
/* (burst - 1) * interval, how far ahead of schedule a rule may run, is capped at 1e18 ns
 * (~31 years) so that it and tat +/- it stay far from int64 overflow */
#define MAX_AHEAD 1.0e18

static int compute(double count, int64_t period_ns, int64_t burst, int64_t *interval) {
  if (!(count > 0) || period_ns <= 0 || burst < 1 || burst > 1000000000) return -1;
  double raw = (double)period_ns / count;
  if (!(raw >= 1) || raw > 9.0e15) return -1;         /* faster than 1/ns, or slower than ~100 days */
  double t = ceil(raw);                               /* round up: never faster than asked */
  if ((double)(burst - 1) * t > MAX_AHEAD) return -1; /* e.g. 1/day with a burst of 200000 */
  *interval = (int64_t)t;
  return 0;
}

int gcra_init(gcra *g, double count, int64_t period_ns, int64_t burst) {
  int64_t t;
  if (compute(count, period_ns, burst, &t) < 0) return -1;
  g->interval = t;
  g->burst = burst;
  g->tolerance = (burst - 1) * t;
  g->tat = INT64_MIN / 2; /* far in the past: a full bucket */
  return 0;
}

int gcra_set_rate(gcra *g, double count, int64_t period_ns, int64_t burst, int64_t now) {
  int64_t t;
  if (compute(count, period_ns, burst, &t) < 0) return -1;
  if (g->tat > now) { /* rescale the debt: (tat - now) was measured in old intervals */
    double debt = (double)(g->tat - now) * ((double)t / (double)g->interval);
    g->tat = now + (int64_t)(debt < MAX_AHEAD ? debt : MAX_AHEAD); /* ~31 years: as good as never */
  }
  g->interval = t;
  g->burst = burst;
  g->tolerance = (burst - 1) * t;
  return 0;
}

int64_t gcra_wait(const gcra *g, int64_t now) {
  int64_t allowed_at = g->tat - g->tolerance;
  return allowed_at > now ? allowed_at - now : 0;
}

int64_t gcra_wait_n(const gcra *g, int64_t now, int64_t n) {
  if (n <= 1) return gcra_wait(g, now);
  if (n > g->burst) return -1;
  /* the n-th unit conforms when tat + (n - 1) * T - tau <= now (tat counted from now at
   * the earliest: an idle rule holds at most `burst` units) */
  int64_t base = g->tat > now ? g->tat : now;
  int64_t allowed_at = base + (n - 1) * g->interval - g->tolerance;
  return allowed_at > now ? allowed_at - now : 0;
}

void gcra_commit(gcra *g, int64_t now) {
  if (g->tat >= now) {
    g->tat += g->interval;
  } else if (g->interval < CATCH_UP_BELOW && now - g->tat < g->interval) {
    g->tat += g->interval; /* fired late by less than one interval: keep the schedule */
  } else {
    g->tat = now + g->interval;
  }
}

void gcra_commit_n(gcra *g, int64_t now, int64_t n) {
  gcra_commit(g, now);
  if (n > 1) g->tat += (n - 1) * g->interval;
}

int64_t gcra_remaining(const gcra *g, int64_t now) {
  int64_t ahead = g->tat > now ? g->tat - now : 0; /* debt still to pay off */
  int64_t used = (ahead + g->interval - 1) / g->interval;
  int64_t left = g->burst - used;
  return left > 0 ? left : 0;
}

int64_t gcra_reset(const gcra *g, int64_t now) {
  return g->tat > now ? g->tat - now : 0;
}
