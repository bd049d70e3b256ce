/* http_multi.c: libcurl's multi socket API on the loop, transfers in flight, and a pool
 * of easy handles (see http_multi.h). */
#include "mod/http_multi.h"
#include "mod/bind.h"
#include "mod/http.h"
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sockctx {
  struct event *ev;
} sockctx;

/* --- libcurl <-> libevent glue --- */

CURLMcode http_multi_check(http_multi *hm, CURLMcode mc, const char *what) {
  if (mc != CURLM_OK) loop_log(hm->loop, PLOG_WARN, "libcurl: %s: %s", what, curl_multi_strerror(mc));
  return mc;
}

static void check_done(http_multi *hm);

/* Drives libcurl on a socket event or its timer, then hands finished transfers back.
 * When libcurl itself fails (out of memory, an internal error, a socket callback that
 * gave up), the transfers it did not finish are failed with its reason, so that no task
 * waits forever on a multi handle in an unknown state; an unknown socket is only logged. */
static void act(http_multi *hm, curl_socket_t s, int flags) {
  int running;
  CURLMcode mc =
      http_multi_check(hm, curl_multi_socket_action(hm->multi, s, flags, &running), "curl_multi_socket_action");
  check_done(hm);
  if (mc == CURLM_OK || mc == CURLM_BAD_SOCKET) return;
  LIST_EACH(n, &hm->transfers) {
    transfer *tr = LIST_ENTRY(n, transfer, link);
    snprintf(tr->errbuf, sizeof tr->errbuf, "libcurl: %s", curl_multi_strerror(mc));
    http_transfer_complete(tr, mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_ABORTED_BY_CALLBACK);
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
  http_multi *hm = arg;
  hm->in_timeout = 1;
  act(hm, CURL_SOCKET_TIMEOUT, 0);
  hm->in_timeout = 0;
}

static int cb_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  (void)e;
  http_multi *hm = userp;
  sockctx *sc = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (sc) {
      event_free(sc->ev);
      free(sc);
      http_multi_check(hm, curl_multi_assign(hm->multi, s, NULL), "curl_multi_assign");
    }
    return 0;
  }
  short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
  if (!sc) {
    sc = calloc(1, sizeof *sc);
    if (!sc) return -1;
    sc->ev = event_new(hm->loop->base, s, kind, on_socket, hm);
    if (!sc->ev || http_multi_check(hm, curl_multi_assign(hm->multi, s, sc), "curl_multi_assign") != CURLM_OK) {
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
  } else if (timeout_ms == 0 && !hm->in_timeout) {
    /* "soon": in this turn, after the callback running now (a task that just made a
     * request): a connection freed by the answer before is then taken again before the
     * loop applies its epoll changes, and libevent's changelist cancels the pair */
    evtimer_del(hm->timer);
    event_active(hm->timer, EV_TIMEOUT, 0);
  } else {
    /* 0 means "soon, but not inside this callback" */
    struct timeval tv = bind_timeval_ns((int64_t)timeout_ms * 1000000);
    evtimer_add(hm->timer, &tv);
  }
  return 0;
}

/* Whether the environment names a proxy, as libcurl reads it (lower case, and upper
 * case but for HTTP_PROXY, which a CGI server may set from a request's Proxy header). */
