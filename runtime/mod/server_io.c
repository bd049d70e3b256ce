/* server_io.c: the listener's connections on libevent bufferevents: accept, bytes read
 * into the request parser (core/reqparse.c), the header timeout, answers written out,
 * keep-alive and pipelining one request at a time, and a lingering close after errors.
 * Complete requests go to server.c's server_dispatch. */
#include "mod/bind.h"
#include "mod/server.h"
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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

static void conn_free(conn *c) {
  if (c->req) c->req->c = NULL;
  list_remove(&c->link);
  if (c->deadline) event_free(c->deadline);
  bufferevent_free(c->bev);
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
  bufferevent_disable(c->bev, EV_READ);
  bufferevent_setcb(c->bev, NULL, on_error_written, NULL, c);
}

/* Feeds buffered input to the parser until it stops at a request for Lua, an error, or
 * the end of the input; starts the header timer when a request begins. */
static void feed(conn *c) {
  struct evbuffer *in = bufferevent_get_input(c->bev);
  while (!c->closing && !c->req) {
    size_t len = evbuffer_get_length(in), used = 0;
    if (len == 0) return;
    int was_idle = c->rp.phase == RP_IDLE;
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
    if (res == RP_REQUEST) {
      evtimer_del(c->deadline);
      server_dispatch(c); /* resumed by conn_answered() */
      return;
    }
    if (was_idle && c->rp.phase == RP_HEAD) {
      struct timeval tv = bind_timeval(c->srv->header_timeout);
      evtimer_add(c->deadline, &tv);
    }
    if (c->rp.phase == RP_BODY) evtimer_del(c->deadline);
  }
}

void conn_answered(conn *c, int keep) {
  if (!keep) {
    close_after_output(c);
    return;
  }
  reqparse_next(&c->rp);
  c->continued = 0;
  /* pipelined input is parsed on the next turn of the loop, not inside this task */
  bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
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
  if (!c->req && !c->closing) conn_send_error(c, 408, "request headers not received in time");
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
  c->bev = bufferevent_socket_new(s->loop->base, fd, BEV_OPT_CLOSE_ON_FREE);
  c->deadline = evtimer_new(s->loop->base, on_deadline, c);
  if (!c->bev || !c->deadline) {
    if (c->bev)
      bufferevent_free(c->bev);
    else
      evutil_closesocket(fd);
    if (c->deadline) event_free(c->deadline);
    free(c);
    return;
  }
  reqparse_init(&c->rp, s->max_body, s->max_header_bytes, s->max_headers);
  list_push(&s->conns, &c->link);
  struct timeval idle = bind_timeval(s->idle_timeout);
  bufferevent_set_timeouts(c->bev, &idle, NULL);
  bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
  bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

int server_io_listen(server *s, const struct sockaddr *addr, int addrlen) {
  s->lis = evconnlistener_new_bind(s->loop->base, on_accept, s, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 1024, addr,
                                   addrlen);
  return s->lis ? 0 : -1;
}

void server_io_close(server *s) {
  if (s->lis) {
    evconnlistener_free(s->lis);
    s->lis = NULL;
  }
  list_node *n;
  while ((n = list_first(&s->conns))) conn_free(LIST_ENTRY(n, conn, link));
}
