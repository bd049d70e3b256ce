/* fuzz_listener: the HTTP listener's request parsing, runtime/core/reqparse.c on Node's
 * http_parser (libhttp-parser, as runtime/mod/server.c links it), with callbacks that do
 * exactly what server.c's do and a feed loop that mirrors server.c's feed(): pause at
 * each complete request, answer it at once (keep-alive resumes the parser on the rest
 * of the buffer, otherwise the connection closes), stop at the first parser error.
 * Input: byte 0 picks the limits: even = server.c's defaults (16 KiB of header bytes,
 * 100 headers, 1 MiB body), odd = small ones from bytes 1..3 (pacer.serve lets a
 * script set them); byte 4 seeds how the bytes are cut into reads; the rest is what the
 * client sends (pipelined requests, chunked bodies, trailers, garbage).
 * Each input is parsed twice: in one read, and cut into pseudo-random reads of 1..N
 * bytes, as TCP may deliver it.
 * Invariants: no read or write out of bounds (ASan), no UB; at every complete request
 * the headers walk (reqparse_header, as dispatch() does) yields exactly nheaders
 * name/value pairs ending at hdrs.len; header bytes, header count and body size are
 * within the limits; server.c's feed() never spins (no progress without an error or
 * a pause); and both ways of reading give the same requests (method, target, headers,
 * body) and both end in an error or neither (413/431 may legitimately become 400). */
#include "core/reqparse.h"
#include "fuzz.h"
#include <strings.h>

FZ_COUNTERS(parser_states, 8192);

typedef struct conn {
  http_parser parser;
  reqparse rp;
  int busy, closing, status, nreq, continues;
  uint64_t hash;
} conn;

static void note(const http_parser *p, unsigned what) {
  unsigned k = (what * 131u + p->state) * 131u + p->header_state;
  parser_states[(k * 8u + (p->flags & 7u)) % sizeof parser_states]++;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
  return (h ^ 0xff) * 1099511628211ULL; /* a field separator */
}

/* the headers as dispatch() walks them must be exactly what was counted */
static void check_headers(const conn *c) {
  const reqparse *r = &c->rp;
  const char *h, *v;
  size_t pos = 0;
  int n = 0;
  while (reqparse_header(r, &pos, &h, &v)) {
    n++;
    if (pos > r->hdrs.len) FZ_FAIL("header walk ran %zu bytes past hdrs (len %zu)", pos - r->hdrs.len, r->hdrs.len);
  }
  if (n != r->nheaders || pos != r->hdrs.len)
    FZ_FAIL("header walk: %d pairs ending at %zu, but nheaders %d and hdrs.len %zu", n, pos, r->nheaders, r->hdrs.len);
  if (r->nheaders > r->max_headers) FZ_FAIL("%d headers > max %d", r->nheaders, r->max_headers);
  if (r->header_bytes > r->max_header_bytes)
    FZ_FAIL("%zu header bytes > max %zu", r->header_bytes, r->max_header_bytes);
  if (r->url.len > r->header_bytes) FZ_FAIL("URL of %zu bytes but %zu header bytes", r->url.len, r->header_bytes);
  if (r->body.len > r->max_body) FZ_FAIL("body %zu > max %zu", r->body.len, r->max_body);
}

/* --- server.c's callbacks, minus libevent (the header timer, the 100 Continue write) --- */

