/* The latency histogram: the 1 % error bound from 1 µs to 1 h, percentiles of known
 * distributions, merge, the cumulative counts behind Prometheus buckets. */
#include "check.h"
#include "core/hist.h"
#include <stdint.h>

/* A value's read-back (the midpoint of its bucket) against the value itself. */
static double rel_error(int64_t ns) {
  int64_t lo, w;
  hist_bucket_range(hist_index(ns), &lo, &w);
  CHECK(ns >= lo && ns < lo + w);
  return fabs((double)(lo + w / 2) - (double)ns) / (double)ns;
}

int main(void) {
  static hist h, a, b; /* 8-9 KB each: not on the stack */
  CHECK(sizeof(hist) < 9 * 1024);

  /* every value from 1 µs to 1 h, on a geometric walk of about 200,000 points, lands
   * in a bucket whose midpoint is within 1 % of it */
  double worst = 0;
  int n = 0;
  for (double v = 1000; v <= 3600e9; v *= 1.0001, n++) {
    double e = rel_error((int64_t)v);
    if (e > worst) worst = e;
  }
  CHECK(n > 200000);
  CHECK(worst <= 0.01);
  CHECK(worst > 0.001); /* the walk did reach the coarse buckets */
  /* the exact ends of the range, and values past it */
  CHECK(rel_error(1000) <= 0.01 && rel_error(3600000000000LL) <= 0.01);
  CHECK(hist_index(-5) == 0 && hist_index(INT64_MAX) == HIST_BUCKETS - 1);

  /* percentiles of 1..10000 µs (uniform): p50 ~ 5 ms, p99 ~ 9.9 ms, within 1 % */
  hist_init(&h);
  CHECK(hist_percentile(&h, 50) == 0 && h.count == 0);
  for (int i = 1; i <= 10000; i++) hist_record(&h, (int64_t)i * 1000);
  CHECK(h.count == 10000 && h.min_ns == 1000 && h.max_ns == 10000000);
  CHECK_NEAR(hist_percentile(&h, 50), 5000000, 50000);
  CHECK_NEAR(hist_percentile(&h, 90), 9000000, 90000);
  CHECK_NEAR(hist_percentile(&h, 99), 9900000, 99000);
  CHECK_NEAR(hist_percentile(&h, 99.9), 9990000, 99900);
  CHECK(hist_percentile(&h, 100) == 10000000);
  CHECK_NEAR(hist_percentile(&h, 0.001), 1000, 10);
  CHECK_NEAR(h.sum_ns / h.count, 5000500, 1);

  /* one value: every percentile is that value, exactly (clamped to min = max) */
  hist_init(&a);
  hist_record(&a, 20000000);
  CHECK(hist_percentile(&a, 50) == 20000000 && hist_percentile(&a, 99.9) == 20000000);

  /* merge: two halves give the percentiles of the whole */
  hist_init(&a);
  hist_init(&b);
  for (int i = 1; i <= 10000; i++) hist_record(i % 2 ? &a : &b, (int64_t)i * 1000);
  hist_merge(&a, &b);
  CHECK(a.count == 10000 && a.min_ns == 1000 && a.max_ns == 10000000);
  for (double q = 1; q <= 100; q += 0.5) CHECK(hist_percentile(&a, q) == hist_percentile(&h, q));
  hist_init(&b);
  hist_merge(&a, &b); /* an empty one changes nothing */
  CHECK(a.count == 10000 && a.min_ns == 1000);

  /* cumulative counts: 1..10000 µs, at or below 1 ms: 1000 (within a bucket's width) */
  CHECK_NEAR(hist_count_le(&h, 1000000), 1000, 10);
  CHECK(hist_count_le(&h, 10) == 0 && hist_count_le(&h, INT64_MAX) == 10000);

  /* a long tail: 990 fast (1 ms) and 10 slow (2 s) answers; p99 is fast, p99.9 slow */
  hist_init(&h);
  for (int i = 0; i < 990; i++) hist_record(&h, 1000000);
  for (int i = 0; i < 10; i++) hist_record(&h, 2000000000);
  CHECK(rel_error(1000000) <= 0.01);
  CHECK_NEAR(hist_percentile(&h, 99), 1000000, 10000);
  CHECK_NEAR(hist_percentile(&h, 99.9), 2000000000, 20000000);
  return CHECK_DONE();
}
