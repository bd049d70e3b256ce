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

int quota_header_name(const char *name, size_t n) {
  return (n >= 9 && strncasecmp(name, "ratelimit", 9) == 0) || (n >= 11 && strncasecmp(name, "x-ratelimit", 11) == 0) ||
         (n >= 12 && strncasecmp(name, "x-rate-limit", 12) == 0);
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

/* One bare item after '=' (RFC 8941 3.3): what it was and, for the text kinds, where. */
typedef struct bare {
  int kind; /* BARE_* */
  int64_t i;
  sf_text text;
} bare;
enum { BARE_INT, BARE_BOOL, BARE_TEXT };

static int is_b64(int c) {
  return isalnum(c) || c == '+' || c == '/' || c == '=';
}

static const char *fail(sf_error *err, const char *why, const char *v, const char *p) {
  if (err) err->why = why, err->at = (size_t)(p - v);
  return NULL;
}

/* Reads the bare item at p (v: the start of the value, for offsets). Returns the new
 * position, or NULL with *err set. */
static const char *read_bare(const char *v, const char *p, bare *b, sf_error *err) {
  const char *s = p;
  memset(b, 0, sizeof *b);
  if (*p == '-' || isdigit((unsigned char)*p)) {
    int neg = *p == '-', digits = 0;
    if (neg) p++;
    int64_t x = 0;
    while (isdigit((unsigned char)*p)) {
      if (digits++ > 15) return fail(err, "an integer has more than 15 digits", v, s);
      x = x * 10 + (*p++ - '0');
    }
    if (!digits) return fail(err, "a '-' is not followed by digits", v, s);
    b->kind = BARE_INT;
    if (*p == '.') { /* decimal: keep the integer part */
      p++;
      while (isdigit((unsigned char)*p)) p++;
    }
    b->i = neg ? -x : x;
    return p;
  }
  if (*p == '?') {
    if (p[1] != '0' && p[1] != '1') return fail(err, "a boolean is not ?0 or ?1", v, s);
    b->kind = BARE_BOOL, b->i = p[1] == '1';
    return p + 2;
  }
  if (*p == ':') { /* byte sequence: base64 between colons */
    p++;
    const char *q = p;
    while (*q && *q != ':') {
      if (!is_b64((unsigned char)*q)) return fail(err, "a byte sequence holds a character that is not base64", v, q);
      q++;
    }
    if (*q != ':') return fail(err, "a byte sequence has no closing ':'", v, s);
    b->kind = BARE_TEXT;
    b->text = (sf_text){SF_TEXT_BYTES, (size_t)(p - v), (size_t)(q - p)};
    if (sf_decode(v, &b->text, NULL) < 0) return fail(err, "a byte sequence is not valid base64", v, s);
    return q + 1;
  }
  if (*p == '"') {
    p++;
    const char *q = p;
    while (*q && *q != '"') {
      if (*q == '\\' && q[1]) q++;
      q++;
    }
    if (*q != '"') return fail(err, "a string has no closing quote", v, s);
    b->kind = BARE_TEXT;
    b->text = (sf_text){SF_TEXT_STRING, (size_t)(p - v), (size_t)(q - p)};
    return q + 1;
  }
  if (isalpha((unsigned char)*p) || *p == '*') {
    while (isalnum((unsigned char)*p) || (*p && strchr("_-.:*/%", *p))) p++; /* strchr finds the NUL too */
    b->kind = BARE_TEXT;
    b->text = (sf_text){SF_TEXT_TOKEN, (size_t)(s - v), (size_t)(p - s)};
    return p;
  }
  return fail(err, "a value is not an integer, string, token, byte sequence or boolean", v, s);
}

/* Base64 of RFC 4648, '=' padding optional (RFC 8941 4.2.7 asks parsers to accept
 * its absence). out NULL: only checks. */
static long b64_decode(const char *in, size_t len, char *out) {
  unsigned acc = 0;
  int bits = 0;
  long n = 0;
  size_t pad = 0;
  while (len > 0 && in[len - 1] == '=' && pad < 2) len--, pad++;
  for (size_t i = 0; i < len; i++) {
    int c = (unsigned char)in[i], d;
    if (c >= 'A' && c <= 'Z')
      d = c - 'A';
    else if (c >= 'a' && c <= 'z')
      d = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      d = c - '0' + 52;
    else if (c == '+')
      d = 62;
    else if (c == '/')
      d = 63;
    else
      return -1; /* '=' inside, or anything else */
    acc = (acc << 6) | (unsigned)d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (out) out[n] = (char)((acc >> bits) & 0xff);
      n++;
    }
  }
  if (len % 4 == 1) return -1; /* 6 bits cannot end a byte */
  if (pad && (len + pad) % 4) return -1;
  return n;
}