static int on_message_begin(http_parser *p) {
  note(p, 1);
  reqparse_begin(&((conn *)p->data)->rp);
  return 0;
}
static int on_url(http_parser *p, const char *at, size_t n) {
  note(p, 2);
  return reqparse_url(&((conn *)p->data)->rp, at, n);
}
static int on_header_field(http_parser *p, const char *at, size_t n) {
  note(p, 3);
  return reqparse_header_field(&((conn *)p->data)->rp, at, n);
}
static int on_header_value(http_parser *p, const char *at, size_t n) {
  note(p, 4);
  return reqparse_header_value(&((conn *)p->data)->rp, at, n);
}
static int on_headers_complete(http_parser *p) {
  conn *c = p->data;
  note(p, 5);
  if (reqparse_headers_end(&c->rp)) return 1;
  if (reqparse_body_too_large(&c->rp, p)) return -1;
  const char *h, *v;
  for (size_t pos = 0; reqparse_header(&c->rp, &pos, &h, &v);)
    if (strcasecmp(h, "expect") == 0 && strcasecmp(v, "100-continue") == 0) c->continues++;
  check_headers(c);
  return 0;
}
static int on_body(http_parser *p, const char *at, size_t n) {
  note(p, 6);
  return reqparse_body(&((conn *)p->data)->rp, at, n);
}
static int on_message_complete(http_parser *p) { /* dispatch(): hash what Lua would get */
  conn *c = p->data;
  note(p, 7);
  check_headers(c);
  const char *m = http_method_str((enum http_method)p->method), *h, *v;
  uint64_t x = fnv(14695981039346656037ULL, m, strlen(m));
  x = fnv(x, c->rp.url.p ? c->rp.url.p : "", c->rp.url.len);
  for (size_t pos = 0; reqparse_header(&c->rp, &pos, &h, &v);) {
    x = fnv(x, h, strlen(h));
    x = fnv(x, v, strlen(v));
  }
  x = fnv(x, c->rp.body.p ? c->rp.body.p : "", c->rp.body.len);
  c->hash = fnv(c->hash, &x, sizeof x);
  c->nreq++;
  c->busy = 1;
  http_parser_pause(p, 1);
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

/* server.c's feed() on the bytes received so far (data[*off .. avail)) */
static void feed(conn *c, const uint8_t *data, size_t *off, size_t avail) {
  while (!c->closing) {
    if (c->busy) { /* the handler answers at once: respond() */
      c->busy = 0;
      if (!http_should_keep_alive(&c->parser)) {
        c->closing = 1;
        return;
      }
      http_parser_pause(&c->parser, 0);
    }
    size_t len = avail - *off;
    if (len == 0) return;
    size_t used = http_parser_execute(&c->parser, &settings, (const char *)data + *off, len);
    enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
    note(&c->parser, 8 + (unsigned)err);
    if (used > len) FZ_FAIL("http_parser used %zu of %zu bytes", used, len);
    if (err == HPE_PAUSED) {
      *off += used;
      continue;
    }
    if (err != HPE_OK) {
      c->status = c->rp.error_status ? c->rp.error_status : 400;
      c->closing = 1;
      return;
    }
    if (used == 0) FZ_FAIL("feed() would spin: no byte of %zu used, no error, no pause", len);
    *off += used;
  }
}

static void run(conn *c, const reqparse *limits, const uint8_t *data, size_t size, uint32_t seed, unsigned maxseg) {
  memset(c, 0, sizeof *c);
  c->rp.max_body = limits->max_body;
  c->rp.max_header_bytes = limits->max_header_bytes;
  c->rp.max_headers = limits->max_headers;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  size_t off = 0, avail = 0;
  while (avail < size && !c->closing) {
    size_t seg = size - avail;
    if (maxseg) {
      seed = seed * 1103515245u + 12345u;
      size_t s = 1 + (seed >> 8) % maxseg;
      if (s < seg) seg = s;
    }
    avail += seg;
    feed(c, data, &off, avail);
  }
  reqparse_free(&c->rp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 5) return 0;
  reqparse limits = {0};
  if (data[0] & 1) {
    limits.max_header_bytes = 1 + data[1] * 4u;
    limits.max_headers = 1 + data[2] % 16;
    limits.max_body = data[3] * 8u;
  } else {
    limits.max_header_bytes = 16384;
    limits.max_headers = 100;
    limits.max_body = 1024 * 1024;
  }
  static const unsigned maxsegs[] = {1, 2, 3, 5, 8, 16, 64, 700};
  unsigned maxseg = maxsegs[data[4] % 8];
  uint32_t seed = data[4];
  data += 5, size -= 5;

  conn whole, cut;
  run(&whole, &limits, data, size, 0, 0);
  run(&cut, &limits, data, size, seed, maxseg);
  if (whole.nreq != cut.nreq || whole.hash != cut.hash || (whole.status != 0) != (cut.status != 0) ||
      whole.continues != cut.continues)
    FZ_FAIL("one read: %d requests, status %d; reads of 1..%u bytes: %d requests, status %d%s", whole.nreq,
            whole.status, maxseg, cut.nreq, cut.status, whole.hash != cut.hash ? " (requests differ)" : "");
  return 0;
}
