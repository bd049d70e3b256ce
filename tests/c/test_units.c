/* Rate and duration strings. */
#include "check.h"
#include "core/units.h"
#include <string.h>

#define S 1000000000LL

static int rate(const char *s, double *c, int64_t *p) {
  return parse_rate(s, c, p) == NULL;
}

int main(void) {
  int64_t ns;
  double c;
  int64_t p;
  CHECK(parse_duration("250ms", &ns) == NULL && ns == 250000000);
  CHECK(parse_duration("30s", &ns) == NULL && ns == 30 * S);
  CHECK(parse_duration("1.5s", &ns) == NULL && ns == 1500000000);
  CHECK(parse_duration("5m", &ns) == NULL && ns == 300 * S);
  CHECK(parse_duration("5min", &ns) == NULL && ns == 300 * S);
  CHECK(parse_duration("1h", &ns) == NULL && ns == 3600 * S);
  CHECK(parse_duration("2d", &ns) == NULL && ns == 2 * 86400 * S);
  CHECK(parse_duration("2", &ns) == NULL && ns == 2 * S);
  CHECK(parse_duration(" 3 s ", &ns) == NULL && ns == 3 * S);
  CHECK(parse_duration("abc", &ns) != NULL);
  CHECK(parse_duration("-1s", &ns) != NULL);
  CHECK(parse_duration("5 parsecs", &ns) != NULL);
  CHECK(parse_duration("1e400", &ns) != NULL);
  CHECK(parse_duration("0x10", &ns) != NULL);
  CHECK(parse_duration("99999999999999999999h", &ns) != NULL);
  CHECK(strcmp(parse_duration("-1s", &ns), "a duration must not be negative") == 0);

  CHECK(rate("10/s", &c, &p) && c == 10 && p == S);
  CHECK(rate("50/min", &c, &p) && c == 50 && p == 60 * S);
  CHECK(rate("5000/h", &c, &p) && c == 5000 && p == 3600 * S);
  CHECK(rate("1000/day", &c, &p) && c == 1000 && p == 86400 * S);
  CHECK(rate("100/30s", &c, &p) && c == 100 && p == 30 * S);
  CHECK(rate("2.5", &c, &p) && c == 2.5 && p == S);
  CHECK(!rate("0/s", &c, &p));
  CHECK(!rate("-5/s", &c, &p));
  CHECK(!rate("abc", &c, &p));
  CHECK(!rate("10/fortnight", &c, &p));
  CHECK(!rate("10/", &c, &p));
  CHECK(!rate("10/0s", &c, &p));
  CHECK(!rate("1e30/s", &c, &p));
  CHECK(strcmp(parse_rate("0/s", &c, &p), "a rate must be positive") == 0);
  CHECK(strcmp(parse_rate("10/fortnight", &c, &p), "unknown period (expected s, min, h, day or a duration)") == 0);
  return CHECK_DONE();
}
