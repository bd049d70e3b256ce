/* reqparse.c: request accumulation and limits for the HTTP listener (see reqparse.h). */
#include "core/reqparse.h"
#include <stdlib.h>
#include <string.h>

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

static int too_big_headers(reqparse *r, size_t add) {
  r->header_bytes += add;
  if (r->header_bytes > r->max_header_bytes) {
    r->error_status = 431;
    return 1;
  }
  return 0;
}

void reqparse_begin(reqparse *r) {
  r->url.len = r->hdrs.len = r->body.len = 0;
  r->in_value = r->nheaders = r->in_body = 0;
  r->header_bytes = 0;
}

int reqparse_url(reqparse *r, const char *at, size_t n) {
  return too_big_headers(r, n) || rp_buf_add(&r->url, at, n);
}

/* A NUL in a header would split the name\0value\0 buffer: such a request is malformed. */
static int has_nul(reqparse *r, const char *at, size_t n) {
  if (!memchr(at, 0, n)) return 0;
  r->error_status = 400;
  return 1;
}

int reqparse_header_field(reqparse *r, const char *at, size_t n) {
  if (r->in_body) return 0; /* trailers of a chunked body: dropped, never stored */
  if (too_big_headers(r, n) || has_nul(r, at, n)) return 1;
  if (r->in_value || r->nheaders == 0) {                          /* a new header starts */
    if (r->nheaders > 0 && rp_buf_add(&r->hdrs, "", 1)) return 1; /* end the previous value */
    if (++r->nheaders > r->max_headers) {
      r->error_status = 431;
      return 1;
    }
    r->in_value = 0;
  }
  return rp_buf_add(&r->hdrs, at, n);
}

int reqparse_header_value(reqparse *r, const char *at, size_t n) {
  if (r->in_body) return 0;
  if (too_big_headers(r, n) || has_nul(r, at, n)) return 1;
  if (!r->in_value) {
    if (rp_buf_add(&r->hdrs, "", 1)) return 1; /* end the name */
    r->in_value = 1;
  }
  return rp_buf_add(&r->hdrs, at, n);
}

int reqparse_headers_end(reqparse *r) {
  r->in_body = 1;
  if (r->nheaders == 0) return 0;
  /* end the last value; a last name with no value (http_parser calls nothing for an
   * empty one) gets its end and an empty value, so the buffer always holds pairs */
  return r->in_value ? rp_buf_add(&r->hdrs, "", 1) : rp_buf_add(&r->hdrs, "\0", 2);
}

int reqparse_body_too_large(reqparse *r, const http_parser *p) {
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > r->max_body) {
    r->error_status = 413;
    return 1;
  }
  return 0;
}

int reqparse_body(reqparse *r, const char *at, size_t n) {
  if (r->body.len + n > r->max_body) {
    r->error_status = 413;
    return 1;
  }
  return rp_buf_add(&r->body, at, n);
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
