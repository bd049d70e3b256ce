/* http.c: one transfer per pacer.request attempt on a shared curl multi handle wired to
 * libevent (cb_* are called by libcurl, on_* by the loop, as in curl's hiperfifo.c).
 * The Lua layer (lualib/pacer/http/attempt.lua) decides what to send and what to retry. */
#include "mod/http.h"
#include "core/list.h"
#include "mod/bind.h"
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

#define POOL_MAX 64

typedef struct http_multi {
  pacer_loop *loop;
  CURLM *multi;
  struct event *timer;
  list_node transfers;  /* in flight, for shutdown and inflight() */
  CURL *pool[POOL_MAX]; /* reset easy handles kept for reuse: init is not cheap */
  int npool;
} http_multi;

#define MAX_HEADERS (256 * 1024) /* a response's header block, all lines */
enum { TOO_LARGE_BODY = 1, TOO_LARGE_HEADERS = 2 };

typedef struct transfer {
  CURL *easy;
  task *task;
  http_multi *hm;
  struct curl_slist *headers;
  char *body, *head; /* response body; header lines of the last response */
  size_t body_len, body_cap, head_len, head_cap, max_body;
  int too_large;  /* TOO_LARGE_BODY or TOO_LARGE_HEADERS: we stopped the transfer */
  int oom;        /* our own buffer could not grow */
  list_node link; /* on hm->transfers */
  char errbuf[CURL_ERROR_SIZE];
} transfer;

typedef struct sockctx {
  struct event *ev;
} sockctx;

static void check_done(http_multi *hm);
static void complete(transfer *tr, CURLcode code);

/* --- libcurl <-> libevent glue --- */

/* Every CURLMcode goes through here: OK is 0; anything else is logged as a warning
 * naming the call, and returned. */
static CURLMcode multi_check(http_multi *hm, CURLMcode mc, const char *what) {
  if (mc != CURLM_OK) loop_log(hm->loop, PLOG_WARN, "libcurl: %s: %s", what, curl_multi_strerror(mc));
  return mc;
}

/* Drives libcurl on a socket event or its timer, then hands finished transfers back.
 * When libcurl itself fails (out of memory, an internal error, a socket callback that
 * gave up), the transfers it did not finish are failed with its reason, so that no task
 * waits forever on a multi handle in an unknown state; an unknown socket is only logged. */
static void act(http_multi *hm, curl_socket_t s, int flags) {
  int running;
  CURLMcode mc = multi_check(hm, curl_multi_socket_action(hm->multi, s, flags, &running), "curl_multi_socket_action");
  check_done(hm);
  if (mc == CURLM_OK || mc == CURLM_BAD_SOCKET) return;
  LIST_EACH(n, &hm->transfers) {
    transfer *tr = LIST_ENTRY(n, transfer, link);
    snprintf(tr->errbuf, sizeof tr->errbuf, "libcurl: %s", curl_multi_strerror(mc));
    complete(tr, mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_ABORTED_BY_CALLBACK);
  }
}

static void on_socket(evutil_socket_t fd, short what, void *arg) {
  int flags = 0;
  if (what & EV_READ) flags |= CURL_CSELECT_IN;
  if (what & EV_WRITE) flags |= CURL_CSELECT_OUT;
  act(arg, fd, flags);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  act(arg, CURL_SOCKET_TIMEOUT, 0);
}

static int cb_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  (void)e;
  http_multi *hm = userp;
  sockctx *sc = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (sc) {
      event_free(sc->ev);
      free(sc);
      multi_check(hm, curl_multi_assign(hm->multi, s, NULL), "curl_multi_assign");
    }
    return 0;
  }
  short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
  if (!sc) {
    sc = calloc(1, sizeof *sc);
    if (!sc) return -1;
    sc->ev = event_new(hm->loop->base, s, kind, on_socket, hm);
    if (!sc->ev || multi_check(hm, curl_multi_assign(hm->multi, s, sc), "curl_multi_assign") != CURLM_OK) {
      if (sc->ev) event_free(sc->ev);
      free(sc);
      return -1; /* libcurl fails the transfers on this socket */
    }
  } else {
    event_del(sc->ev);
    event_assign(sc->ev, hm->loop->base, s, kind, on_socket, hm);
  }
  event_add(sc->ev, NULL);
  return 0;
}

