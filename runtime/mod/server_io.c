/* server_io.c: the listener's connections on libevent bufferevents: accept, bytes read
 * into the request parser (core/reqparse.c), the header and body timeouts, answers
 * written out, keep-alive and pipelining one request at a time, and a lingering close
 * after errors. Complete requests go to server.c's server_dispatch.
 * What a client cannot make it do: hold more than max_connections (accept pauses until
 * one closes, and pauses too, without spinning, when the process runs out of file
 * descriptors: one warning per episode); send a request slower than header_timeout +
 * body_timeout; make it read while a request of its is being answered, or while more
 * than OUT_HIGH bytes of answers wait for it to read them (pipelined input waits in the
 * kernel, not here). */
#include "mod/bind.h"
#include "mod/server.h"
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define PAUSE_CAP 1            /* max_connections open */
#define PAUSE_FDS 2            /* accept() failed (out of file descriptors) */
#define FD_RETRY  1            /* seconds before accepting again after that, unless a connection closes */
#define OUT_HIGH  (64 * 1024)  /* answers waiting to be read above this: stop reading requests */
#define OUT_LOW   (16 * 1024)  /* ... until they are down to this */
#define IN_HIGH   (256 * 1024) /* input buffered at most (the parser takes it as it comes) */
#define EPISODE   10           /* seconds without the trouble before it is a new episode */

const char *server_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 413: return "Content Too Large";
  case 422: return "Unprocessable Content";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Status";
  }
}

/* Accepting follows s->paused: on when nothing pauses it. */
static void listener_update(server *s) {
  if (!s->lis) return;
  if (s->paused)
    evconnlistener_disable(s->lis);
  else
    evconnlistener_enable(s->lis);
}

/* A connection closed: below the cap accepting resumes, and a descriptor is free. */
static void conn_gone(server *s) {
  s->nconns--;
  if ((s->paused & PAUSE_CAP) && s->nconns < s->max_connections) s->paused &= ~PAUSE_CAP;
  if (s->paused & PAUSE_FDS) {
    s->paused &= ~PAUSE_FDS;
    evtimer_del(s->retry);
  }
  listener_update(s);
}

static void conn_free(conn *c) {
  if (c->req) c->req->c = NULL;
  list_remove(&c->link);
  conn_gone(c->srv);
  if (c->deadline) event_free(c->deadline);
  /* closed here, not when libevent finalizes the bufferevent later in the turn: the
   * descriptor is free before accepting resumes */
  evutil_socket_t fd = bufferevent_getfd(c->bev);
  bufferevent_free(c->bev);
  evutil_closesocket(fd);
  reqparse_free(&c->rp);
  free(c);
}

struct evbuffer *conn_output(conn *c) {
  return bufferevent_get_output(c->bev);
}

static void on_written_close(struct bufferevent *bev, void *arg) {
  (void)bev;
  conn_free(arg);
}

/* Closes once the output is written: no more input is read. */
static void close_after_output(conn *c) {
  c->closing = 1;
  bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0); /* the write callback: all written */
  bufferevent_disable(c->bev, EV_READ);
  bufferevent_setcb(c->bev, NULL, on_written_close, NULL, c);
}

/* Lingering close: input the client is still sending is read and dropped until it stops
 * or LINGER seconds pass, so that closing with unread data does not make the kernel
 * reset the connection and lose the answer (a 413 to a big upload). */
#define LINGER 2

static void on_linger_read(struct bufferevent *bev, void *arg) {
  (void)arg;
  struct evbuffer *in = bufferevent_get_input(bev);
  evbuffer_drain(in, evbuffer_get_length(in));
}

static void on_linger_end(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  conn_free(arg);
}

static void on_linger_event(struct bufferevent *bev, short what, void *arg) {
  (void)bev, (void)what;
  conn_free(arg); /* EOF or error: the client is done */
}

