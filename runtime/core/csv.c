/* csv.c: the incremental CSV / line reader of csv.h. Input is kept from the start of the
 * record being read; a record is parsed again from its start when more input arrives
 * (records are short, so this costs little and needs no saved parser state), and the
 * consumed bytes are counted for line numbers only when a record is taken. */
#include "core/csv.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct csv_reader {
  enum csv_mode mode;
  size_t max_record;
  char *buf; /* unconsumed input is buf[pos .. len) */
  size_t pos, len, cap;
  long line;    /* the line buf[pos] is on */
  int eof;      /* csv_eof was called */
  int started;  /* the BOM check is done */
  int skipping; /* dropping input up to the next LF (after a record too long to keep) */
  char *out;    /* the fields of the last record, unquoted */
  size_t out_len, out_cap;
  size_t *ends;
  size_t nends, ends_cap;
};

csv_reader *csv_new(enum csv_mode mode, size_t max_record) {
  csv_reader *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->mode = mode;
  r->max_record = max_record ? max_record : 1;
  r->line = 1;
  return r;
}

void csv_free(csv_reader *r) {
  if (!r) return;
  free(r->buf);
  free(r->out);
  free(r->ends);
  free(r);
}

long csv_line(const csv_reader *r) {
  return r->line;
}

static long count_lf(const char *p, size_t n) {
  long k = 0;
  for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++) k++;
  return k;
}

int csv_feed(csv_reader *r, const char *data, size_t n) {
  if (r->skipping) { /* drop up to and including the next LF */
    const char *lf = memchr(data, '\n', n);
    if (!lf) return 0;
    r->skipping = 0;
    r->line++;
    n -= (size_t)(lf + 1 - data);
    data = lf + 1;
  }
  if (r->pos > 0 && r->len + n > r->cap) { /* move the unconsumed input to the front */
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
  }
  if (r->len + n > r->cap) {
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < r->len + n) cap *= 2;
    char *b = realloc(r->buf, cap);
    if (!b) return -1;
    r->buf = b;
    r->cap = cap;
  }
  if (n) memcpy(r->buf + r->len, data, n);
  r->len += n;
  return 0;
}

void csv_eof(csv_reader *r) {
  r->eof = 1;
}

/* Takes buf[pos .. to) as read. */
static void consume(csv_reader *r, size_t to) {
  r->line += count_lf(r->buf + r->pos, to - r->pos);
  r->pos = to;
}

/* After a bad record: reading goes on after the first LF at or after `from` (the record's
 * start: a stray quote must not take the lines after it into the bad record). */
static void resync(csv_reader *r, size_t from) {
  const char *lf = memchr(r->buf + from, '\n', r->len - from);
  if (lf) {
    consume(r, (size_t)(lf - r->buf) + 1);
  } else {
    consume(r, r->len);
    if (!r->eof) r->skipping = 1;
  }
}

static int put(csv_reader *r, const char *p, size_t n) {
  if (n == 0) return 0;
  if (r->out_len + n > r->out_cap) {
    size_t cap = r->out_cap ? r->out_cap : 256;
    while (cap < r->out_len + n) cap *= 2;
    char *o = realloc(r->out, cap);
    if (!o) return -1;
    r->out = o;
    r->out_cap = cap;
  }
  memcpy(r->out + r->out_len, p, n);
  r->out_len += n;
  return 0;
}

static int end_field(csv_reader *r) {
  if (r->nends == r->ends_cap) {
    size_t cap = r->ends_cap ? r->ends_cap * 2 : 16;
    size_t *e = realloc(r->ends, cap * sizeof *e);
    if (!e) return -1;
    r->ends = e;
    r->ends_cap = cap;
  }
  r->ends[r->nends++] = r->out_len;
  return 0;
}

enum { P_MORE, P_DONE, P_QUOTE_EOF, P_AFTER_QUOTE, P_NOMEM };

/* Parses one record from buf[pos ..): P_DONE with *next just past its end, P_MORE when
 * the input ends first, or an error (*next where it was found). */
