/* reqparse.c: the listener's request parser on http_parser (see reqparse.h). */
#include "core/reqparse.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int rp_buf_add(rp_buf *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) return -1;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = 0;
  return 0;
}

void rp_buf_free(rp_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

void reqparse_free(reqparse *r) {
  rp_buf_free(&r->url);
  rp_buf_free(&r->hdrs);
  rp_buf_free(&r->body);
}

/* Marks the parse failed: status and why. Returns 1, so callbacks can `return fail(...)`. */
static int fail(reqparse *r, int status, const char *why) {
  if (!r->error_status) {
    r->error_status = status;
    r->error = why;
  }
  return 1;
}

static int out_of_memory(reqparse *r) {
  return fail(r, 400, "out of memory");
}

static int add(reqparse *r, rp_buf *b, const char *p, size_t n) {
  return rp_buf_add(b, p, n) ? out_of_memory(r) : 0;
}

static int too_big_headers(reqparse *r, size_t n) {
  r->header_bytes += n;
  return r->header_bytes > r->max_header_bytes ? fail(r, 431, "request headers too large") : 0;
}

/* A NUL in a header would split the name\0value\0 buffer: such a request is malformed. */
static int has_nul(reqparse *r, const char *at, size_t n) {
  return memchr(at, 0, n) ? fail(r, 400, "NUL in a header") : 0;
}

/* tchar of RFC 9110 5.6.2: what a header name is made of. */
static int is_tchar(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int bad_name(reqparse *r, const char *at, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!is_tchar((unsigned char)at[i])) return fail(r, 400, "invalid character in a header name");
  return 0;
}

/* Checks the framing bytes [from, to): request line, headers, chunk-size lines and
 * trailers (body data is not framing, see on_body). A LF must follow a CR, and no line
 * may start with SP or HTAB (obs-fold: a header continued on the next line). */
static int check_framing(reqparse *r, const char *from, const char *to) {
  for (const char *p = from; p < to; p++) {
    if (*p == '\n' && !r->last_cr) return fail(r, 400, "bare LF in the request framing");
    if ((*p == ' ' || *p == '\t') && r->line_start) return fail(r, 400, "obsolete line folding in a header");
    r->line_start = *p == '\n';
    r->last_cr = *p == '\r';
  }
  return 0;
}

/* --- http_parser callbacks --- */

static int on_message_begin(http_parser *p) {
  reqparse *r = p->data;
  r->url.len = r->hdrs.len = r->body.len = 0;
  r->in_value = r->nheaders = 0;
  r->header_bytes = 0;
  r->expect_continue = 0;
  r->phase = RP_HEAD;
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  reqparse *r = p->data;
  return too_big_headers(r, n) || add(r, &r->url, at, n);
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  reqparse *r = p->data;
  if (bad_name(r, at, n)) return 1;  /* in trailers too: they are framing */
  if (r->phase != RP_HEAD) return 0; /* trailers of a chunked body: dropped, never stored */
  if (too_big_headers(r, n) || has_nul(r, at, n)) return 1;
  if (r->in_value || r->nheaders == 0) {                      /* a new header starts */
    if (r->nheaders > 0 && add(r, &r->hdrs, "", 1)) return 1; /* end the previous value */
    if (++r->nheaders > r->max_headers) return fail(r, 431, "request headers too large");
    r->in_value = 0;
  }
  return add(r, &r->hdrs, at, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  reqparse *r = p->data;
  if (r->phase != RP_HEAD) return 0;
  if (too_big_headers(r, n) || has_nul(r, at, n)) return 1;
  if (!r->in_value) {
    if (add(r, &r->hdrs, "", 1)) return 1; /* end the name */
    r->in_value = 1;
  }
  return add(r, &r->hdrs, at, n);
}

static int on_headers_complete(http_parser *p) {
  reqparse *r = p->data;
  r->phase = RP_BODY;
  /* end the last value; a last name with no value (http_parser calls nothing for an
   * empty one) gets its end and an empty value, so the buffer always holds pairs */
  if (r->nheaders > 0 && (r->in_value ? add(r, &r->hdrs, "", 1) : add(r, &r->hdrs, "\0", 2))) return -1;
  /* an error, not 1: 1 here would mean "no body" and the body be read as a request */
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > r->max_body) {
    fail(r, 413, "request body too large");
    return -1;
  }
  const char *h, *v;
  for (size_t pos = 0; reqparse_header(r, &pos, &h, &v);)
    if (strcasecmp(h, "expect") == 0 && strcasecmp(v, "100-continue") == 0) r->expect_continue = 1;
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  reqparse *r = p->data;
  if (check_framing(r, r->scan, at)) return 1; /* what came before this data */
  r->scan = at + n;
  r->last_cr = r->line_start = 0;
  if (r->body.len + n > r->max_body) return fail(r, 413, "request body too large");
  return add(r, &r->body, at, n);
}

static int on_message_complete(http_parser *p) {
  reqparse *r = p->data;
  r->phase = RP_DONE;
  http_parser_pause(p, 1); /* one request at a time per connection */
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* --- the parser loop --- */

void reqparse_init(reqparse *r, size_t max_body, size_t max_header_bytes, int max_headers) {
  memset(r, 0, sizeof *r);
  http_parser_init(&r->parser, HTTP_REQUEST);
  r->parser.data = r;
  r->max_body = max_body;
  r->max_header_bytes = max_header_bytes;
  r->max_headers = max_headers;
}

rp_result reqparse_feed(reqparse *r, const char *data, size_t len, size_t *used) {
  *used = 0;
  if (r->error_status) return RP_ERROR;
  if (r->phase == RP_DONE) return RP_REQUEST; /* not answered yet */
  if (len == 0) return RP_MORE;
  r->scan = data;
  size_t n = http_parser_execute(&r->parser, &settings, data, len);
  enum http_errno err = HTTP_PARSER_ERRNO(&r->parser);
  if (err != HPE_OK && err != HPE_PAUSED)
    fail(r, 400, http_errno_description(err));
  else if (n == 0)
    fail(r, 400, "the parser made no progress"); /* never spin on such input */
  else
    check_framing(r, r->scan, data + n); /* before anyone sees the request */
  r->scan = NULL;
  if (r->error_status) {
    *used = len;
    return RP_ERROR;
  }
  *used = n;
  return err == HPE_PAUSED ? RP_REQUEST : RP_MORE;
}

void reqparse_next(reqparse *r) {
  if (r->phase != RP_DONE) return;
  r->phase = RP_IDLE;
  http_parser_pause(&r->parser, 0);
}

const char *reqparse_method(const reqparse *r) {
  return http_method_str((enum http_method)r->parser.method);
}

int reqparse_keep_alive(const reqparse *r) {
  return http_should_keep_alive(&r->parser);
}

int reqparse_header(const reqparse *r, size_t *pos, const char **name, const char **value) {
  if (!r->hdrs.p || *pos >= r->hdrs.len) return 0;
  const char *end = r->hdrs.p + r->hdrs.len, *h = r->hdrs.p + *pos;
  const char *hz = memchr(h, 0, (size_t)(end - h)); /* bounded: never past the buffer */
  if (!hz || hz + 1 >= end) return 0;
  const char *v = hz + 1, *vz = memchr(v, 0, (size_t)(end - v));
  if (!vz) return 0;
  *name = h;
  *value = v;
  *pos = (size_t)(vz + 1 - r->hdrs.p);
  return 1;
}
