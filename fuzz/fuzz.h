/* fuzz.h: helpers shared by the libFuzzer targets in fuzz/: reading fuzzed bytes as
 * numbers, an exactly sized NUL-terminated copy of an input (so AddressSanitizer sees
 * any read past the terminator), extra coverage counters for code libFuzzer cannot
 * instrument (the system Lua and http_parser), and a loud abort for broken invariants. */
#ifndef PACER_FUZZ_H
#define PACER_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Consumes the input from the front; reads past the end give zeros. */
typedef struct fz_in {
  const uint8_t *p;
  size_t n;
} fz_in;

static inline uint64_t fz_u64(fz_in *in, size_t bytes) {
  uint64_t v = 0;
  size_t k = bytes < in->n ? bytes : in->n;
  for (size_t i = 0; i < k; i++) v |= (uint64_t)in->p[i] << (8 * i);
  in->p += k;
  in->n -= k;
  return v;
}
static inline uint8_t fz_u8(fz_in *in) {
  return (uint8_t)fz_u64(in, 1);
}
static inline double fz_double(fz_in *in) {
  uint64_t bits = fz_u64(in, 8);
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

/* n bytes + NUL in a buffer of exactly n + 1 bytes; the caller frees it. */
static inline char *fz_str(const uint8_t *p, size_t n) {
  char *s = malloc(n + 1);
  if (!s) abort();
  if (n) memcpy(s, p, n);
  s[n] = 0;
  return s;
}

/* libFuzzer treats every byte of this section as coverage (Linux). */
#define FZ_COUNTERS(name, n) __attribute__((section("__libfuzzer_extra_counters"), used)) static uint8_t name[n]

#define FZ_FAIL(...)                                                                                                   \
  do {                                                                                                                 \
    fprintf(stderr, "\n*** invariant broken at %s:%d: ", __FILE__, __LINE__);                                          \
    fprintf(stderr, __VA_ARGS__);                                                                                      \
    fprintf(stderr, "\n");                                                                                             \
    abort();                                                                                                           \
  } while (0)
#define FZ_CHECK(cond)                                                                                                 \
  do {                                                                                                                 \
    if (!(cond)) FZ_FAIL("%s", #cond);                                                                                 \
  } while (0)
#endif
