/* http.c: pacer.c.http, one transfer per pacer.request attempt on the loop's multi handle
 * (http_multi.c): the options it is set up from, the answer it collects, the outcome its
 * task gets. The Lua layer (lualib/pacer/http/attempt.lua) decides what to send and what
 * to retry. */
#include "mod/http.h"
#include "core/quota.h"
#include "mod/bind.h"
#include "mod/http_multi.h"
#include "sched/loop.h"
#include "sched/task.h"
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int grow(char **buf, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap : 1024;
  while (n < need) n *= 2;
  char *p = realloc(*buf, n);
  if (!p) return -1;
  *buf = p;
  *cap = n;
  return 0;
}

static size_t cb_body(char *data, size_t size, size_t n, void *arg) {
  transfer *tr = arg;
  size_t len = size * n;
  if (tr->body_len + len > tr->max_body) {
    tr->too_large = TOO_LARGE_BODY;
    return 0; /* makes curl stop with CURLE_WRITE_ERROR */
  }
  if (grow(&tr->body, &tr->body_cap, tr->body_len + len) < 0) return tr->oom = 1, 0;
  memcpy(tr->body + tr->body_len, data, len);
  tr->body_len += len;
  return len;
}

static size_t cb_header(char *data, size_t size, size_t n, void *arg) {
  transfer *tr = arg;
  size_t len = size * n;
  /* a new status line (after a 1xx or a redirect) starts a new header block */
  if (len > 5 && strncmp(data, "HTTP/", 5) == 0) tr->head_len = 0;
  /* below libcurl's own 300 KB, so a hostile header block is ours to name: too_large */
  if (tr->head_len + len > MAX_HEADERS) return tr->too_large = TOO_LARGE_HEADERS, 0;
  if (grow(&tr->head, &tr->head_cap, tr->head_len + len) < 0) return tr->oom = 1, 0;
  memcpy(tr->head + tr->head_len, data, len);
  tr->head_len += len;
  return len;
}

/* The kind of a failed transfer. The request's own URL was checked when it was prepared
 * (check_url), so a URL or protocol refusal here is the server's doing: a redirect to
 * file://, an HTTP/0.9 or non-HTTP answer. libcurl reports a header line over its 100 KB
 * limit as out of memory; our own allocation failures set `oom`. */
static const char *error_kind(const transfer *tr, CURLcode c, long oserr) {
  if (tr->too_large) return "too_large";
  if (tr->oom) return "memory";
  if (oserr == EMFILE || oserr == ENFILE) return "other"; /* ours to fix, not the network's: no retry */
  switch (c) {
  case CURLE_OPERATION_TIMEDOUT: return "timeout";
  case CURLE_COULDNT_CONNECT: return "connect";
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY: return "dns";
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS: return "tls";
  case CURLE_GOT_NOTHING:
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_PARTIAL_FILE: return "closed";
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_BAD_CONTENT_ENCODING:
  case CURLE_TOO_MANY_REDIRECTS: return "protocol";
  case CURLE_OUT_OF_MEMORY: return "too_large";
  default: return "other";
  }
}

/* Pushes the header block as a table with lower-cased names; repeats joined by ", ".
 * Returns whether a quota header is among them. */
static int push_headers(lua_State *L, transfer *tr) {
  int quota = 0;
  bind_headers_begin(L);
  const char *p = tr->head, *end = tr->head + tr->head_len;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *next = eol ? eol + 1 : end;
    const char *line_end = eol ? eol : end;
    if (line_end > p && line_end[-1] == '\r') line_end--;
    const char *colon = memchr(p, ':', (size_t)(line_end - p));
    if (colon && colon > p && strncmp(p, "HTTP/", 5) != 0) {
      size_t n = (size_t)(colon - p);
      if (n > 256) n = 256; /* longer names are cut, not trusted */
      const char *v = colon + 1;
      while (v < line_end && (*v == ' ' || *v == '\t')) v++;
      const char *ve = line_end;
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      bind_headers_add(L, p, n, v, (size_t)(ve - v));
      quota = quota || quota_header_name(p, n);
    }
    p = next;
  }
  bind_headers_end(L);
  return quota;
}

