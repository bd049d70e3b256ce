/* reqparse.h: the HTTP listener's request parser: Node's http_parser fed with a
 * connection's bytes, collecting each request (method, URL, headers as name\0value\0
 * pairs, body) within its limits (header bytes, header count, body size), and pausing
 * at every complete request until it was answered. This is the one parser loop: the
 * listener (mod/server_io.c) and fuzz/fuzz_listener.c both drive reqparse_feed. No Lua,
 * no libevent, no I/O.
 * Framing is strict where http_parser (built lenient) is not, as RFC 9112 asks of a
 * server: a header name must be a token (so "Content-Length : 5" is refused, not taken
 * for a length), every line of the request line, headers, chunk sizes and trailers must
 * end in CRLF (a bare LF is refused), and a line folded onto the previous header
 * (obs-fold) is refused; each is a 400 before the request reaches anyone. */
#ifndef PACER_REQPARSE_H
#define PACER_REQPARSE_H
#include <http_parser.h>
#include <stddef.h>

typedef struct rp_buf {
  char *p; /* NUL-terminated at p[len] once anything was added */
  size_t len, cap;
} rp_buf;

/* Where the parser is in the current request. */
enum { RP_IDLE, RP_HEAD, RP_BODY, RP_DONE };

typedef struct reqparse {
  http_parser parser;
  rp_buf url, hdrs, body; /* hdrs: name\0value\0 pairs */
  int phase;              /* RP_IDLE between requests, RP_HEAD in the request line and headers,
                             RP_BODY after them, RP_DONE once complete (paused until reqparse_next) */
  int expect_continue;    /* the request asked for "100 Continue" (known from RP_BODY on) */
  int error_status;       /* 400, 413 or 431 once the parse failed; the parser then stays failed */
  const char *error;      /* why, in a few words (static text) */
  int in_value, nheaders;
  size_t header_bytes;     /* URL + header names and values so far */
  const char *scan;        /* framing bytes of the current input before this were checked */
  int last_cr, line_start; /* the last framing byte was CR; was the LF that ends a line */
  size_t max_body, max_header_bytes;
  int max_headers;
} reqparse;

/* A parser for a new connection, with its limits. */
void reqparse_init(reqparse *r, size_t max_body, size_t max_header_bytes, int max_headers);
void reqparse_free(reqparse *r); /* frees the buffers */

/* What reqparse_feed found. */
typedef enum rp_result {
  RP_MORE,    /* every byte used: the request goes on in later input */
  RP_REQUEST, /* a complete request (phase RP_DONE); the bytes after it wait for reqparse_next() */
  RP_ERROR    /* malformed or over a limit: error_status and error say why; nothing more parses */
} rp_result;

/* Parses data[0 .. len): sets *used to the bytes consumed (all of them on RP_MORE, up to
 * the end of the request on RP_REQUEST, len on RP_ERROR) and says what was found. Call it
 * again with the rest after RP_REQUEST only once reqparse_next() was called; before
 * that it uses nothing and says RP_REQUEST again. Never makes no progress on RP_MORE. */
rp_result reqparse_feed(reqparse *r, const char *data, size_t len, size_t *used);
/* After the complete request was answered: the next one may be parsed. */
void reqparse_next(reqparse *r);

/* The request's method ("GET"), and whether the connection may stay open after it. */
const char *reqparse_method(const reqparse *r);
int reqparse_keep_alive(const reqparse *r);
/* Walks the headers: start with *pos = 0; returns 1 with name and value set, 0 at the end. */
int reqparse_header(const reqparse *r, size_t *pos, const char **name, const char **value);

int rp_buf_add(rp_buf *b, const char *p, size_t n); /* 0, or -1 out of memory */
void rp_buf_free(rp_buf *b);
#endif