long sf_decode(const char *v, const sf_text *t, char *out) {
  const char *in = v + t->off;
  if (t->kind == SF_TEXT_BYTES) return b64_decode(in, t->len, out);
  if (t->kind == SF_TEXT_STRING) {
    long n = 0;
    for (size_t i = 0; i < t->len; i++) {
      if (in[i] == '\\' && i + 1 < t->len) i++;
      if (out) out[n] = in[i];
      n++;
    }
    return n;
  }
  if (t->kind == SF_TEXT_TOKEN) {
    if (out) memcpy(out, in, t->len);
    return (long)t->len;
  }
  return -1;
}

/* Reads one item with its parameters into *it. Returns the new position or NULL. */
static const char *read_item(const char *v, const char *p, sf_item *it, sf_error *err) {
  memset(it, 0, sizeof *it);
  const char *s = p;
  p = read_name(p, it->name, sizeof it->name);
  if (!p) return fail(err, "an item is not a string or token", v, s);
  bare b;
  if (*p == '=') {
    p = read_bare(v, p + 1, &b, err);
    if (!p) return NULL;
    it->has_value = b.kind == BARE_INT;
    it->value = b.i;
  }
  while (*p == ';') {
    char key[16];
    s = skip_ws(p + 1);
    p = read_name(s, key, sizeof key);
    if (!p) return fail(err, "a parameter name is malformed", v, s);
    b = (bare){BARE_INT, 1, {0, 0, 0}}; /* a bare flag counts as 1 */
    const char *at = *p == '=' ? p + 1 : p;
    if (*p == '=') {
      p = read_bare(v, p + 1, &b, err);
      if (!p) return NULL;
    }
    if (strcmp(key, "pk") == 0) {
      if (b.kind != BARE_TEXT) return fail(err, "pk is not a byte sequence (:base64:), string or token", v, at);
      it->pk = b.text;
    } else if (strcmp(key, "qu") == 0) {
      if (b.kind != BARE_TEXT || b.text.kind == SF_TEXT_BYTES) return fail(err, "qu is not a string", v, at);
      it->qu = b.text;
    } else if (b.kind == BARE_INT && it->nparams < SF_MAX_PARAMS) { /* integers only; others skipped */
      memcpy(it->params[it->nparams].key, key, sizeof key);
      it->params[it->nparams].value = b.i;
      it->nparams++;
    }
  }
  return p;
}

int parse_sf_list(const char *v, sf_item *items, int max, sf_error *err) {
  int n = 0;
  sf_item spare; /* items past max are read (to count and check them) into this */
  if (!v) v = "";
  const char *p = skip_ws(v);
  if (!*p) return 0;
  for (;;) {
    p = read_item(v, p, n < max ? &items[n] : &spare, err);
    if (!p) return -1;
    if (n == INT32_MAX) {
      fail(err, "too many items", v, p);
      return -1;
    }
    n++;
    p = skip_ws(p);
    if (!*p) return n;
    const char *why = *p != ',' ? "items are not separated by ','" : !*skip_ws(p + 1) ? "the list ends with ','" : NULL;
    if (why) {
      fail(err, why, v, p);
      return -1;
    }
    p = skip_ws(p + 1);
  }
}
