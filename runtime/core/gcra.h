/* gcra.h: the Generic Cell Rate Algorithm for one rate rule, in integer nanoseconds.
 * Pure arithmetic (no clock, no Lua) so it is exact and testable on its own. */
#ifndef PACER_GCRA_H
#define PACER_GCRA_H
#include <stdint.h>

typedef struct gcra {
  int64_t interval;  /* T: nanoseconds between two requests at the sustained rate */
  int64_t tolerance; /* tau = (burst - 1) * T: how far ahead of schedule we may be */
  int64_t tat;       /* theoretical arrival time of the next request */
  int64_t burst;     /* requests that may go back to back */
} gcra;

/* Set up a rule of `count` requests per `period_ns`, `burst` >= 1 back to back.
 * Returns 0, or -1 (rule untouched) when count, period or burst is out of range. */
int gcra_init(gcra *g, double count, int64_t period_ns, int64_t burst);

/* Changes the rate at `now`. Debt already run up (requests sent ahead of the sustained
 * rate) is kept in requests, not in time: it is paid off at the new rate. 0 or -1. */
int gcra_set_rate(gcra *g, double count, int64_t period_ns, int64_t burst, int64_t now);

/* Nanoseconds from `now` until one request conforms; 0 when it may go now. */
int64_t gcra_wait(const gcra *g, int64_t now);

/* The same for a request of cost n (n units at once): -1 when n exceeds the burst, so
 * that it could never conform. */
int64_t gcra_wait_n(const gcra *g, int64_t now, int64_t n);

/* Record one request sent at `now` (call only when gcra_wait() is 0).
 * Below 1,000/s spacing is never shorter than T (servers such as nginx measure it
 * in ms); above that a late timer is caught up so the long-run rate stays exact. */
void gcra_commit(gcra *g, int64_t now);

/* Record a request of cost n sent at `now` (gcra_wait_n() was 0). */
void gcra_commit_n(gcra *g, int64_t now, int64_t n);

/* Requests that could go back to back at `now`, and ns until the bucket is full. */
int64_t gcra_remaining(const gcra *g, int64_t now);
int64_t gcra_reset(const gcra *g, int64_t now);
#endif
