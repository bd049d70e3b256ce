/* quota.h: parsers for the headers an API uses to say how much it will take:
 * Retry-After, HTTP dates, RateLimit-* / X-RateLimit-* values and the IETF structured
 * RateLimit / RateLimit-Policy fields. Pure C: malformed input returns -1, never crashes. */
#ifndef PACER_QUOTA_H
#define PACER_QUOTA_H
#include <stdint.h>

/* An HTTP-date in any of the three forms of RFC 9110 (IMF-fixdate, RFC 850, asctime).
 * Stores seconds since the epoch; returns 0, or -1 when it does not parse. */
int parse_http_date(const char *v, int64_t *epoch);

/* Retry-After: delta-seconds (decimals tolerated) or an HTTP-date. `now` is the current
 * epoch time. Stores seconds to wait (0 for a date in the past); 0 or -1 if malformed
 * (negative, garbage, overflow). */
int parse_retry_after(const char *v, double now, double *secs);

/* A non-negative integer quota value ("100"); 0 or -1. */
int parse_quota_int(const char *v, int64_t *out);

/* A reset value, read as documented in README: below 1e9 delta seconds; up to 1e12
 * epoch seconds; above that epoch milliseconds. Stores seconds from `now` (>= 0). */
int parse_quota_reset(const char *v, double now, double *secs);

#define SF_MAX_PARAMS 8
typedef struct sf_item {
  char name[48]; /* the item: a token or string, or the key of key=value */
  int has_value; /* key=value form (draft "limit=100, remaining=5") */
  int64_t value;
  int nparams;
  struct {
    char key[16];
    int64_t value;
  } params[SF_MAX_PARAMS]; /* ;r=50;t=30 (integer parameters only, others skipped) */
} sf_item;

/* Parses a structured-field list such as `"burst";q=100;w=60, "daily";q=1000;w=86400`
 * into at most `max` items. Returns the count, or -1 when malformed. */
int parse_sf_list(const char *v, sf_item *items, int max);
#endif