static int cb_timer(CURLM *m, long timeout_ms, void *userp) {
  (void)m;
  http_multi *hm = userp;
  if (timeout_ms < 0) {
    evtimer_del(hm->timer);
  } else {
    /* 0 means "soon, but not inside this callback" */
    struct timeval tv = bind_timeval_ns((int64_t)timeout_ms * 1000000);
    evtimer_add(hm->timer, &tv);
  }
  return 0;
}

/* The loop's multi handle, made on first use; NULL with *why set when it cannot be. */
static http_multi *multi_get(pacer_loop *loop, const char **why) {
  if (loop->http) return loop->http;
  *why = "out of memory";
  http_multi *hm = calloc(1, sizeof *hm);
  if (!hm) return NULL;
  hm->loop = loop;
  list_init(&hm->transfers);
  hm->multi = curl_multi_init();
  hm->timer = evtimer_new(loop->base, on_timeout, hm);
  CURLMcode mc = CURLM_OK;
  if (hm->multi && hm->timer) {
    if (mc == CURLM_OK) mc = curl_multi_setopt(hm->multi, CURLMOPT_SOCKETFUNCTION, cb_socket);
    if (mc == CURLM_OK) mc = curl_multi_setopt(hm->multi, CURLMOPT_SOCKETDATA, hm);
    if (mc == CURLM_OK) mc = curl_multi_setopt(hm->multi, CURLMOPT_TIMERFUNCTION, cb_timer);
    if (mc == CURLM_OK) mc = curl_multi_setopt(hm->multi, CURLMOPT_TIMERDATA, hm);
    if (mc != CURLM_OK) *why = curl_multi_strerror(mc);
  }
  if (!hm->multi || !hm->timer || mc != CURLM_OK) {
    if (hm->multi) curl_multi_cleanup(hm->multi);
    if (hm->timer) event_free(hm->timer);
    free(hm);
    return NULL;
  }
  /* HTTP/2 multiplexing only saves connections: without it transfers still work */
  multi_check(hm, curl_multi_setopt(hm->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX), "CURLMOPT_PIPELINING");
  loop->http = hm;
  return hm;
}

/* --- transfers --- */

static void transfer_free(transfer *tr) {
  if (tr->easy) {
    http_multi *hm = tr->hm;
    /* a handle the multi would not let go of is not reused */
    int removed =
        multi_check(hm, curl_multi_remove_handle(hm->multi, tr->easy), "curl_multi_remove_handle") == CURLM_OK;
    if (removed && hm->npool < POOL_MAX) {
      curl_easy_reset(tr->easy); /* keeps nothing of this request but reusable buffers */
      hm->pool[hm->npool++] = tr->easy;
    } else {
      curl_easy_cleanup(tr->easy);
    }
  }
  list_remove(&tr->link);
  curl_slist_free_all(tr->headers);
  free(tr->body);
  free(tr->head);
  free(tr);
}

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

/* Pushes the header block as a table with lower-cased names; repeats joined by ", ". */
static void push_headers(lua_State *L, transfer *tr) {
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
    }
    p = next;
  }
  bind_headers_end(L);
}

/* Pushes the outcome on the task's thread and queues it: status, headers, body, info
 * or nil, {kind=, message=, sent=}. */
static void complete(transfer *tr, CURLcode code) {
  lua_State *L = task_thread(tr->task);
  lua_checkstack(L, 8);
  curl_off_t total = 0, ttfb = 0, conn = 0, reqsize = 0;
  curl_easy_getinfo(tr->easy, CURLINFO_TOTAL_TIME_T, &total);
  curl_easy_getinfo(tr->easy, CURLINFO_STARTTRANSFER_TIME_T, &ttfb);
  curl_easy_getinfo(tr->easy, CURLINFO_CONNECT_TIME_T, &conn);
  long reqbytes = 0, nconnects = 0, version = 0;
  curl_easy_getinfo(tr->easy, CURLINFO_REQUEST_SIZE, &reqbytes);
  curl_easy_getinfo(tr->easy, CURLINFO_NUM_CONNECTS, &nconnects);
  curl_easy_getinfo(tr->easy, CURLINFO_HTTP_VERSION, &version);
  (void)reqsize;
  int n;
  if (code == CURLE_OK && !tr->too_large) {
    long status = 0;
    curl_easy_getinfo(tr->easy, CURLINFO_RESPONSE_CODE, &status);
    lua_pushinteger(L, status);
    push_headers(L, tr);
    lua_pushlstring(L, tr->body ? tr->body : "", tr->body_len);
    lua_createtable(L, 0, 6);
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
  task *t = tr->task;
  transfer_free(tr);
  task_wake(t, n);
}

static void check_done(http_multi *hm) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(hm->multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    transfer *tr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&tr);
    complete(tr, msg->data.result);
  }
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

