/* fuzz_retry_after: Retry-After values, runtime/core/quota.c parse_retry_after() and
 * parse_http_date() (IMF-fixdate, RFC 850, asctime).
 * Input: the header value (a C string: bytes after a NUL are not seen).
 * Invariants: no read past the string (ASan), no UB (UBSan); a parsed wait is finite
 * and >= 0; a parsed date lies within the accepted years 1900..9999 (a week of slack
 * for the normalisation of e.g. "31 Feb") and, printed back as an IMF-fixdate, parses
 * to the same instant; a date Retry-After waits exactly max(0, date - now). */
#include "core/quota.h"
#include "fuzz.h"
#include <math.h>
#include <time.h>

#define YEAR_1900  (-2208988800LL)
#define YEAR_10000 253402300800LL
#define WEEK       (7 * 86400LL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *v = fz_str(data, size);
  int64_t t = 0;
  int is_date = parse_http_date(v, &t) == 0;
  if (is_date) {
    if (t < YEAR_1900 - WEEK || t > YEAR_10000 + WEEK)
      FZ_FAIL("'%s' parsed to %lld: outside 1900..9999", v, (long long)t);
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) && tm.tm_year + 1900 <= 9999) {
      char back[64];
      int64_t t2 = 0;
      strftime(back, sizeof back, "%a, %d %b %Y %H:%M:%S GMT", &tm);
      if (parse_http_date(back, &t2) != 0 || t2 != t)
        FZ_FAIL("'%s' -> %lld -> '%s' does not parse back", v, (long long)t, back);
    }
  }
  static const double nows[] = {0, 784111777, 1700000000.5, 4102444800.0};
  for (size_t i = 0; i < sizeof nows / sizeof *nows; i++) {
    double secs = -1;
    int rc = parse_retry_after(v, nows[i], &secs);
    if (rc != 0 && rc != -1) FZ_FAIL("parse_retry_after returned %d", rc);
    if (rc == 0 && !(isfinite(secs) && secs >= 0)) FZ_FAIL("'%s' -> wait %g", v, secs);
    if (is_date) {
      double want = (double)t - nows[i];
      if (rc != 0 || secs != (want > 0 ? want : 0)) FZ_FAIL("date '%s' (now %.1f): wait %g", v, nows[i], secs);
    }
  }
  free(v);
  return 0;
}
