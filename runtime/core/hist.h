/* hist.h: a log-linear latency histogram (HdrHistogram's layout) in fixed memory.
 * Values are nanoseconds, counted in 8 ns units: below 128 units every unit has its
 * bucket, above that every octave is cut into 64 equal buckets, so a value read back
 * (a bucket's midpoint) is within 1/128 of what was recorded from 1 µs up to 73 min.
 * Pure C, no allocation: a hist is a plain struct that can be copied and merged. */
#ifndef PACER_HIST_H
#define PACER_HIST_H
#include <stdint.h>

#define HIST_UNIT_SHIFT 3   /* 8 ns units: 1 µs is 125 units, within the exact range */
#define HIST_LINEAR     128 /* units 0..127: one bucket each */
#define HIST_HALF       64  /* buckets per octave above that */
#define HIST_OCTAVES    32  /* 128 units << 32: 2^39 units, about 73 minutes */
#define HIST_BUCKETS    (HIST_LINEAR + HIST_OCTAVES * HIST_HALF)

typedef struct hist {
  uint64_t count;
  double sum_ns;          /* of the values as recorded (before clamping) */
  int64_t min_ns, max_ns; /* exact; 0 when empty */
  uint32_t buckets[HIST_BUCKETS];
} hist;

/* An empty histogram. */
void hist_init(hist *h);

/* Counts one value (negative values count as 0, values past the range in the last
 * bucket; min, max and sum keep them as they were). */
void hist_record(hist *h, int64_t ns);

/* Adds every count of `from` into `into`. */
void hist_merge(hist *into, const hist *from);

/* The value at percentile q (0..100]: the midpoint of the bucket holding the sample of
 * rank ceil(q/100 * count), kept within [min, max]; 0 when empty. */
int64_t hist_percentile(const hist *h, double q);

/* Samples whose bucket lies at or below `ns` (a bucket's midpoint decides): the
 * cumulative count for a Prometheus bucket `le`. */
uint64_t hist_count_le(const hist *h, int64_t ns);

/* The bucket a value goes in, and a bucket's [lo, lo + width) range in nanoseconds. */
int hist_index(int64_t ns);
void hist_bucket_range(int i, int64_t *lo_ns, int64_t *width_ns);
#endif
