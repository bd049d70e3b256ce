/* fuzz_units: rate and duration strings, runtime/core/units.c parse_rate() and
 * parse_duration() ("50/min", "100/30s", "250ms", "1.5h", bare numbers).
 * Input: the string (a C string: bytes after a NUL are not seen).
 * Invariants: no read past the string (ASan), no UB (UBSan); an error is a non-empty
 * message; a duration is 0..9e18 ns; a rate has a finite count > 0, a period > 0 ns
 * and no more than one request per nanosecond (period / count >= 1). */
#include "core/units.h"
#include "fuzz.h"
#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = fz_str(data, size);
  int64_t ns = -1;
  const char *err = parse_duration(s, &ns);
  if (err && !*err) FZ_FAIL("empty error for duration '%s'", s);
  if (!err && (ns < 0 || ns > 9000000000000000000LL)) FZ_FAIL("duration '%s' -> %lld ns", s, (long long)ns);

  double count = -1;
  int64_t period = -1;
  err = parse_rate(s, &count, &period);
  if (err && !*err) FZ_FAIL("empty error for rate '%s'", s);
  if (!err) {
    if (!(isfinite(count) && count > 0)) FZ_FAIL("rate '%s' -> count %g", s, count);
    if (period <= 0) FZ_FAIL("rate '%s' -> period %lld", s, (long long)period);
    if (!((double)period / count >= 1)) FZ_FAIL("rate '%s' -> %g per %lld ns", s, count, (long long)period);
  }
  free(s);
  return 0;
}
