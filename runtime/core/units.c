/* units.c: rate and duration strings (see units.h). */
#include "core/units.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NS     1000000000.0
#define MAX_NS (PACER_MAX_SECONDS * NS)

static const struct {
  const char *name;
  double ns;
} unit_table[] = {{"ns", 1},
                  {"us", 1e3},
                  {"ms", 1e6},
                  {"s", NS},
                  {"sec", NS},
                  {"secs", NS},
                  {"second", NS},
                  {"seconds", NS},
                  {"m", 60 * NS},
                  {"min", 60 * NS},
                  {"mins", 60 * NS},
                  {"minute", 60 * NS},
                  {"minutes", 60 * NS},
                  {"h", 3600 * NS},
                  {"hr", 3600 * NS},
                  {"hrs", 3600 * NS},
                  {"hour", 3600 * NS},
                  {"hours", 3600 * NS},
                  {"d", 86400 * NS},
                  {"day", 86400 * NS},
                  {"days", 86400 * NS},
                  {NULL, 0}};

const char *check_seconds(double s) {
  if (!(s >= 0) || s > PACER_MAX_SECONDS) return "must be between 0 and 1e9 seconds";
  return NULL;
}

/* Reads a non-negative decimal number at *p; NULL on failure. */
static const char *read_number(const char **p, double *out) {
  const char *s = *p;
  if (!isdigit((unsigned char)*s) && *s != '.') return "a number";
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno == ERANGE || !isfinite(v)) return "a number";
  /* strtod accepts hex and exponents; we only want plain decimals */
  for (const char *c = s; c < end; c++)
    if (!isdigit((unsigned char)*c) && *c != '.') return "a plain decimal number";
  *out = v;
  *p = end;
  return NULL;
}

static int unit_ns(const char *u, double *ns) {
  for (int i = 0; unit_table[i].name; i++)
    if (strcmp(u, unit_table[i].name) == 0) {
      *ns = unit_table[i].ns;
      return 0;
    }
  return -1;
}

const char *parse_duration(const char *s, int64_t *ns) {
  double v, mult = NS;
  const char *p = s;
  while (isspace((unsigned char)*p)) p++;
  if (*p == '-') return "a duration must not be negative";
  if (read_number(&p, &v)) return "expected a duration like 250ms, 30s, 5m, 1h or a number of seconds";
  while (isspace((unsigned char)*p)) p++;
  if (*p) {
    const char *u = p;
    while (*p && !isspace((unsigned char)*p)) p++;
    char unit[16];
    size_t n = (size_t)(p - u);
    while (isspace((unsigned char)*p)) p++;
    if (*p || n >= sizeof unit) return "unknown unit (expected ms, s, m, h or d)";
    memcpy(unit, u, n);
    unit[n] = 0;
    if (unit_ns(unit, &mult)) return "unknown unit (expected ms, s, m, h or d)";
  }
  double total = v * mult;
  if (total > MAX_NS) return "duration too large";
  *ns = (int64_t)llround(total);
  return NULL;
}

const char *parse_rate(const char *s, double *count, int64_t *period_ns) {
  const char *p = s;
  double n;
  while (isspace((unsigned char)*p)) p++;
  if (*p == '-') return "a rate must be positive";
  if (read_number(&p, &n)) return "expected N/s, N/min, N/h, N/day, N/<duration> or a number";
  while (isspace((unsigned char)*p)) p++;
  int64_t period = (int64_t)NS;
  if (*p == '/') {
    p++;
    while (isspace((unsigned char)*p)) p++;
    /* "N/min" means one minute; "N/30s" a duration with its own number */
    if (isdigit((unsigned char)*p) || *p == '.') {
      if (parse_duration(p, &period)) return "expected N/s, N/min, N/h, N/day, N/<duration> or a number";
    } else {
      double mult;
      char unit[16];
      size_t len = strlen(p);
      while (len && isspace((unsigned char)p[len - 1])) len--;
      if (len == 0) return "expected N/s, N/min, N/h, N/day, N/<duration> or a number";
      if (len >= sizeof unit) return "unknown period (expected s, min, h, day or a duration)";
      memcpy(unit, p, len);
      unit[len] = 0;
      if (unit_ns(unit, &mult)) return "unknown period (expected s, min, h, day or a duration)";
      period = (int64_t)mult;
    }
  } else if (*p) {
    return "expected N/s, N/min, N/h, N/day, N/<duration> or a number";
  }
  if (!(n > 0)) return "a rate must be positive";
  if (period <= 0) return "a rate's period must be positive";
  if ((double)period / n < 1) return "rate too large";
  *count = n;
  *period_ns = period;
  return NULL;
}
