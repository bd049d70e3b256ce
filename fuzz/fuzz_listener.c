/* fuzz_listener: the HTTP listener's request parser, runtime/core/reqparse.c on Node's
 * http_parser, driven as runtime/mod/server_io.c drives it: reqparse_feed on the bytes
 * received so far, each complete request answered at once (reqparse_next on keep-alive,
 * otherwise the connection closes), stop at the first error. There is no copy of the
 * listener's glue here: this is the parser loop the listener runs.
 * Input: byte 0 picks the limits: even = the listener's defaults (16 KiB of header bytes,
 * 100 headers, 1 MiB body), odd = small ones from bytes 1..3 (pacer.serve lets a
 * script set them); byte 4 seeds how the bytes are cut into reads; the rest is what the
 * client sends (pipelined requests, chunked bodies, trailers, garbage).
 * Each input is parsed twice: in one read, and cut into pseudo-random reads of 1..N
 * bytes, as TCP may deliver it.
 * Invariants: no read or write out of bounds (ASan), no UB; at every complete request
 * the headers walk (reqparse_header, as server_dispatch does) yields exactly nheaders
 * name/value pairs ending at hdrs.len; header bytes, header count and body size are
 * within the limits; reqparse_feed uses no more than it was given, all of it unless it
 * stops at a request or an error, and never nothing on RP_MORE (the listener would
 * spin); an error carries a status and a reason; and both ways of reading give the same
 * requests (method, target, headers, body, Expect) and both end in an error or neither
 * (413/431 may legitimately become 400). */
#include "core/reqparse.h"
#include "fuzz.h"

FZ_COUNTERS(parser_states, 8192);

typedef struct conn {
  reqparse rp;
  int closing, status, nreq, continues;
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

/* the headers as server_dispatch walks them must be exactly what was counted */
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

/* server_dispatch and the answer: hash what Lua would get, then keep-alive or close */
static void answer(conn *c) {
  check_headers(c);
  const char *m = reqparse_method(&c->rp), *h, *v;
  uint64_t x = fnv(14695981039346656037ULL, m, strlen(m));
  x = fnv(x, c->rp.url.p ? c->rp.url.p : "", c->rp.url.len);
  for (size_t pos = 0; reqparse_header(&c->rp, &pos, &h, &v);) {
    x = fnv(x, h, strlen(h));
    x = fnv(x, v, strlen(v));
  }
  x = fnv(x, c->rp.body.p ? c->rp.body.p : "", c->rp.body.len);
  c->hash = fnv(c->hash, &x, sizeof x);
  c->nreq++;
  c->continues += c->rp.expect_continue;
  if (reqparse_keep_alive(&c->rp))
    reqparse_next(&c->rp);
  else
    c->closing = 1;
}

/* server_io.c's feed() on the bytes received so far (data[*off .. avail)) */
static void feed(conn *c, const uint8_t *data, size_t *off, size_t avail) {
  while (!c->closing && *off < avail) {
    size_t len = avail - *off, used = 0;
    rp_result res = reqparse_feed(&c->rp, (const char *)data + *off, len, &used);
    note(&c->rp.parser, 8 + (unsigned)res * 16 + c->rp.phase);
    if (used > len) FZ_FAIL("reqparse_feed used %zu of %zu bytes", used, len);
    *off += used;
    if (res == RP_ERROR) {
      if (!c->rp.error_status || !c->rp.error) FZ_FAIL("an error without a status or a reason");
      c->status = c->rp.error_status;
      c->closing = 1;
    } else if (res == RP_REQUEST) {
      if (c->rp.phase != RP_DONE) FZ_FAIL("a request in phase %d", c->rp.phase);
      size_t again = 1;
      if (reqparse_feed(&c->rp, (const char *)data + *off, avail - *off, &again) != RP_REQUEST || again != 0)
        FZ_FAIL("an unanswered request let the parser go on");
      answer(c);
    } else if (used == 0) {
      FZ_FAIL("feed() would spin: no byte of %zu used, no error, no request", len);
    }
  }
}

static void run(conn *c, const reqparse *limits, const uint8_t *data, size_t size, uint32_t seed, unsigned maxseg) {
  memset(c, 0, sizeof *c);
  reqparse_init(&c->rp, limits->max_body, limits->max_header_bytes, limits->max_headers);
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
