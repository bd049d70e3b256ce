/* fuzz_quota: rate-limit header values, runtime/core/quota.c parse_quota_int(),
 * parse_quota_reset() and parse_sf_list() (IETF RateLimit / RateLimit-Policy).
 * Input: byte 0 picks how many items parse_sf_list may fill (0..16, the array is
 * allocated at exactly that size so ASan sees an overrun); the rest is the value.
 * Invariants: no read past the string, no write past the items (ASan), no UB; a quota
 * int is integral and in 0..9e15; a reset is finite and >= 0; parse_sf_list returns -1
 * or the item count whatever max is (the same with room for all), sets a reason when
 * it returns -1; every name and parameter key is NUL-terminated inside its field,
 * has_value is 0/1, nparams 0..SF_MAX_PARAMS; pk and qu spans lie inside the value and
 * sf_decode of them succeeds within len bytes. */
#include "core/quota.h"
#include "fuzz.h"
#include <math.h>

static void check_text(const char *v, const sf_text *t, int i, const char *what) {
  if (t->kind == SF_TEXT_NONE) return;
  if (t->kind < SF_TEXT_NONE || t->kind > SF_TEXT_TOKEN) FZ_FAIL("item %d %s kind %d", i, what, t->kind);
  size_t vlen = strlen(v);
  if (t->off > vlen || t->len > vlen - t->off)
    FZ_FAIL("item %d %s span %zu+%zu outside '%s'", i, what, t->off, t->len, v);
  char *out = malloc(t->len + 1);
  if (!out) abort();
  long n = sf_decode(v, t, out);
  if (n < 0 || (size_t)n > t->len) FZ_FAIL("item %d %s decodes to %ld (span %zu)", i, what, n, t->len);
  free(out);
}

static void check_items(const char *v, const sf_item *it, int n, int max, const sf_error *err) {
  if (n < -1) FZ_FAIL("parse_sf_list('%s', max %d) returned %d", v, max, n);
  if (n == -1 && (!err->why || err->at > strlen(v))) FZ_FAIL("parse_sf_list('%s') failed without a reason", v);
  if (n > max) n = max;
  for (int i = 0; i < n; i++) {
    if (!memchr(it[i].name, 0, sizeof it[i].name)) FZ_FAIL("item %d name not terminated", i);
    if (it[i].has_value != 0 && it[i].has_value != 1) FZ_FAIL("item %d has_value %d", i, it[i].has_value);
    if (it[i].nparams < 0 || it[i].nparams > SF_MAX_PARAMS) FZ_FAIL("item %d nparams %d", i, it[i].nparams);
    for (int k = 0; k < it[i].nparams; k++)
      if (!memchr(it[i].params[k].key, 0, sizeof it[i].params[k].key))
        FZ_FAIL("item %d param %d key not terminated", i, k);
    check_text(v, &it[i].pk, i, "pk");
    check_text(v, &it[i].qu, i, "qu");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int max = data[0] % 17;
  char *v = fz_str(data + 1, size - 1);

  int64_t q = -1;
  if (parse_quota_int(v, &q) == 0 && (q < 0 || q > 9000000000000000LL))
    FZ_FAIL("quota int '%s' -> %lld", v, (long long)q);

  static const double nows[] = {0, 1700000000.25, 4102444800.0};
  for (size_t i = 0; i < sizeof nows / sizeof *nows; i++) {
    double secs = -1;
    if (parse_quota_reset(v, nows[i], &secs) == 0 && !(isfinite(secs) && secs >= 0))
      FZ_FAIL("reset '%s' (now %.2f) -> %g", v, nows[i], secs);
  }

  sf_item *items = malloc(max ? (size_t)max * sizeof *items : 1);
  if (!items) abort();
  sf_error err = {NULL, 0};
  int n = parse_sf_list(v, items, max, &err);
  check_items(v, items, n, max, &err);
  free(items);
  if (n > 0) { /* with room for every item: the same count */
    sf_item *all = malloc((size_t)n * sizeof *all);
    if (!all) abort();
    int again = parse_sf_list(v, all, n, &err);
    if (again != n) FZ_FAIL("parse_sf_list('%s') counted %d, then read %d", v, n, again);
    check_items(v, all, again, n, &err);
    free(all);
  }
  free(v);
  return 0;
}
