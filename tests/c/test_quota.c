/* Retry-After, HTTP dates, quota values and structured fields. */
#include "check.h"
#include "core/quota.h"
#include <string.h>

int main(void) {
  double s;
  int64_t t;
  /* the three HTTP-date forms of RFC 9110 name the same instant */
  CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", &t) == 0 && t == 784111777);
  CHECK(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", &t) == 0 && t == 784111777);
  CHECK(parse_http_date("Sun Nov  6 08:49:37 1994", &t) == 0 && t == 784111777);
  CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST", &t) == -1);
  CHECK(parse_http_date("yesterday", &t) == -1);
  CHECK(parse_http_date("Sun, 36 Nov 1994 08:49:37 GMT", &t) == -1);

  CHECK(parse_retry_after("120", 0, &s) == 0 && s == 120);
  CHECK(parse_retry_after(" 1.5 ", 0, &s) == 0 && s == 1.5);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", 784111777, &s) == 0 && s == 60);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111877, &s) == 0 && s == 0); /* past */
  CHECK(parse_retry_after("-5", 0, &s) == -1);
  CHECK(parse_retry_after("soon", 0, &s) == -1);
  CHECK(parse_retry_after("", 0, &s) == -1);
  CHECK(parse_retry_after("12abc", 0, &s) == -1);
  CHECK(parse_retry_after("99999999999999999999999999999999999999999999999999999999999999999999", 0, &s) == -1);
  CHECK(parse_retry_after(NULL, 0, &s) == -1);

  CHECK(parse_quota_int("100", &t) == 0 && t == 100);
  CHECK(parse_quota_int("-1", &t) == -1);
  CHECK(parse_quota_int("1.5", &t) == -1);
  CHECK(parse_quota_reset("30", 1700000000, &s) == 0 && s == 30);
  CHECK(parse_quota_reset("1700000060", 1700000000, &s) == 0 && s == 60);
  CHECK(parse_quota_reset("1700000060000", 1700000000, &s) == 0 && s == 60);
  CHECK(parse_quota_reset("1600000000", 1700000000, &s) == 0 && s == 0);

  sf_item it[8];
  int n = parse_sf_list("\"burst\";q=100;w=60, \"daily\";q=1000;w=86400", it, 8);
  CHECK(n == 2);
  CHECK(strcmp(it[0].name, "burst") == 0 && it[0].nparams == 2 && it[0].params[0].value == 100);
  CHECK(strcmp(it[1].name, "daily") == 0 && it[1].params[1].value == 86400);
  n = parse_sf_list("\"default\";r=50;t=30", it, 8);
  CHECK(n == 1 && it[0].params[0].value == 50 && it[0].params[1].value == 30);
  n = parse_sf_list("limit=100, remaining=50, reset=30", it, 8);
  CHECK(n == 3 && it[1].has_value && it[1].value == 50);
  CHECK(parse_sf_list("\"unterminated;q=1", it, 8) == -1);
  CHECK(parse_sf_list(",,,", it, 8) == -1);
  CHECK(parse_sf_list("", it, 8) == 0);
  /* found by fuzz/fuzz_quota: a bare token at the very end was read on past the NUL
   * (strchr matches the terminator), and a lone '?' skipped over it; the bytes after
   * the NUL here would have been parsed as "=7" */
  static const char token_at_end[] = "limit=100, policy\0=7";
  n = parse_sf_list(token_at_end, it, 8);
  CHECK(n == 2 && strcmp(it[1].name, "policy") == 0 && !it[1].has_value);
  static const char param_at_end[] = "\"d\";q=10;flag\0=7";
  n = parse_sf_list(param_at_end, it, 8);
  CHECK(n == 1 && it[0].nparams == 2 && it[0].params[1].value == 1);
  static const char lone_q[] = "a=?\0\0";
  CHECK(parse_sf_list(lone_q, it, 8) == -1);
  n = parse_sf_list("\"d\";q=10;ok=?1", it, 8); /* a boolean parameter is skipped */
  CHECK(n == 1 && it[0].nparams == 1);
  return CHECK_DONE();
}