/* NULL when url is an http or https URL libcurl can parse, else why not (static text). */
static const char *url_problem(const char *url) {
  CURLU *u = curl_url();
  if (!u) return "out of memory";
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
  char *scheme = NULL;
  if (uc == CURLUE_OK) curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  int bad_scheme = scheme && strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0;
  curl_free(scheme);
  curl_url_cleanup(u);
  if (uc != CURLUE_OK) return curl_url_strerror(uc);
  return bad_scheme ? "only http and https URLs are supported" : NULL;
}

/* check_url(url) -> nil | why: the request's URL checked when it is prepared, so a bad
 * one raises before it takes a limiter slot. */
static int l_check_url(lua_State *L) {
  const char *bad = url_problem(luaL_checkstring(L, 1));
  if (!bad) return 0;
  lua_pushstring(L, bad);
  return 1;
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
  lua_pop(L, 3);

  const char *bad = url_problem(url);
  if (bad) return fail_now(L, "url", bad);

  const char *why = NULL;
  http_multi *hm = multi_get(loop, &why);
  if (!hm) return luaL_error(L, "pacer.http: cannot set up libcurl: %s", why);
  transfer *tr = calloc(1, sizeof *tr);
  if (!tr) return luaL_error(L, "pacer.http: out of memory");
  tr->hm = hm;
  tr->task = t;
  tr->max_body = (size_t)(max_body > 0 ? max_body : 1);
  tr->easy = hm->npool > 0 ? hm->pool[--hm->npool] : curl_easy_init();
  list_push(&hm->transfers, &tr->link);
  if (!tr->easy) {
    transfer_free(tr);
    return luaL_error(L, "pacer.http: out of memory");
  }
  /* Headers: collected before any raise can happen below this point. */
  lua_getfield(L, 1, "headers");
  if (lua_istable(L, -1)) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      const char *h = lua_tostring(L, -1);
      struct curl_slist *s = h ? curl_slist_append(tr->headers, h) : tr->headers;
      if (s) tr->headers = s;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (body) {
    struct curl_slist *s = curl_slist_append(tr->headers, "Expect:");
    if (s) tr->headers = s;
  }

  CURL *e = tr->easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, tr);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, tr->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, cb_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, tr);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, cb_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, tr);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ctimeout);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, follow > 0 ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, follow);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  /* waiting for a connection to multiplex on only helps where HTTP/2 can be had (TLS,
   * ALPN); for http:// it serialised requests behind servers that close after each */
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, strncasecmp(url, "https:", 6) == 0 ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_USERAGENT, "pacer/" PACER_VERSION);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, tr->headers);
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
  CURLMcode mc = curl_multi_add_handle(hm->multi, e);
  if (mc != CURLM_OK) { /* a failure of the world (memory): an outcome, not a raise */
    char msg[128];
    snprintf(msg, sizeof msg, "libcurl: curl_multi_add_handle: %s", curl_multi_strerror(mc));
    transfer_free(tr);
    return fail_now(L, mc == CURLM_OUT_OF_MEMORY ? "memory" : "other", msg);
  }
  return task_suspend(L);
}

void http_shutdown(pacer_loop *loop) {
  http_multi *hm = loop->http;
  if (!hm) return;
  list_node *n;
  while ((n = list_first(&hm->transfers))) transfer_free(LIST_ENTRY(n, transfer, link));
  while (hm->npool > 0) curl_easy_cleanup(hm->pool[--hm->npool]);
  multi_check(hm, curl_multi_cleanup(hm->multi), "curl_multi_cleanup");
  event_free(hm->timer);
  free(hm);
  loop->http = NULL;
}

/* Requests in flight (for progress lines). */
static int l_inflight(lua_State *L) {
  pacer_loop *loop = loop_get(L);
  lua_pushinteger(L, loop->http ? (lua_Integer)list_len(&loop->http->transfers) : 0);
  return 1;
}

int luaopen_pacer_http(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"request", l_http}, {"inflight", l_inflight}, {"check_url", l_check_url}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
