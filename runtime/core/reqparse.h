/* reqparse.h: the pure half of the HTTP listener's request parsing (server.c): what the
 * http_parser callbacks do with the bytes (URL, headers as name\0value\0 pairs, body)
 * and the limits they apply (header bytes, header count, body size). No Lua, no
 * libevent, no I/O: shared by server.c and fuzz/fuzz_listener.c. */
#ifndef PACER_REQPARSE_H
#define PACER_REQPARSE_H
#include <http_parser.h>
#include <stddef.h>

typedef struct rp_buf {
  char *p; /* NUL-terminated at p[len] once anything was added */
  size_t len, cap;
} rp_buf;

typedef struct reqparse {
  rp_buf url, hdrs, body; /* hdrs: name\0value\0 pairs */
  int in_value, nheaders;
  int in_body;         /* headers done: later field callbacks are chunked trailers, dropped */
  int error_status;    /* 413 or 431 when a limit stopped the parse, else 0 */
  size_t header_bytes; /* URL + header names and values so far */
  size_t max_body, max_header_bytes;
  int max_headers;
} reqparse;

int rp_buf_add(rp_buf *b, const char *p, size_t n); /* 0, or -1 out of memory */
void rp_buf_free(rp_buf *b);
void reqparse_free(reqparse *r); /* frees the buffers (limits are kept) */

/* The callbacks' bodies: 0 to go on, non-zero to stop the parser (error_status says
 * why when a limit was hit; otherwise out of memory). */
void reqparse_begin(reqparse *r); /* on_message_begin: forget the previous request */
int reqparse_url(reqparse *r, const char *at, size_t n);
int reqparse_header_field(reqparse *r, const char *at, size_t n);
int reqparse_header_value(reqparse *r, const char *at, size_t n);
int reqparse_headers_end(reqparse *r);                          /* closes the last value */
int reqparse_body_too_large(reqparse *r, const http_parser *p); /* Content-Length > max_body: 413 */
int reqparse_body(reqparse *r, const char *at, size_t n);

/* Walks the headers: start with *pos = 0; returns 1 with name and value set, 0 at the end. */
int reqparse_header(const reqparse *r, size_t *pos, const char **name, const char **value);
#endif
