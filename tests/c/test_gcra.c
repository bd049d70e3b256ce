/* GCRA arithmetic: spacing, burst, exactness at high rates, rate changes. */
#include "check.h"
#include "core/gcra.h"
#include <stdint.h>

#define S 1000000000LL

int main(void) {
  gcra g;
  /* 10/s, burst 1: first at once, then every 100 ms */
  CHECK(gcra_init(&g, 10, S, 1) == 0);
  CHECK(gcra_wait(&g, 0) == 0);
  gcra_commit(&g, 0);
  CHECK(gcra_wait(&g, 0) == 100000000);
  CHECK(gcra_wait(&g, 50000000) == 50000000);
  CHECK(gcra_wait(&g, 100000000) == 0);
  gcra_commit(&g, 100000000);
  CHECK(gcra_wait(&g, 100000000) == 100000000);

  /* below 1000/s a late commit never shortens the next gap */
  CHECK(gcra_init(&g, 100, S, 1) == 0);
  gcra_commit(&g, 0);
  gcra_commit(&g, 10000000 + 300000); /* 0.3 ms late */
  CHECK(gcra_wait(&g, 10300000) == 10000000);

  /* burst 5: five back to back, then spaced */
  CHECK(gcra_init(&g, 5, S, 5) == 0);
  for (int i = 0; i < 5; i++) {
    CHECK(gcra_wait(&g, 0) == 0);
    gcra_commit(&g, 0);
  }
  CHECK(gcra_wait(&g, 0) == 200000000);
  CHECK(gcra_remaining(&g, 0) == 0);
  CHECK(gcra_remaining(&g, S) == 5);
  CHECK(gcra_reset(&g, 0) == S);

  /* 5000/s exact: 5000 grants with a timer 50 us late each time still end at ~1 s */
  CHECK(gcra_init(&g, 5000, S, 1) == 0);
  int64_t now = 0;
  for (int i = 0; i < 5000; i++) {
    int64_t w = gcra_wait(&g, now);
    now += w > 0 ? w + 50000 : 0;
    CHECK(gcra_wait(&g, now) == 0);
    gcra_commit(&g, now);
  }
  CHECK(now < S + 1000000 && now > S - 1000000);

  /* 3/s rounds the interval up: never faster than declared */
  CHECK(gcra_init(&g, 3, S, 1) == 0);
  CHECK(g.interval == 333333334);

  /* set_rate keeps the debt in requests: one request owed at 10/s (100 ms) becomes one
   * owed at 1/s (1 s), and at 100/min a minute's debt shrinks to 10 ms at 100/s */
  CHECK(gcra_init(&g, 10, S, 1) == 0);
  gcra_commit(&g, 0);
  CHECK(gcra_set_rate(&g, 1, S, 1, 0) == 0);
  CHECK(gcra_wait(&g, 0) == S);
  CHECK(gcra_init(&g, 1, 60 * S, 1) == 0);
  gcra_commit(&g, 0);
  CHECK(gcra_set_rate(&g, 100, S, 1, 0) == 0);
  CHECK(gcra_wait(&g, 0) == 10000000);
  /* half the interval already served is kept */
  CHECK(gcra_init(&g, 10, S, 1) == 0);
  gcra_commit(&g, 0);
  CHECK(gcra_set_rate(&g, 20, S, 1, 50000000) == 0);
  CHECK(gcra_wait(&g, 50000000) == 25000000);

  /* bad rules are refused */
  CHECK(gcra_init(&g, 0, S, 1) == -1);
  CHECK(gcra_init(&g, -1, S, 1) == -1);
  CHECK(gcra_init(&g, 1, 0, 1) == -1);
  CHECK(gcra_init(&g, 1, S, 0) == -1);
  CHECK(gcra_init(&g, 1e12, S, 1) == -1);

  /* (burst - 1) * interval beyond ~31 years is refused: 1/day with a burst of 200000
   * overflowed int64 (found by fuzz/fuzz_gcra) and waited 37 years after one request */
  CHECK(gcra_init(&g, 1, 86400 * S, 200000) == -1);
  CHECK(gcra_set_rate(&g, 1, 86400 * S, 200000, 0) == -1);
  CHECK(gcra_init(&g, 1, 86400 * S, 10000) == 0); /* 27 years ahead: still a rule */
  CHECK(gcra_remaining(&g, 0) == 10000);
  /* a debt rescaled past int64 (2000 owed at 1000/s, then 1 per 90 days) is capped at
   * ~31 years instead of wrapping into a full bucket */
  CHECK(gcra_init(&g, 1000, S, 2000) == 0);
  for (int i = 0; i < 2000; i++) gcra_commit(&g, 0);
  CHECK(gcra_set_rate(&g, 1, 90 * 86400 * S, 1, 0) == 0);
  CHECK(gcra_wait(&g, 0) >= 900000000LL * S);
  CHECK(gcra_remaining(&g, 0) == 0);
  /* cost n: 10/s with a burst of 5; a full bucket pays 3 at once, then 3 more must wait
   * for the one unit left to be joined by two refills (200 ms); above the burst: -1 */
  CHECK(gcra_init(&g, 10, S, 5) == 0);
  CHECK(gcra_wait_n(&g, 0, 3) == 0);
  gcra_commit_n(&g, 0, 3);
  CHECK(gcra_remaining(&g, 0) == 2);
  CHECK(gcra_wait_n(&g, 0, 2) == 0);
  CHECK(gcra_wait_n(&g, 0, 3) == 100000000);
  CHECK(gcra_wait_n(&g, 0, 5) == 300000000);
  CHECK(gcra_wait_n(&g, 0, 6) == -1);
  CHECK(gcra_wait_n(&g, 0, 1) == gcra_wait(&g, 0));
  gcra_commit_n(&g, 0, 2);
  CHECK(gcra_remaining(&g, 0) == 0);
  CHECK(gcra_wait_n(&g, 0, 1) == 100000000);
  return CHECK_DONE();
}
