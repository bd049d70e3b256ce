/* fuzz_csv: the incremental CSV / line reader, runtime/core/csv.c.
 * Input: byte 0 picks the mode and the record limit, byte 1 the chunk size; the rest is
 * the text. It is read twice, whole and in chunks.
 * Invariants: no read past the input (ASan), no UB (UBSan); both readings give the same
 * records, errors and lines; lines never go back; a record's fields fit its data and the
 * limit; an error has a reason; the reader always reaches the end. */
#include "core/csv.h"
#include "fuzz.h"

typedef struct digest {
  uint64_t h;
  size_t records, bad;
} digest;

static void mix(digest *d, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) d->h = (d->h ^ b[i]) * 1099511628211ULL;
}

static digest read_all(enum csv_mode mode, size_t max, const uint8_t *in, size_t n, size_t chunk) {
  digest d = {14695981039346656037ULL, 0, 0};
  csv_reader *r = csv_new(mode, max);
  if (!r) abort();
  size_t fed = 0;
  long last = 1;
  csv_record rec;
  for (size_t steps = 0;; steps++) {
    if (steps > 4 * n + 16) FZ_FAIL("no progress after %zu steps", steps);
    int rc = csv_next(r, &rec);
    if (rc < 0) abort();
    if (rc == CSV_END) break;
    if (rc == CSV_MORE) {
      size_t k = n - fed < chunk ? n - fed : chunk;
      if (csv_feed(r, (const char *)in + fed, k) != 0) abort();
      fed += k;
      if (fed == n) csv_eof(r);
      continue;
    }
    FZ_CHECK(rec.line >= last);
    last = rec.line;
    mix(&d, &rec.line, sizeof rec.line);
    if (rc == CSV_BAD) {
      FZ_CHECK(rec.error && *rec.error);
      mix(&d, rec.error, strlen(rec.error));
      d.bad++;
      continue;
    }
    FZ_CHECK(rec.nfields >= 1);
    size_t start = 0;
    for (size_t i = 0; i < rec.nfields; i++) {
      FZ_CHECK(rec.ends[i] >= start && rec.ends[i] <= max);
      mix(&d, rec.data + start, rec.ends[i] - start);
      mix(&d, "|", 1);
      start = rec.ends[i];
    }
    d.records++;
  }
  FZ_CHECK(csv_line(r) >= last);
  csv_free(r);
  return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  enum csv_mode mode = data[0] & 1 ? CSV_LINES : CSV_FIELDS;
  size_t max = data[0] & 2 ? 1 + (data[0] >> 2) : 1 << 20;
  size_t chunk = 1 + data[1] % 17;
  uint8_t *text = malloc(size - 2 + 1); /* exactly sized: ASan sees a read past the end */
  if (!text) abort();
  memcpy(text, data + 2, size - 2);
  digest whole = read_all(mode, max, text, size - 2, size);
  digest parts = read_all(mode, max, text, size - 2, chunk);
  if (whole.h != parts.h || whole.records != parts.records || whole.bad != parts.bad)
    FZ_FAIL("whole: %zu records, %zu bad; in chunks of %zu: %zu records, %zu bad", whole.records, whole.bad, chunk,
            parts.records, parts.bad);
  free(text);
  return 0;
}