/* Pushes the outcome on the task's thread and queues it: status, headers, body, info
 * or nil, {kind=, message=, sent=}. */
void http_transfer_complete(transfer *tr, CURLcode code) {
  lua_State *L = task_thread(tr->task);
  lua_checkstack(L, 8);
  curl_off_t total = 0, ttfb = 0, conn = 0;
  curl_easy_getinfo(tr->easy, CURLINFO_TOTAL_TIME_T, &total);
  curl_easy_getinfo(tr->easy, CURLINFO_STARTTRANSFER_TIME_T, &ttfb);
  curl_easy_getinfo(tr->easy, CURLINFO_CONNECT_TIME_T, &conn);
  long reqbytes = 0, nconnects = 0, version = 0;
  curl_easy_getinfo(tr->easy, CURLINFO_REQUEST_SIZE, &reqbytes);
  curl_easy_getinfo(tr->easy, CURLINFO_NUM_CONNECTS, &nconnects);
  curl_easy_getinfo(tr->easy, CURLINFO_HTTP_VERSION, &version);
  /* never handed to libcurl: what a pooled handle reports is its last request's */
  if (!tr->added) total = ttfb = conn = reqbytes = nconnects = version = 0;
  /* a failure, or a connection made (where a retry on a dead one would show): the
   * handle is reset before its next request (see http_transfer_free) */
  if (code != CURLE_OK || nconnects > 0) tr->plain = 0;
  int n;
  long status = 0;
  if (code == CURLE_OK && !tr->too_large) {
    curl_easy_getinfo(tr->easy, CURLINFO_RESPONSE_CODE, &status);
    lua_pushinteger(L, status);
    int quota = push_headers(L, tr);
    lua_pushlstring(L, tr->body ? tr->body : "", tr->body_len);
    lua_createtable(L, 0, 7);
    bind_set_bool(L, "quota_headers", quota); /* (no parse_quota call for an answer without) */
    bind_set_num(L, "elapsed", (double)total / 1e6);
    bind_set_num(L, "ttfb", (double)ttfb / 1e6);
    bind_set_num(L, "connect", (double)conn / 1e6);
    bind_set_bool(L, "reused", nconnects == 0);
    bind_set_str(L, "http_version",
                 version == CURL_HTTP_VERSION_2_0   ? "2"
                 : version == CURL_HTTP_VERSION_1_0 ? "1.0"
                                                    : "1.1");
    n = 4;
  } else {
    long oserr = 0;
    curl_easy_getinfo(tr->easy, CURLINFO_OS_ERRNO, &oserr);
    char why[CURL_ERROR_SIZE + 64];
    if (tr->too_large == TOO_LARGE_BODY)
      snprintf(why, sizeof why, "response body larger than max_body (%d bytes)", (int)tr->max_body);
    else if (tr->too_large == TOO_LARGE_HEADERS)
      snprintf(why, sizeof why, "response headers larger than %d KB", MAX_HEADERS / 1024);
    else if (code == CURLE_OUT_OF_MEMORY)
      snprintf(why, sizeof why, "a response header line is larger than libcurl takes (100 KB)");
    else if (oserr == EMFILE || oserr == ENFILE)
      snprintf(why, sizeof why, "out of file descriptors (%s): raise `ulimit -n` or lower the concurrency",
               strerror((int)oserr));
    else
      snprintf(why, sizeof why, "%s", tr->errbuf[0] ? tr->errbuf : curl_easy_strerror(code));
    n = bind_push_error(L, error_kind(tr, code, oserr), why);
    bind_set_bool(L, "sent", reqbytes > 0); /* was any of the request written? */
    bind_set_num(L, "elapsed", (double)total / 1e6);
  }
  sendpace_answered(&tr->paced, status == 429);
  task *t = tr->task;
  http_transfer_free(tr);
  task_wake(t, n);
}

