/* hist.c: the log-linear histogram of hist.h. */
#include "core/hist.h"
#include <string.h>

void hist_init(hist *h) {
  memset(h, 0, sizeof *h);
}

int hist_index(int64_t ns) {
  if (ns < 0) ns = 0;
  uint64_t u = (uint64_t)ns >> HIST_UNIT_SHIFT;
  if (u < HIST_LINEAR) return (int)u;
  int msb = 63 - __builtin_clzll(u); /* >= 7 */
  int octave = msb - 6;              /* 1 for [128, 256) units */
  if (octave > HIST_OCTAVES) return HIST_BUCKETS - 1;
  int sub = (int)(u >> octave) - HIST_HALF; /* 0..63 */
  return HIST_LINEAR + (octave - 1) * HIST_HALF + sub;
}

void hist_bucket_range(int i, int64_t *lo_ns, int64_t *width_ns) {
  if (i < HIST_LINEAR) {
    *lo_ns = (int64_t)i << HIST_UNIT_SHIFT;
    *width_ns = 1 << HIST_UNIT_SHIFT;
    return;
  }
  int octave = (i - HIST_LINEAR) / HIST_HALF + 1;
  int sub = (i - HIST_LINEAR) % HIST_HALF;
  *lo_ns = ((int64_t)(HIST_HALF + sub) << octave) << HIST_UNIT_SHIFT;
  *width_ns = ((int64_t)1 << octave) << HIST_UNIT_SHIFT;
}

void hist_record(hist *h, int64_t ns) {
  if (h->count == 0 || ns < h->min_ns) h->min_ns = ns;
  if (h->count == 0 || ns > h->max_ns) h->max_ns = ns;
  h->count++;
  h->sum_ns += (double)ns;
  uint32_t *b = &h->buckets[hist_index(ns)];
  if (*b < UINT32_MAX) (*b)++; /* 4e9 samples in one bucket: saturate rather than wrap */
}

void hist_merge(hist *into, const hist *from) {
  if (from->count == 0) return;
  if (into->count == 0 || from->min_ns < into->min_ns) into->min_ns = from->min_ns;
  if (into->count == 0 || from->max_ns > into->max_ns) into->max_ns = from->max_ns;
  into->count += from->count;
  into->sum_ns += from->sum_ns;
  for (int i = 0; i < HIST_BUCKETS; i++) {
    uint64_t s = (uint64_t)into->buckets[i] + from->buckets[i];
    into->buckets[i] = s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
  }
}

static int64_t midpoint(int i) {
  int64_t lo, w;
  hist_bucket_range(i, &lo, &w);
  return lo + w / 2;
}

int64_t hist_percentile(const hist *h, double q) {
  if (h->count == 0) return 0;
  if (q >= 100) return h->max_ns;
  if (q < 0) q = 0;
  uint64_t rank = (uint64_t)(q / 100.0 * (double)h->count + 0.999999);
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen >= rank) {
      int64_t v = midpoint(i);
      if (v < h->min_ns) v = h->min_ns;
      if (v > h->max_ns) v = h->max_ns;
      return v;
    }
  }
  return h->max_ns;
}

uint64_t hist_count_le(const hist *h, int64_t ns) {
  uint64_t n = 0;
  for (int i = 0; i < HIST_BUCKETS && midpoint(i) <= ns; i++) n += h->buckets[i];
  return n;
}