static void on_error_written(struct bufferevent *bev, void *arg) {
  conn *c = arg;
  shutdown(bufferevent_getfd(bev), SHUT_WR); /* the answer is complete: EOF after it */
  evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
  bufferevent_setcb(bev, on_linger_read, NULL, on_linger_event, c);
  bufferevent_set_timeouts(bev, NULL, NULL);
  bufferevent_enable(bev, EV_READ);
  event_del(c->deadline);
  event_assign(c->deadline, c->srv->loop->base, -1, 0, on_linger_end, c);
  struct timeval tv = {LINGER, 0};
  evtimer_add(c->deadline, &tv);
}

void conn_send_error(conn *c, int status, const char *msg) {
  struct evbuffer *out = bufferevent_get_output(c->bev);
  evbuffer_add_printf(out,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n{\"error\":\"%s\"}",
                      status, server_reason(status), strlen(msg) + 12, msg);
  c->closing = 1;
  bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
  bufferevent_disable(c->bev, EV_READ);
  bufferevent_setcb(c->bev, NULL, on_error_written, NULL, c);
}

/* Arms the deadline for the phase the request is in: header_timeout from its first byte
 * until its headers are in, then body_timeout until its body is; none between requests
 * or while Lua answers. Each is a deadline for the whole phase, not for each read. */
static void set_deadline(conn *c) {
  int phase = c->rp.phase;
  if (phase == c->timed) return;
  c->timed = phase;
  evtimer_del(c->deadline);
  double t = phase == RP_HEAD ? c->srv->header_timeout : phase == RP_BODY ? c->srv->body_timeout : 0;
  if (t > 0) {
    struct timeval tv = bind_timeval(t);
    evtimer_add(c->deadline, &tv);
  }
}

/* Feeds buffered input to the parser until it stops at a request for Lua, an error, or
 * the end of the input. While Lua answers, nothing more is read. */
static void feed(conn *c) {
  struct evbuffer *in = bufferevent_get_input(c->bev);
  while (!c->closing && !c->req) {
    size_t len = evbuffer_get_length(in), used = 0;
    if (len == 0) return;
    const char *data = (const char *)evbuffer_pullup(in, (ssize_t)len);
    rp_result res = reqparse_feed(&c->rp, data, len, &used);
    if (res == RP_MORE && c->rp.expect_continue && c->rp.phase == RP_BODY && !c->continued) {
      c->continued = 1; /* the client waits for this before it sends the body */
      evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
    }
    evbuffer_drain(in, used);
    if (res == RP_ERROR) {
      conn_send_error(c, c->rp.error_status, c->rp.error);
      return;
    }
    set_deadline(c);
    if (res == RP_REQUEST) {
      bufferevent_disable(c->bev, EV_READ); /* pipelined requests wait in the kernel */
      server_dispatch(c);                   /* resumed by conn_answered() */
      return;
    }
  }
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void resume_reading(conn *c) {
  bufferevent_enable(c->bev, EV_READ);
  /* pipelined input is parsed on the next turn of the loop, not inside this task */
  bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* The answers waiting for the client went down to OUT_LOW: read its next request. */
static void on_drained(struct bufferevent *bev, void *arg) {
  bufferevent_setcb(bev, on_read, NULL, on_event, arg);
  bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
  resume_reading(arg);
}

void conn_answered(conn *c, int keep) {
  if (!keep) {
    close_after_output(c);
    return;
  }
  reqparse_next(&c->rp);
  c->continued = 0;
  if (evbuffer_get_length(bufferevent_get_output(c->bev)) > OUT_HIGH) { /* a client that does not read */
    bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
    bufferevent_setcb(c->bev, on_read, on_drained, on_event, c);
    return;
  }
  resume_reading(c);
}

void conn_drop(conn *c, const char *raw, size_t len) {
  if (!len) {
    conn_free(c);
    return;
  }
  bufferevent_write(c->bev, raw, len);
  close_after_output(c);
}

static void on_read(struct bufferevent *bev, void *arg) {
  (void)bev;
  feed(arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
  (void)bev;
  conn *c = arg;
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) conn_free(c);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  conn *c = arg;
  if (!c->req && !c->closing)
    conn_send_error(c, 408,
                    c->timed == RP_BODY ? "request body not received in time" : "request headers not received in time");
}

/* The trouble happened now: 1 when it is the first time in EPISODE seconds (warn), 0
 * while the episode goes on. */
static int new_episode(double *seen) {
  double now = loop_now(), last = *seen;
  *seen = now;
  return last == 0 || now - last > EPISODE;
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg) {
  (void)lis, (void)sa, (void)len;
  server *s = arg;
  conn *c = calloc(1, sizeof *c);
  if (!c) {
    evutil_closesocket(fd);
    return;
  }
  c->srv = s;
  c->bev = bufferevent_socket_new(s->loop->base, fd, 0); /* conn_free closes fd */
  c->deadline = evtimer_new(s->loop->base, on_deadline, c);
  if (!c->bev || !c->deadline) {
    if (c->bev) bufferevent_free(c->bev);
    evutil_closesocket(fd);
    if (c->deadline) event_free(c->deadline);
    free(c);
    return;
  }
  reqparse_init(&c->rp, s->max_body, s->max_header_bytes, s->max_headers);
  list_push(&s->conns, &c->link);
  struct timeval idle = bind_timeval(s->idle_timeout);
  bufferevent_set_timeouts(c->bev, &idle, &idle); /* no byte either way for that long: closed */
  bufferevent_setwatermark(c->bev, EV_READ, 0, IN_HIGH);
  bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
  bufferevent_enable(c->bev, EV_READ | EV_WRITE);
  if (++s->nconns >= s->max_connections) {
    s->paused |= PAUSE_CAP;
    listener_update(s); /* the rest wait in the kernel's backlog */
    if (new_episode(&s->cap_seen))
      loop_log(s->loop, PLOG_WARN,
               "pacer.serve %s: %d connections open (max_connections): new ones wait until one closes", s->name,
               s->nconns);
  }
}

/* accept() failed for another reason than "try again": most often the process is out of
 * file descriptors (EMFILE, ENFILE), which would make the listener spin. Accepting pauses
 * until a connection closes or FD_RETRY seconds pass; one warning per episode. */
static void on_accept_error(struct evconnlistener *lis, void *arg) {
  (void)lis;
  server *s = arg;
  int err = EVUTIL_SOCKET_ERROR();
  s->paused |= PAUSE_FDS;
  listener_update(s);
  struct timeval tv = {FD_RETRY, 0};
  evtimer_add(s->retry, &tv);
  if (new_episode(&s->fd_seen))
    loop_log(s->loop, PLOG_WARN,
             "pacer.serve %s: cannot accept connections: %s (%d open here); accepting again when one closes", s->name,
             evutil_socket_error_to_string(err), s->nconns);
}

static void on_retry(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  server *s = arg;
  s->paused &= ~PAUSE_FDS;
  listener_update(s); /* another failure pauses again, quietly */
}

int server_io_default_max_connections(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 65536 + 64) return 65536;
  long soft = (long)rl.rlim_cur, reserve = soft / 4 < 64 ? soft / 4 : 64;
  return soft - reserve > 1 ? (int)(soft - reserve) : 1;
}

int server_io_listen(server *s, const struct sockaddr *addr, int addrlen, const char *host) {
  s->retry = evtimer_new(s->loop->base, on_retry, s);
  if (!s->retry) {
    errno = ENOMEM;
    return -1;
  }
  s->lis = evconnlistener_new_bind(s->loop->base, on_accept, s, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 1024, addr,
                                   addrlen);
  if (!s->lis) return -1;
  evconnlistener_set_error_cb(s->lis, on_accept_error);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  getsockname(evconnlistener_get_fd(s->lis), (struct sockaddr *)&ss, &sl);
  s->port =
      ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
  snprintf(s->name, sizeof s->name, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, s->port);
  return 0;
}

void server_io_close(server *s) {
  if (s->lis) {
    evconnlistener_free(s->lis);
    s->lis = NULL;
  }
  list_node *n;
  while ((n = list_first(&s->conns))) conn_free(LIST_ENTRY(n, conn, link));
  if (s->retry) event_free(s->retry);
  s->retry = NULL;
}