/* Right before the request is written (the connection is up or reused): where its
 * limiters' send-side schedule is kept (mod/sendpace.c). */
static int cb_prereq(void *arg, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port) {
  (void)conn_primary_ip, (void)conn_local_ip, (void)conn_primary_port, (void)conn_local_port;
  transfer *tr = arg;
  if (sendpace_send(&tr->paced) >= 0) return CURL_PREREQFUNC_OK;
  tr->held = 1; /* its slot is not near: check_done (http_multi.c) holds it again */
  return CURL_PREREQFUNC_ABORT;
}

/* Only set for transfers paced by a burst of 1 (libcurl formats its verbose text for
 * this callback, a cost those few can bear): the time the request was really written. */
static int cb_debug(CURL *e, curl_infotype type, char *data, size_t size, void *arg) {
  (void)e, (void)data, (void)size;
  if (type == CURLINFO_HEADER_OUT) sendpace_wire(&((transfer *)arg)->paced);
  return 0;
}

/* A held transfer's slot is near, or libcurl would not take it: its outcome. */
static void start_or_fail(transfer *tr) {
  CURLMcode mc = http_transfer_start(tr);
  if (mc != CURLM_OK) http_transfer_complete(tr, mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT);
}

static void on_hold(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  start_or_fail(arg);
}

CURLMcode http_transfer_start(transfer *tr) {
  int64_t w = sendpace_hold(&tr->paced);
  if (w > 0) {
    if (!tr->hold) tr->hold = evtimer_new(tr->hm->loop->base, on_hold, tr);
    struct timeval tv = bind_timeval_ns(w);
    if (tr->hold && evtimer_add(tr->hold, &tv) == 0) return CURLM_OK;
    /* (no timer: it goes now, and the wire check holds what it can) */
  }
  sendpace_queue(&tr->paced);
  CURLMcode mc = curl_multi_add_handle(tr->hm->multi, tr->easy);
  if (mc == CURLM_OK) tr->added = 1;
  if (mc != CURLM_OK) /* a failure of the world (memory): an outcome, not a raise */
    snprintf(tr->errbuf, sizeof tr->errbuf, "libcurl: curl_multi_add_handle: %s", curl_multi_strerror(mc));
  return mc;
}

/* Is line a header `name` (n bytes)? "Name:" and libcurl's "Name;" (sent empty) both are. */
static int is_header(const char *line, const char *name, size_t n) {
  return strncasecmp(line, name, n) == 0 && (line[n] == ':' || line[n] == ';');
}

/* Appends a line to the request's headers (a NULL one, or no memory for it: none). */
static void add_line(transfer *tr, const char *line) {
  struct curl_slist *s = line ? curl_slist_append(tr->headers, line) : NULL;
  if (s) tr->headers = s;
}

static long opt_ms(lua_State *L, const char *k, double def) {
  lua_getfield(L, 1, k);
  double v = luaL_optnumber(L, -1, def);
  lua_pop(L, 1);
  if (!(v > 0) || v > 1e7) luaL_error(L, "pacer.http: '%s' must be a positive number of seconds", k);
  return (long)(v * 1000 + 0.5);
}

/* nil, {kind=, message=, sent = false}: a transfer that never started */
static int fail_now(lua_State *L, const char *kind, const char *msg) {
  bind_push_error(L, kind, msg);
  bind_set_bool(L, "sent", 0);
  return 2;
}

/* Parses url into u: NULL when it is an http or https URL libcurl can parse, else why
 * not (static text). */
static const char *url_parse(CURLU *u, const char *url) {
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
  char *scheme = NULL;
  if (uc == CURLUE_OK) curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  int bad_scheme = scheme && strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0;
  curl_free(scheme);
  if (uc != CURLUE_OK) return curl_url_strerror(uc);
  return bad_scheme ? "only http and https URLs are supported" : NULL;
}

