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
  int n = parse_sf_list("\"burst\";q=100;w=60, \"daily\";q=1000;w=86400", it, 8, NULL);
  CHECK(n == 2);
  CHECK(strcmp(it[0].name, "burst") == 0 && it[0].nparams == 2 && it[0].params[0].value == 100);
  CHECK(strcmp(it[1].name, "daily") == 0 && it[1].params[1].value == 86400);
  n = parse_sf_list("\"default\";r=50;t=30", it, 8, NULL);
  CHECK(n == 1 && it[0].params[0].value == 50 && it[0].params[1].value == 30);
  n = parse_sf_list("limit=100, remaining=50, reset=30", it, 8, NULL);
  CHECK(n == 3 && it[1].has_value && it[1].value == 50);
  CHECK(parse_sf_list("\"unterminated;q=1", it, 8, NULL) == -1);
  CHECK(parse_sf_list(",,,", it, 8, NULL) == -1);
  CHECK(parse_sf_list("", it, 8, NULL) == 0);
  /* found by fuzz/fuzz_quota: a bare token at the very end was read on past the NUL
   * (strchr matches the terminator), and a lone '?' skipped over it; the bytes after
   * the NUL here would have been parsed as "=7" */
  static const char token_at_end[] = "limit=100, policy\0=7";
  n = parse_sf_list(token_at_end, it, 8, NULL);
  CHECK(n == 2 && strcmp(it[1].name, "policy") == 0 && !it[1].has_value);
  static const char param_at_end[] = "\"d\";q=10;flag\0=7";
  n = parse_sf_list(param_at_end, it, 8, NULL);
  CHECK(n == 1 && it[0].nparams == 2 && it[0].params[1].value == 1);
  static const char lone_q[] = "a=?\0\0";
  CHECK(parse_sf_list(lone_q, it, 8, NULL) == -1);
  n = parse_sf_list("\"d\";q=10;ok=?1", it, 8, NULL); /* a boolean parameter is skipped */
  CHECK(n == 1 && it[0].nparams == 1);

  /* more policies than the array holds: counted (snprintf-style), the first max filled,
   * and a second call with room reads them all */
  static const char twelve[] = "p1;q=1, p2;q=2, p3;q=3, p4;q=4, p5;q=5, p6;q=6, p7;q=7, p8;q=8, p9;q=9, "
                               "p10;q=10, p11;q=11, \"p12\";q=12";
  n = parse_sf_list(twelve, it, 8, NULL);
  CHECK(n == 12 && strcmp(it[7].name, "p8") == 0 && it[7].params[0].value == 8);
  sf_item all[12];
  CHECK(parse_sf_list(twelve, all, 12, NULL) == 12);
  CHECK(strcmp(all[11].name, "p12") == 0 && all[11].params[0].value == 12);
  CHECK(parse_sf_list(twelve, NULL, 0, NULL) == 12);
  sf_error err = {NULL, 0};
  CHECK(parse_sf_list("p1;q=1, p2;q=2, p3;q=3, p4;q=4, p5;q=5, p6;q=6, p7;q=7, p8;q=8, p9;q=\"x", it, 8, &err) == -1);
  CHECK(err.why && strstr(err.why, "closing quote")); /* an item past max is still checked */

  /* pk: a byte sequence (the draft's form), a string or a token; qu a string */
  char buf[64];
  static const char pol[] = "\"peruser\";q=65535;qu=\"content-bytes\";w=10;pk=:dXNlcjE=:, "
                            "\"perapp\";q=100;pk=\"app\\\"1\";qu=requests, bulk;q=5;pk=team-7";
  n = parse_sf_list(pol, it, 8, NULL);
  CHECK(n == 3);
  CHECK(it[0].pk.kind == SF_TEXT_BYTES && sf_decode(pol, &it[0].pk, buf) == 5 && memcmp(buf, "user1", 5) == 0);
  CHECK(it[0].qu.kind == SF_TEXT_STRING && sf_decode(pol, &it[0].qu, buf) == 13 &&
        memcmp(buf, "content-bytes", 13) == 0);
  CHECK(it[0].nparams == 2 && strcmp(it[0].params[1].key, "w") == 0); /* pk, qu not in params */
  CHECK(it[1].pk.kind == SF_TEXT_STRING && sf_decode(pol, &it[1].pk, buf) == 5 && memcmp(buf, "app\"1", 5) == 0);
  CHECK(it[1].qu.kind == SF_TEXT_TOKEN && sf_decode(pol, &it[1].qu, buf) == 8);
  CHECK(it[2].pk.kind == SF_TEXT_TOKEN && sf_decode(pol, &it[2].pk, buf) == 6 && memcmp(buf, "team-7", 6) == 0);
  CHECK(it[2].qu.kind == SF_TEXT_NONE);
  n = parse_sf_list("\"default\";r=999;pk=:dHJpYWwxMjEzMjM:", it, 8, NULL); /* no padding: accepted */
  CHECK(n == 1 && sf_decode("\"default\";r=999;pk=:dHJpYWwxMjEzMjM:", &it[0].pk, buf) == 11);
  CHECK(memcmp(buf, "trial121323", 11) == 0);
  n = parse_sf_list("a;q=1;pk=::", it, 8, NULL); /* an empty key is a key */
  CHECK(n == 1 && it[0].pk.kind == SF_TEXT_BYTES && it[0].pk.len == 0);
  n = parse_sf_list("a;q=1;sig=:AQID:", it, 8, NULL); /* another byte sequence: skipped */
  CHECK(n == 1 && it[0].nparams == 1);

  /* malformed pk / qu: the list is malformed, with the reason and where */
  static const struct {
    const char *v, *why;
    size_t at;
  } bad[] = {
      {"a;q=1;pk=:abc$:", "not base64", 13},
      {"a;q=1;pk=:dXNlcjE=", "no closing ':'", 9},
      {"a;q=1;pk=:d=XN:", "not valid base64", 9},
      {"a;q=1;pk=:a:", "not valid base64", 9},
      {"a;q=1;pk=42", "pk is not", 9},
      {"a;q=1;pk=?1", "pk is not", 9},
      {"a;q=1;pk", "pk is not", 8},
      {"a;q=1;qu=:cmVx:", "qu is not a string", 9},
      {"a;q=1;qu=7", "qu is not a string", 9},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    err = (sf_error){NULL, 0};
    CHECK(parse_sf_list(bad[i].v, it, 8, &err) == -1);
    CHECK(err.why && strstr(err.why, bad[i].why));
    CHECK(err.at == bad[i].at);
  }
  return CHECK_DONE();
}
