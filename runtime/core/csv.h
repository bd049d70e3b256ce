/* csv.h: an incremental reader of RFC 4180 CSV records (or of plain lines), pure C: the
 * caller pushes bytes as they come (csv_feed, then csv_eof) and pulls whole records
 * (csv_next), each with the line it began on. Quoted fields may hold commas, doubled
 * quotes and line breaks; records end at LF or CRLF; a UTF-8 BOM at the start is
 * skipped; blank lines are not records. A malformed record is reported (CSV_BAD with a
 * reason) and reading goes on at the line after the one it began on, so one stray
 * quote cannot swallow the rows after it. Memory is bounded by max_record plus one fed chunk. */
#ifndef PACER_CSV_H
#define PACER_CSV_H
#include <stddef.h>

typedef struct csv_reader csv_reader;

enum csv_mode { CSV_FIELDS, CSV_LINES }; /* CSV_LINES: each line is one field, quotes are data */
enum csv_status { CSV_MORE, CSV_RECORD, CSV_BAD, CSV_END };

typedef struct csv_record {
  long line;          /* the line the record began on, from 1 */
  size_t nfields;     /* CSV_RECORD: the fields, unquoted, in data */
  const char *data;   /* field i is data[start(i) .. ends[i]), start(i) = i ? ends[i-1] : 0 */
  const size_t *ends; /* valid until the next call on the reader */
  const char *error;  /* CSV_BAD: why, e.g. "unterminated quoted field" */
} csv_record;

/* A reader in `mode` refusing records longer than max_record bytes; NULL when out of memory. */
csv_reader *csv_new(enum csv_mode mode, size_t max_record);
void csv_free(csv_reader *r);
/* Appends n bytes of input. 0, or -1 when out of memory (nothing appended). */
int csv_feed(csv_reader *r, const char *data, size_t n);
/* Says no more input will come: a last record without a line break is complete. */
void csv_eof(csv_reader *r);
/* The next record: CSV_RECORD or CSV_BAD (filled in *out), CSV_MORE when it needs more
 * input (feed, or say eof), CSV_END once all input is read. -1 when out of memory. */
int csv_next(csv_reader *r, csv_record *out);
/* The line the next record would begin on (for messages about the end of input). */
long csv_line(const csv_reader *r);
#endif