/* url_parse's verdict on a URL not parsed before (a redirect's). */
static const char *url_problem(const char *url) {
  CURLU *u = curl_url();
  if (!u) return "out of memory";
  const char *bad = url_parse(u, url);
  curl_url_cleanup(u);
  return bad;
}

/* A parsed URL, kept by prepare() for every request to it: given to libcurl as
 * CURLOPT_CURLU, a transfer copies it instead of parsing the URL and printing it back
 * (7.88: 8 % of a GET). */
#define PACER_URL "pacer.url"
typedef struct {
  CURLU *h;
} url_handle;

static int url_gc(lua_State *L) {
  url_handle *u = luaL_checkudata(L, 1, PACER_URL);
  curl_url_cleanup(u->h);
  u->h = NULL;
  return 0;
}

/* parse_url(url) -> handle | nil, why: a URL checked when its request is prepared,
 * before it takes a limiter slot, and its parse kept. */
static int l_parse_url(lua_State *L) {
  const char *url = luaL_checkstring(L, 1);
  url_handle *u = lua_newuserdatauv(L, sizeof *u, 0); /* made empty first: a raise leaks nothing */
  u->h = NULL;
  luaL_setmetatable(L, PACER_URL);
  u->h = curl_url();
  const char *bad = u->h ? url_parse(u->h, url) : "out of memory";
  if (!bad) return 1;
  lua_pushnil(L);
  lua_pushstring(L, bad);
  return 2;
}

/* The options every request has alike: set once on a new or reset handle. */
static void set_standing(const http_multi *hm, CURL *e) {
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, cb_body);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, cb_header);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, cb_prereq);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  /* decodes what the Accept-Encoding line l_http adds offers */
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  if (!hm->proxy_env) { /* none to find: spares libcurl five getenv scans a request */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "");
  }
}

/* http{url=, method=, headers={"Name: value", ...}, body=, timeout=, connect_timeout=,
 *      follow=N, verify=bool, max_body=bytes}
 * -> status, headers, body, info | nil, {kind=, message=, sent=}
 * Waits (yields) for the answer. The URL is checked before anything is sent. */
