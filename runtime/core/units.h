/* units.h: parsing of rate strings ("50/min", "10/30s") and durations ("250ms", "5m").
 * Pure C. Errors are returned as static strings naming what was expected. */
#ifndef PACER_UNITS_H
#define PACER_UNITS_H
#include <stdint.h>

/* The longest duration pacer takes anywhere (about 31 years), in C and in Lua. */
#define PACER_MAX_SECONDS 1e9

/* NULL when s seconds is a duration pacer takes (0 ..  PACER_MAX_SECONDS), else why not. */
const char *check_seconds(double s);

/* Parses a duration: "250ms", "30s", "1.5s", "5m", "5min", "1h", "2d" (units also
 * spelt sec/second(s), min/minute(s), hr/hour(s), day(s)) or a bare number of seconds. On success stores nanoseconds
 * and returns NULL; else returns the reason. */
const char *parse_duration(const char *s, int64_t *ns);

/* Parses a rate "N/s", "N/min", "N/h", "N/day", "N/<duration>" (e.g. "100/30s").
 * Stores the count and the period in nanoseconds; returns NULL or the reason. */
const char *parse_rate(const char *s, double *count, int64_t *period_ns);
#endif
