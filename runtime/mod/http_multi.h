/* http_multi.h: the two halves of pacer.c.http. http_multi.c wires libcurl's multi
 * socket API to the loop (cb_* are called by libcurl, on_* by the loop, as in curl's
 * hiperfifo.c) and keeps the transfers in flight and a pool of easy handles; http.c is
 * the Lua binding: it sets a transfer up from pacer.request's options, collects the
 * answer and hands the outcome to the waiting task. */
#ifndef PACER_HTTP_MULTI_H
#define PACER_HTTP_MULTI_H
#include "core/list.h"
#include "mod/sendpace.h"
#include "sched/loop.h"
#include "sched/task.h"
#include <curl/curl.h>

#define POOL_MAX       64
#define POOL_RESET_USE 32 /* a pooled handle is reset at least every this many requests */

typedef struct http_multi {
  pacer_loop *loop;
  CURLM *multi;
  struct event *timer;
  int in_timeout;       /* on_timeout is running: a new "now" from libcurl waits a turn */
  list_node transfers;  /* in flight, for shutdown and inflight() */
  int ntransfers, peak; /* on transfers now; the most there ever were */
  int proxy_env;        /* a proxy variable was set at start: libcurl reads them itself */
  /* easy handles kept for reuse (init is not cheap); `set`: it has the options every
   * request has and none of those only some set (http.c set_standing), so a plain
   * request sets only its own (a reset and 12 more options cost 4 % of a GET) */
  struct {
    CURL *easy;
    int set, uses; /* uses: requests since its last reset */
  } pool[POOL_MAX];
  int npool;
  /* "Accept-Encoding: ..." as libcurl makes it for "" (what it can decode); "" if none */
  char accept_encoding[64];
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
  int too_large;         /* TOO_LARGE_BODY or TOO_LARGE_HEADERS: we stopped the transfer */
  int oom;               /* our own buffer could not grow */
  list_node link;        /* on hm->transfers */
  sendpace_claims paced; /* the limiter grants this request goes out on */
  struct event *hold;    /* keeps it from libcurl until its send slot is near (made on first use) */
  int held;              /* its send was refused at the wire (sendpace_send): hold it again */
  int plain;             /* set no option a later request could inherit: pooled without a reset */
  int uses;              /* requests on its easy handle since the handle's last reset */
  int added;             /* handed to libcurl once: its transfer figures are this request's */
  char errbuf[CURL_ERROR_SIZE];
} transfer;

/* The loop's multi handle, made on first use; NULL with *why set when it cannot be. */
http_multi *http_multi_get(pacer_loop *loop, const char **why);
/* Every CURLMcode goes through here: CURLM_OK is quiet, anything else is logged as a
 * warning naming the call. Returns mc. */
CURLMcode http_multi_check(http_multi *hm, CURLMcode mc, const char *what);
/* Puts a new transfer on hm->transfers (http_transfer_free takes it off). */
void http_transfer_track(http_multi *hm, transfer *tr);
/* Takes the transfer off the multi handle and frees it; its easy handle goes back to the
 * pool (reset unless tr->plain). Its task is not woken. */
void http_transfer_free(transfer *tr);
/* http.c: the transfer is over (code is libcurl's result): wakes its task with the
 * outcome and frees the transfer. */
void http_transfer_complete(transfer *tr, CURLcode code);
/* http.c: hands the transfer to libcurl now, or holds it on a timer until its send
 * slot is near (sendpace_hold); again after a send refused at the wire. Not CURLM_OK:
 * libcurl would not take it (errbuf says why); the caller fails it. */
CURLMcode http_transfer_start(transfer *tr);
/* Transfers in flight. */
int http_multi_inflight(pacer_loop *loop);
#endif