static int l_http(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  task *t = task_check_current(L, "pacer.request");
  pacer_loop *loop = loop_get(L);
  lua_getfield(L, 1, "url");
  const char *url = luaL_checkstring(L, -1);
  lua_getfield(L, 1, "method");
  const char *method = luaL_optstring(L, -1, "GET");
  lua_getfield(L, 1, "body");
  size_t blen = 0;
  const char *body = lua_isnoneornil(L, -1) ? NULL : luaL_checklstring(L, -1, &blen);
  long timeout = opt_ms(L, "timeout", 30), ctimeout = opt_ms(L, "connect_timeout", 10);
  lua_getfield(L, 1, "follow");
  long follow = (long)luaL_optinteger(L, -1, 0);
  lua_getfield(L, 1, "verify");
  int verify = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  lua_getfield(L, 1, "max_body");
  lua_Integer max_body = luaL_optinteger(L, -1, 64 * 1024 * 1024);
  /* url_checked: the very string prepare() had check_url pass (a value, not a flag, so a
   * table inheriting it with another url, as a redirect's could, is checked again) */
  lua_getfield(L, 1, "url_checked");
  int checked = lua_rawequal(L, -1, 2);
  lua_getfield(L, 1, "url_handle"); /* (prepare's parse of that very string) */
  url_handle *parsed = checked ? luaL_testudata(L, -1, PACER_URL) : NULL;
  lua_pop(L, 5); /* (a handle stays alive: r holds it, and r is this call's argument) */

  const char *bad = checked ? NULL : url_problem(url);
  if (bad) return fail_now(L, "url", bad);

  const char *why = NULL;
  http_multi *hm = http_multi_get(loop, &why);
  if (!hm) return luaL_error(L, "pacer.http: cannot set up libcurl: %s", why);
  transfer *tr = calloc(1, sizeof *tr);
  if (!tr) return luaL_error(L, "pacer.http: out of memory");
  tr->hm = hm;
  tr->task = t;
  tr->max_body = (size_t)(max_body > 0 ? max_body : 1);
  int set = 0;
  if (hm->npool > 0) {
    hm->npool--;
    tr->easy = hm->pool[hm->npool].easy;
    set = hm->pool[hm->npool].set;
    tr->uses = hm->pool[hm->npool].uses + 1;
  } else {
    tr->easy = curl_easy_init();
    tr->uses = 1;
  }
  http_transfer_track(hm, tr);
  if (!tr->easy) {
    http_transfer_free(tr);
    return luaL_error(L, "pacer.http: out of memory");
  }
  sendpace_claim(loop, t, &tr->paced);
  /* Headers: collected before any raise can happen below this point. */
  lua_getfield(L, 1, "headers");
  int own_ua = 0, own_ae = 0;
  if (lua_istable(L, -1)) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      const char *h = lua_tostring(L, -1);
      if (h) own_ua |= is_header(h, "User-Agent", 10), own_ae |= is_header(h, "Accept-Encoding", 15);
      add_line(tr, h);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  /* pacer's own lines, unless the request has its own: given to libcurl as lines of the
   * request, not options (7.88 formats the lines it makes itself twice, byte by byte:
   * these two cost 3 % of a GET that way) */
  if (!own_ua) add_line(tr, "User-Agent: pacer/" PACER_VERSION);
  if (!own_ae && hm->accept_encoding[0]) add_line(tr, hm->accept_encoding);
  if (body) add_line(tr, "Expect:");

  CURL *e = tr->easy;
  if (!set) set_standing(hm, e);
  /* every option from here on is set by every request, or makes it not plain */
  curl_easy_setopt(e, CURLOPT_URL, url); /* (with a handle too: libcurl then takes its text as is) */
  curl_easy_setopt(e, CURLOPT_CURLU, parsed && parsed->h ? parsed->h : NULL);
  curl_easy_setopt(e, CURLOPT_PRIVATE, tr);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, tr->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, tr);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, tr);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, tr);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ctimeout);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, follow > 0 ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, follow);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
  /* waiting for a connection to multiplex on only helps where HTTP/2 can be had (TLS,
   * ALPN); for http:// it serialised requests behind servers that close after each */
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, strncasecmp(url, "https:", 6) == 0 ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, tr->headers);
  int precise = sendpace_precise(&tr->paced);
  tr->plain = !precise && !body && strcmp(method, "GET") == 0;
  if (precise) {
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, cb_debug);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, tr);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
  }
  if (body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  } else if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, "");
  } else if (strcmp(method, "GET") != 0) {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  CURLMcode mc = http_transfer_start(tr);
  if (mc != CURLM_OK) {
    char msg[CURL_ERROR_SIZE];
    snprintf(msg, sizeof msg, "%s", tr->errbuf);
    http_transfer_free(tr);
    return fail_now(L, mc == CURLM_OUT_OF_MEMORY ? "memory" : "other", msg);
  }
  return task_suspend(L);
}

/* inflight() -> requests in flight (for progress lines) */
static int l_inflight(lua_State *L) {
  lua_pushinteger(L, http_multi_inflight(loop_get(L)));
  return 1;
}

int luaopen_pacer_http(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"request", l_http}, {"inflight", l_inflight}, {"parse_url", l_parse_url}, {NULL, NULL}};
  static const luaL_Reg url_meta[] = {{"__gc", url_gc}, {NULL, NULL}};
  bind_createmeta(L, PACER_URL, NULL, url_meta);
  luaL_newlib(L, funcs);
  return 1;
}
