/* fuzz_gcra: one GCRA rule (runtime/core/gcra.c) driven the way runtime/mod/limiter.c drives it:
 * gcra_init with a fuzzed count/period/burst, then a fuzzed program of clock steps,
 * acquire (commit when gcra_wait is 0), sleep-until-wait-then-acquire (the limiter's
 * timer, possibly late) and gcra_set_rate.
 * Input: byte-coded (see the switch below); counts may be small integers, up to 1e9,
 * fractions or raw doubles (NaN, inf, negatives); periods unit multiples or raw int64;
 * bursts small, up to 1e9 or raw int64.
 * Time model: `now` is CLOCK_MONOTONIC in ns (loop_now_ns): it never goes back and stays
 * in 0..2^62 (146 years of uptime).
 * Invariants: no signed overflow / out-of-range float->int conversion (UBSan aborts);
 * a refused rule is left untouched; gcra_wait >= 0; gcra_remaining in 0..burst and
 * >= 1 exactly when gcra_wait is 0; gcra_reset >= gcra_wait; waiting gcra_wait ns makes
 * a request conform, one ns less does not; at one instant at most `burst` grants; since
 * the first grant (or the last rate change) at most burst + 1 + elapsed / interval. */
#include "core/gcra.h"
#include "fuzz.h"

#define TMAX ((int64_t)1 << 62)

static double fz_count(fz_in *in) {
  switch (fz_u8(in) % 4) {
  case 0: return (double)(fz_u64(in, 2) + 1);
  case 1: return (double)(fz_u64(in, 4) % 1000000000 + 1);
  case 2: return 1.0 / (double)(fz_u64(in, 2) + 1);
  default: return fz_double(in);
  }
}

static int64_t fz_period(fz_in *in) {
  static const int64_t units[] = {1, 1000, 1000000, 1000000000, 60000000000, 3600000000000, 86400000000000};
  switch (fz_u8(in) % 3) {
  case 0: {
    int64_t u = units[fz_u8(in) % 7];
    return u * (int64_t)(fz_u64(in, 2) % 1000 + 1);
  }
  case 1: return (int64_t)fz_u64(in, 6);
  default: return (int64_t)fz_u64(in, 8);
  }
}

static int64_t fz_burst(fz_in *in) {
  switch (fz_u8(in) % 4) {
  case 0: return (int64_t)fz_u8(in) + 1;
  case 1: return (int64_t)(fz_u64(in, 4) % 1000000000 + 1);
  case 2: return 1000000000;
  default: return (int64_t)fz_u64(in, 8);
  }
}

typedef struct track {
  int64_t first;   /* time of the first grant since init / set_rate, -1 before */
  int64_t grants;  /* grants since then */
  int64_t instant; /* time of the last grant and how many happened at that time */
  int64_t at_instant;
} track;

static void check(const gcra *g, const track *tr, int64_t now) {
  int64_t w = gcra_wait(g, now), r = gcra_remaining(g, now), rs = gcra_reset(g, now);
  if (w < 0) FZ_FAIL("gcra_wait %lld < 0", (long long)w);
  if (r < 0 || r > g->burst) FZ_FAIL("gcra_remaining %lld outside 0..%lld", (long long)r, (long long)g->burst);
  if ((w == 0) != (r >= 1)) FZ_FAIL("wait %lld but remaining %lld", (long long)w, (long long)r);
  if (rs < w) FZ_FAIL("gcra_reset %lld < gcra_wait %lld", (long long)rs, (long long)w);
  if (w > 0 && w < TMAX - now) {
    if (gcra_wait(g, now + w) != 0) FZ_FAIL("still waiting after gcra_wait %lld ns", (long long)w);
    if (gcra_wait(g, now + w - 1) == 0) FZ_FAIL("conforms before gcra_wait %lld ns", (long long)w);
  }
  if (tr->at_instant > g->burst)
    FZ_FAIL("%lld grants at one instant, burst %lld", (long long)tr->at_instant, (long long)g->burst);
  if (tr->first >= 0 && tr->grants > g->burst + 1 + (now - tr->first) / g->interval)
    FZ_FAIL("%lld grants in %lld ns at one per %lld ns, burst %lld", (long long)tr->grants,
            (long long)(now - tr->first), (long long)g->interval, (long long)g->burst);
}

static void grant(gcra *g, track *tr, int64_t now) {
  gcra_commit(g, now);
  if (tr->first < 0) tr->first = now;
  tr->grants++;
  if (tr->instant != now) tr->instant = now, tr->at_instant = 0;
  tr->at_instant++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  gcra g, before;
  memset(&g, 0x5a, sizeof g);
  before = g;
  double count = fz_count(&in);
  int64_t period = fz_period(&in), burst = fz_burst(&in);
  if (gcra_init(&g, count, period, burst) != 0) {
    if (memcmp(&g, &before, sizeof g)) FZ_FAIL("refused rule was modified");
    return 0;
  }
  if (g.interval < 1 || g.burst != burst)
    FZ_FAIL("init: interval %lld burst %lld", (long long)g.interval, (long long)g.burst);
  int64_t now = (int64_t)(fz_u64(&in, 8) % (uint64_t)TMAX);
  if (gcra_wait(&g, now) != 0 || gcra_remaining(&g, now) != burst) FZ_FAIL("a new rule is not full");
  track tr = {-1, 0, -1, 0};
  check(&g, &tr, now);
  while (in.n) {
    int64_t step = 0;
    switch (fz_u8(&in) % 6) {
    case 0: step = (int64_t)fz_u64(&in, 2); break; /* up to 65 us */
    case 1: step = (int64_t)fz_u64(&in, 5); break; /* up to 18 min */
    case 2: step = (int64_t)(fz_u64(&in, 8) % (uint64_t)TMAX); break;
    case 3: /* acquire / try_acquire */
      if (gcra_wait(&g, now) == 0) grant(&g, &tr, now);
      break;
    case 4: { /* the limiter's timer: sleep gcra_wait (maybe late), then grant */
      int64_t w = gcra_wait(&g, now), late = (int64_t)fz_u64(&in, 2) * 16;
      if (w >= TMAX - now - late) return 0;
      now += w + late;
      if (gcra_wait(&g, now) != 0) FZ_FAIL("not conforming after the wait");
      grant(&g, &tr, now);
      break;
    }
    default: { /* set_rate */
      double c = fz_count(&in);
      int64_t p = fz_period(&in), b = fz_burst(&in);
      before = g;
      if (gcra_set_rate(&g, c, p, b, now) != 0) {
        if (memcmp(&g, &before, sizeof g)) FZ_FAIL("refused set_rate modified the rule");
      } else {
        if (g.interval < 1 || g.burst != b)
          FZ_FAIL("set_rate: interval %lld burst %lld", (long long)g.interval, (long long)g.burst);
        tr = (track){-1, 0, -1, 0};
      }
    }
    }
    if (step >= TMAX - now) return 0; /* the clock model ends here */
    now += step;
    check(&g, &tr, now);
  }
  return 0;
}