static int parse(csv_reader *r, size_t *next) {
  const char *b = r->buf;
  size_t i = r->pos, end = r->len;
  r->out_len = r->nends = 0;
  if (r->mode == CSV_LINES) {
    const char *lf = memchr(b + i, '\n', end - i);
    if (!lf && !r->eof) return P_MORE;
    size_t stop = lf ? (size_t)(lf - b) : end, n = stop - i;
    if (n && b[stop - 1] == '\r' && lf) n--;
    if (put(r, b + i, n) || end_field(r)) return P_NOMEM;
    *next = lf ? stop + 1 : end;
    return P_DONE;
  }
  for (;;) { /* at the start of a field */
    if (i < end && b[i] == '"') {
      i++;
      for (;;) {
        const char *q = memchr(b + i, '"', end - i);
        if (!q) return r->eof ? P_QUOTE_EOF : P_MORE;
        size_t k = (size_t)(q - b);
        if (put(r, b + i, k - i)) return P_NOMEM;
        if (k + 1 == end && !r->eof) return P_MORE; /* "" split across feeds? */
        if (k + 1 < end && b[k + 1] == '"') {
          if (put(r, "\"", 1)) return P_NOMEM;
          i = k + 2;
          continue;
        }
        i = k + 1;
        break;
      }
      /* after the closing quote: a comma, a line break or the end */
      if (i == end) {
        if (!r->eof) return P_MORE;
        if (end_field(r)) return P_NOMEM;
        *next = i;
        return P_DONE;
      }
      if (b[i] == ',') {
        if (end_field(r)) return P_NOMEM;
        i++;
        continue;
      }
      if (b[i] == '\r' && i + 1 == end && !r->eof) return P_MORE;
      if (b[i] == '\n' || (b[i] == '\r' && i + 1 < end && b[i + 1] == '\n')) {
        if (end_field(r)) return P_NOMEM;
        *next = i + (b[i] == '\r' ? 2 : 1);
        return P_DONE;
      }
      *next = i;
      return P_AFTER_QUOTE;
    }
    /* unquoted: up to a comma or LF (a quote inside is data) */
    size_t k = i;
    while (k < end && b[k] != ',' && b[k] != '\n') k++;
    if (k == end && !r->eof) return P_MORE;
    size_t n = k - i;
    if (k < end && b[k] == '\n' && n && b[k - 1] == '\r') n--;
    if (put(r, b + i, n) || end_field(r)) return P_NOMEM;
    if (k < end && b[k] == ',') {
      i = k + 1;
      continue;
    }
    *next = k < end ? k + 1 : end;
    return P_DONE;
  }
}

static int blank(const csv_reader *r) {
  return r->nends == 1 && r->out_len == 0;
}

int csv_next(csv_reader *r, csv_record *out) {
  memset(out, 0, sizeof *out);
  for (;;) {
    if (!r->started) { /* a UTF-8 BOM at the very start is not data */
      size_t have = r->len - r->pos;
      if (have < 3 && !r->eof && (have == 0 || memcmp(r->buf + r->pos, "\xEF\xBB\xBF", have) == 0)) return CSV_MORE;
      if (have >= 3 && memcmp(r->buf + r->pos, "\xEF\xBB\xBF", 3) == 0) r->pos += 3;
      r->started = 1;
    }
    if (r->pos == r->len) return r->eof ? CSV_END : CSV_MORE;
    size_t next = 0;
    int rc = parse(r, &next);
    out->line = r->line;
    if (rc == P_NOMEM) return -1;
    /* past max_record a record is "too long" however the input was cut into chunks
     * (waiting for more may need one byte of look-ahead: a CR's LF, a quote's pair), and
     * reading goes on at the line after the record's first */
    size_t seen = (rc == P_MORE || rc == P_QUOTE_EOF ? r->len : next) - r->pos;
    if (seen > r->max_record + (rc == P_MORE)) {
      out->error = r->mode == CSV_LINES ? "line too long" : "record too long (an unterminated quoted field?)";
      resync(r, r->pos);
      return CSV_BAD;
    }
    switch (rc) {
    case P_MORE: return CSV_MORE;
    case P_QUOTE_EOF:
      out->error = "unterminated quoted field";
      resync(r, r->pos);
      return CSV_BAD;
    case P_AFTER_QUOTE:
      out->error = "unexpected character after a closing quote";
      resync(r, r->pos);
      return CSV_BAD;
    default:
      consume(r, next);
      if (blank(r)) continue;
      out->nfields = r->nends;
      out->data = r->out ? r->out : "";
      out->ends = r->ends;
      return CSV_RECORD;
    }
  }
}