static int proxy_in_env(void) {
  static const char *const names[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                      "ALL_PROXY",  "no_proxy",    "NO_PROXY"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (getenv(names[i])) return 1;
  return 0;
}

/* The Accept-Encoding line libcurl would make for CURLOPT_ACCEPT_ENCODING "": every
 * encoding this libcurl decodes, in its order. */
static void accept_encoding_line(char *out, size_t n) {
  const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  const char *names[4];
  int k = 0;
  if (v->features & CURL_VERSION_LIBZ) names[k++] = "deflate", names[k++] = "gzip";
  if (v->features & CURL_VERSION_BROTLI) names[k++] = "br";
  if (v->features & CURL_VERSION_ZSTD) names[k++] = "zstd";
  out[0] = '\0';
  for (int i = 0; i < k; i++)
    snprintf(out + strlen(out), n - strlen(out), "%s%s", i ? ", " : "Accept-Encoding: ", names[i]);
}

http_multi *http_multi_get(pacer_loop *loop, const char **why) {
  if (loop->http) return loop->http;
  *why = "out of memory";
  http_multi *hm = calloc(1, sizeof *hm);
  if (!hm) return NULL;
  hm->loop = loop;
  hm->proxy_env = proxy_in_env();
  accept_encoding_line(hm->accept_encoding, sizeof hm->accept_encoding);
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
  http_multi_check(hm, curl_multi_setopt(hm->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX), "CURLMOPT_PIPELINING");
  loop->http = hm;
  return hm;
}

/* --- transfers --- */

void http_transfer_track(http_multi *hm, transfer *tr) {
  list_push(&hm->transfers, &tr->link);
  if (++hm->ntransfers <= hm->peak) return;
  /* libcurl's own bound on idle connections is 4 x the handles on the multi *now*: at a
   * lull (most tasks busy in Lua) it closed the idle ones a moment before they were
   * wanted again, ~2 % of requests opened a connection. 4 x the peak never shrinks. */
  hm->peak = hm->ntransfers;
  http_multi_check(hm, curl_multi_setopt(hm->multi, CURLMOPT_MAXCONNECTS, 4L * hm->peak), "CURLMOPT_MAXCONNECTS");
}

void http_transfer_free(transfer *tr) {
  if (tr->easy) {
    http_multi *hm = tr->hm;
    /* a handle the multi would not let go of is not reused */
    int removed =
        http_multi_check(hm, curl_multi_remove_handle(hm->multi, tr->easy), "curl_multi_remove_handle") == CURLM_OK;
    if (removed && hm->npool < POOL_MAX) {
      /* libcurl 7.88 counts the retries after a reused connection died over a handle's
       * whole life until a reset (5, then it gives up): reset now and then, as well */
      int keep = tr->plain && tr->uses < POOL_RESET_USE;
      if (!keep) curl_easy_reset(tr->easy); /* keeps nothing of this request but reusable buffers */
      /* the request's parsed URL (http.c) is Lua's to collect: a pooled handle keeps no
       * pointer to it */
      if (keep) curl_easy_setopt(tr->easy, CURLOPT_CURLU, NULL);
      hm->pool[hm->npool].easy = tr->easy;
      hm->pool[hm->npool].uses = keep ? tr->uses : 0;
      hm->pool[hm->npool++].set = keep;
    } else {
      curl_easy_cleanup(tr->easy);
    }
  }
  list_remove(&tr->link);
  tr->hm->ntransfers--;
  if (tr->hold) event_free(tr->hold);
  sendpace_release(&tr->paced);
  curl_slist_free_all(tr->headers);
  free(tr->body);
  free(tr->head);
  free(tr);
}

static void check_done(http_multi *hm) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(hm->multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    transfer *tr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&tr);
    if (tr->held) { /* nothing was sent: it goes again once its slot is near */
      tr->held = 0;
      tr->head_len = tr->body_len = 0;
      if (http_multi_check(hm, curl_multi_remove_handle(hm->multi, tr->easy), "curl_multi_remove_handle") == CURLM_OK &&
          http_transfer_start(tr) == CURLM_OK)
        continue;
    }
    http_transfer_complete(tr, msg->data.result);
  }
}

void http_shutdown(pacer_loop *loop) {
  http_multi *hm = loop->http;
  if (!hm) return;
  list_node *n;
  while ((n = list_first(&hm->transfers))) http_transfer_free(LIST_ENTRY(n, transfer, link));
  while (hm->npool > 0) curl_easy_cleanup(hm->pool[--hm->npool].easy);
  http_multi_check(hm, curl_multi_cleanup(hm->multi), "curl_multi_cleanup");
  event_free(hm->timer);
  free(hm);
  loop->http = NULL;
}

int http_multi_inflight(pacer_loop *loop) {
  return loop->http ? (int)list_len(&loop->http->transfers) : 0;
}
