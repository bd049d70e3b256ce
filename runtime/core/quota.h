/* quota.h: parsers for the headers an API uses to say how much it will take:
 * Retry-After, HTTP dates, RateLimit-* / X-RateLimit-* values and the IETF structured
 * RateLimit / RateLimit-Policy fields. Pure C: malformed input returns -1, never crashes. */
#ifndef PACER_QUOTA_H
#define PACER_QUOTA_H
#include <stddef.h>
#include <stdint.h>

/* An HTTP-date in any of the three forms of RFC 9110 (IMF-fixdate, RFC 850, asctime).
 * Stores seconds since the epoch; returns 0, or -1 when it does not parse. */
int parse_http_date(const char *v, int64_t *epoch);

/* Retry-After: delta-seconds (decimals tolerated) or an HTTP-date. `now` is the current
 * epoch time. Stores seconds to wait (0 for a date in the past); 0 or -1 if malformed
 * (negative, garbage, overflow). */
int parse_retry_after(const char *v, double now, double *secs);

/* Does a header name (n bytes, any case) start one of the quota families read by the
 * parsers here: "ratelimit", "x-ratelimit" or "x-rate-limit"? 1 or 0. */
int quota_header_name(const char *name, size_t n);

/* A non-negative integer quota value ("100"); 0 or -1. */
int parse_quota_int(const char *v, int64_t *out);

/* A reset value, read as documented in README: below 1e9 delta seconds; up to 1e12
 * epoch seconds; above that epoch milliseconds. Stores seconds from `now` (>= 0). */
int parse_quota_reset(const char *v, double now, double *secs);

#include <stddef.h>

#define SF_MAX_PARAMS 8

/* How a text parameter (pk, qu) was written: its span is the text between the colons
 * of a byte sequence, inside the quotes of a string (escapes kept), or the token. */
enum { SF_TEXT_NONE = 0, SF_TEXT_BYTES, SF_TEXT_STRING, SF_TEXT_TOKEN };
typedef struct sf_text {
  int kind;   /* SF_TEXT_*; NONE: the parameter is absent */
  size_t off; /* offset in the parsed value */
  size_t len;
} sf_text;

typedef struct sf_item {
  char name[48]; /* the item: a token or string, or the key of key=value */
  int has_value; /* key=value form (draft "limit=100, remaining=5") */
  int64_t value;
  int nparams;
  struct {
    char key[16];
    int64_t value;
  } params[SF_MAX_PARAMS]; /* ;r=50;t=30 (integer parameters only, others skipped) */
  sf_text pk;              /* ;pk=:base64: the partition key (also a string or token) */
  sf_text qu;              /* ;qu="requests" the quota unit (also a token) */
} sf_item;

/* Why a list did not parse: a fixed phrase and the byte offset where it went wrong. */
typedef struct sf_error {
  const char *why;
  size_t at;
} sf_error;

/* Parses a structured-field list such as `"burst";q=100;w=60, "daily";q=1000;w=86400`.
 * Fills the first `max` items and returns how many the whole list holds, which is more
 * than `max` when it is longer (like snprintf: call again with room for them); -1 when
 * malformed, with *err (if not NULL) saying why. A pk that is not a byte sequence,
 * string or token, or a byte sequence that is not base64, is malformed. */
int parse_sf_list(const char *v, sf_item *items, int max, sf_error *err);

/* Decodes a text parameter of the value `v` into `out` (room for t->len bytes): base64
 * for a byte sequence, escapes for a string. Returns the decoded length, or -1 when the
 * text does not decode (never for a span parse_sf_list filled). */
long sf_decode(const char *v, const sf_text *t, char *out);
#endif
