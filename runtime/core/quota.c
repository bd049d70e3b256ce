/* quota.c: rate-limit header parsers (see quota.h). */
#include "core/quota.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int month_index(const char *m) {
  static const char *names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; i++)
    if (strcmp(m, names[i]) == 0) return i;
  return -1;
}

static int make_time(int year, const char *mon, int day, int h, int mi, int s, int64_t *out) {
  int m = month_index(mon);
  if (m < 0 || day < 1 || day > 31 || h > 23 || mi > 59 || s > 60 || h < 0 || mi < 0 || s < 0) return -1;
  if (year < 1900 || year > 9999) return -1;
  struct tm tm = {0};
  tm.tm_year = year - 1900;
  tm.tm_mon = m;
  tm.tm_mday = day;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  time_t t = timegm(&tm);
  if (t == (time_t)-1) return -1;
  *out = (int64_t)t;
  return 0;
}

int parse_http_date(const char *v, int64_t *epoch) {
  char wd[16], mon[4], tz[4];
  int day, year, h, mi, s, n = 0;
  if (!v) return -1;
  while (isspace((unsigned char)*v)) v++;
  /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
  if (sscanf(v, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3[A-Z]%n", wd, &day, mon, &year, &h, &mi, &s, tz, &n) ==
          8 &&
      strcmp(tz, "GMT") == 0 && v[n] == 0)
    return make_time(year, mon, day, h, mi, s, epoch);
  /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT (two-digit year: 1970-2069) */
  if (sscanf(v, "%15[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d %3[A-Z]%n", wd, &day, mon, &year, &h, &mi, &s, tz, &n) ==
          8 &&
      strcmp(tz, "GMT") == 0 && v[n] == 0)
    return make_time(year < 70 ? 2000 + year : 1900 + year, mon, day, h, mi, s, epoch);
  /* asctime: Sun Nov  6 08:49:37 1994 */
  if (sscanf(v, "%3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", wd, mon, &day, &h, &mi, &s, &year, &n) == 7 && v[n] == 0)
    return make_time(year, mon, day, h, mi, s, epoch);
  return -1;
}

/* A plain non-negative decimal with optional surrounding spaces; no sign, no hex. */
static int parse_decimal(const char *v, double *out) {
  if (!v) return -1;
  while (isspace((unsigned char)*v)) v++;
  if (!isdigit((unsigned char)*v)) return -1;
  const char *p = v;
  while (isdigit((unsigned char)*p)) p++;
  if (*p == '.') {
    p++;
    while (isdigit((unsigned char)*p)) p++;
  }
  const char *end = p;
  while (isspace((unsigned char)*p)) p++;
  if (*p) return -1;
  char buf[64];
  size_t len = (size_t)(end - v);
  if (len >= sizeof buf) return -1; /* absurdly long: overflow */
  memcpy(buf, v, len);
  buf[len] = 0;
  errno = 0;
  double d = strtod(buf, NULL);
  if (errno == ERANGE || !isfinite(d)) return -1;
  *out = d;
  return 0;
}

int parse_retry_after(const char *v, double now, double *secs) {
  double d;
  int64_t t;
  if (parse_decimal(v, &d) == 0) {
    *secs = d;
    return 0;
  }
  if (parse_http_date(v, &t) == 0) {
    double left = (double)t - now;
    *secs = left > 0 ? left : 0;
    return 0;
  }
  return -1;
}

int parse_quota_int(const char *v, int64_t *out) {
  double d;
  if (parse_decimal(v, &d) < 0 || d != floor(d) || d > 9.0e15) return -1;
  *out = (int64_t)d;
  return 0;
}

int parse_quota_reset(const char *v, double now, double *secs) {
  double d;
  if (parse_decimal(v, &d) < 0) return -1;
  if (d >= 1e12)
    d = d / 1000.0 - now; /* epoch milliseconds */
  else if (d >= 1e9)
    d = d - now; /* epoch seconds */
  *secs = d > 0 ? d : 0;
  return 0;
}

/* --- structured fields (a lenient subset of RFC 8941 lists) --- */

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t') p++;
  return p;
}

/* Reads a token or quoted string into buf; returns the new position or NULL. */
static const char *read_name(const char *p, char *buf, size_t size) {
  size_t n = 0;
  if (*p == '"') {
    p++;
    while (*p && *p != '"') {
      if (*p == '\\' && p[1]) p++;
      if (n + 1 < size) buf[n++] = *p;
      p++;
    }
    if (*p != '"') return NULL;
    p++;
  } else {
    if (!isalpha((unsigned char)*p) && *p != '*') return NULL;
    while (isalnum((unsigned char)*p) || (*p && strchr("_-.:*/%", *p))) { /* strchr finds the NUL too */
      if (n + 1 < size) buf[n++] = (char)tolower((unsigned char)*p);
      p++;
    }
  }
  buf[n] = 0;
  return p;
}

static const char *read_int(const char *p, int64_t *out, int *ok) {
  const char *s = p;
  int neg = 0;
  if (*p == '-') neg = 1, p++;
  int64_t v = 0;
  int digits = 0;
  while (isdigit((unsigned char)*p)) {
    if (digits++ > 15) return NULL;
    v = v * 10 + (*p++ - '0');
  }
  if (!digits) {
    /* not an integer (a string, token or boolean): skip it */
    *ok = 0;
    char tmp[64];
    const char *q = read_name(s, tmp, sizeof tmp);
    if (!q && *s == '?' && s[1]) q = s + 2; /* ?0 / ?1; a lone '?' at the end is malformed */
    return q;
  }
  if (*p == '.') { /* decimal: keep the integer part */
    p++;
    while (isdigit((unsigned char)*p)) p++;
  }
  *ok = 1;
  *out = neg ? -v : v;
  return p;
}

int parse_sf_list(const char *v, sf_item *items, int max) {
  int n = 0;
  const char *p = skip_ws(v ? v : "");
  if (!*p) return 0;
  for (;;) {
    if (n >= max) return n;
    sf_item *it = &items[n];
    memset(it, 0, sizeof *it);
    p = read_name(p, it->name, sizeof it->name);
    if (!p) return -1;
    if (*p == '=') {
      int ok;
      p = read_int(p + 1, &it->value, &ok);
      if (!p) return -1;
      it->has_value = ok;
    }
    while (*p == ';') {
      char key[16];
      p = read_name(skip_ws(p + 1), key, sizeof key);
      if (!p) return -1;
      int64_t val = 1;
      int ok = 1;
      if (*p == '=') {
        p = read_int(p + 1, &val, &ok);
        if (!p) return -1;
      }
      if (ok && it->nparams < SF_MAX_PARAMS) {
        memcpy(it->params[it->nparams].key, key, sizeof key);
        it->params[it->nparams].value = val;
        it->nparams++;
      }
    }
    n++;
    p = skip_ws(p);
    if (!*p) return n;
    if (*p != ',') return -1;
    p = skip_ws(p + 1);
  }
}
