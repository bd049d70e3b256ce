/* The incremental CSV reader: RFC 4180 quoting, CRLF, BOM, line numbers, malformed
 * records reported and skipped, and the same records whatever the chunking. */
#include "check.h"
#include "core/csv.h"
#include <stdio.h>
#include <string.h>

/* Reads `in` fed `chunk` bytes at a time; writes each record as "line:f1|f2" or
 * "line!reason" into out, separated by newlines. */
static void read_all(enum csv_mode mode, const char *in, size_t chunk, size_t max, char *out, size_t cap) {
  csv_reader *r = csv_new(mode, max);
  size_t n = strlen(in), fed = 0, w = 0;
  out[0] = 0;
  csv_record rec;
  for (;;) {
    int rc = csv_next(r, &rec);
    if (rc == CSV_END) break;
    if (rc == CSV_MORE) {
      size_t k = n - fed < chunk ? n - fed : chunk;
      csv_feed(r, in + fed, k);
      fed += k;
      if (fed == n) csv_eof(r);
      continue;
    }
    if (rc == CSV_BAD) {
      w += (size_t)snprintf(out + w, cap - w, "%ld!%s\n", rec.line, rec.error);
      continue;
    }
    w += (size_t)snprintf(out + w, cap - w, "%ld:", rec.line);
    size_t start = 0;
    for (size_t i = 0; i < rec.nfields; i++) {
      w += (size_t)snprintf(out + w, cap - w, "%s%.*s", i ? "|" : "", (int)(rec.ends[i] - start), rec.data + start);
      start = rec.ends[i];
    }
    w += (size_t)snprintf(out + w, cap - w, "\n");
  }
  csv_free(r);
}

static void expect(enum csv_mode mode, const char *in, size_t max, const char *want) {
  char got[4096];
  for (size_t chunk = 1; chunk <= strlen(in) + 1; chunk++) {
    read_all(mode, in, chunk, max, got, sizeof got);
    if (strcmp(got, want) != 0) {
      fprintf(stderr, "input %s (chunks of %zu):\n got: %s\nwant: %s\n", in, chunk, got, want);
      CHECK(0);
      return;
    }
  }
}

int main(void) {
  expect(CSV_FIELDS, "phone,name\n+1555,Ann\n", 1000, "1:phone|name\n2:+1555|Ann\n");
  expect(CSV_FIELDS, "a,b\r\n1,2\r\n", 1000, "1:a|b\n2:1|2\n"); /* CRLF */
  expect(CSV_FIELDS,
         "\xEF\xBB\xBF"
         "a,b\n1,2",
         1000, "1:a|b\n2:1|2\n");                                                             /* BOM, no final LF */
  expect(CSV_FIELDS, "a\n\"x,y\",\"say \"\"hi\"\"\"\n", 1000, "1:a\n2:x,y|say \"hi\"\n");     /* quotes */
  expect(CSV_FIELDS, "a,b\n\"two\nlines\",z\n3,4\n", 1000, "1:a|b\n2:two\nlines|z\n4:3|4\n"); /* embedded LF */
  expect(CSV_FIELDS, "a,b\n\n1,2\n\r\n3,4\n", 1000, "1:a|b\n3:1|2\n5:3|4\n");                 /* blank lines */
  expect(CSV_FIELDS, "a,,c\n,\n", 1000, "1:a||c\n2:|\n");                                     /* empty fields */
  expect(CSV_FIELDS, "a,b\"c\n", 1000, "1:a|b\"c\n"); /* a quote inside is data */
  expect(CSV_FIELDS, "a\n\"bad\"x,1\n2\n", 1000, "1:a\n2!unexpected character after a closing quote\n3:2\n");
  expect(CSV_FIELDS, "a\n\"open,1\n2\n3\n", 1000, "1:a\n2!unterminated quoted field\n3:2\n4:3\n");
  expect(CSV_FIELDS, "a\n\"open,1\n2\n3\n", 6, "1:a\n2!record too long (an unterminated quoted field?)\n3:2\n4:3\n");
  expect(CSV_FIELDS, "a\nxxxxxxxxxxxx\nb\n", 6, "1:a\n2!record too long (an unterminated quoted field?)\n3:b\n");
  expect(CSV_FIELDS, "\"a\r\nb\"\r\n", 1000, "1:a\r\nb\n");
  expect(CSV_FIELDS, "", 1000, "");
  expect(CSV_LINES, "{\"a\":1}\r\n\n{\"b\":\"x,\\\"y\"}", 1000, "1:{\"a\":1}\n3:{\"b\":\"x,\\\"y\"}\n");
  expect(CSV_LINES, "ok\nwaytoolongline\nok2\n", 8, "1:ok\n2!line too long\n3:ok2\n");
  return CHECK_DONE();
}
