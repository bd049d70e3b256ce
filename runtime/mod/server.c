/* server.c: pacer.serve's C half, an HTTP/1.1 listener (keep-alive, pipelining-safe)
 * on libevent bufferevents with Node's http_parser. Each request runs the Lua handler
 * in its own task; oversized or malformed requests get 413/431/400 before any Lua runs. */
#include "core/list.h"
#include "core/reqparse.h"
#include "mod/bind.h"
#include "sched/loop.h"
#include "sched/task.h"
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <http_parser.h>
#include <lauxlib.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define PACER_SERVER "pacer.server"
#define PACER_SRVREQ "pacer.srvreq"

typedef struct conn conn;

typedef struct server {
  pacer_loop *loop;
  struct evconnlistener *lis;
  list_node conns; /* open connections */
  int anchor;      /* registry ref while open */
  int port;
  size_t max_body, max_header_bytes;
  int max_headers;
  double header_timeout, idle_timeout;
} server;

typedef struct srvreq {
  conn *c; /* NULL once answered or the connection is gone */
} srvreq;

struct conn {
  server *srv;
  struct bufferevent *bev;
  http_parser parser;
  reqparse rp; /* URL, headers (name\0value\0 pairs), body and the limits */
  int expect_continue, busy, closing;
  srvreq *req;
  struct event *deadline; /* header timeout */
  list_node link;         /* on srv->conns */
};

static const char *reason(int status) {
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

static void on_written_close(struct bufferevent *bev, void *arg) {
  (void)bev;
  conn_free(arg);
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

/* Sends a small error answer, then closes (lingering, see above). */
static void send_error(conn *c, int status, const char *msg) {
  struct evbuffer *out = bufferevent_get_output(c->bev);
  evbuffer_add_printf(out,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n{\"error\":\"%s\"}",
                      status, reason(status), strlen(msg) + 12, msg);
  c->closing = 1;
  bufferevent_disable(c->bev, EV_READ);
  bufferevent_setcb(c->bev, NULL, on_error_written, NULL, c);
}

/* --- http_parser callbacks (the parsing and limits are in reqparse.c) --- */

static int on_message_begin(http_parser *p) {
  conn *c = p->data;
  reqparse_begin(&c->rp);
  c->expect_continue = 0;
  struct timeval tv = bind_timeval(c->srv->header_timeout);
  evtimer_add(c->deadline, &tv);
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  conn *c = p->data;
  return reqparse_url(&c->rp, at, n);
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  conn *c = p->data;
  return reqparse_header_field(&c->rp, at, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  conn *c = p->data;
  return reqparse_header_value(&c->rp, at, n);
}

static int on_headers_complete(http_parser *p) {
  conn *c = p->data;
  if (reqparse_headers_end(&c->rp)) return 1;
  evtimer_del(c->deadline);
  if (reqparse_body_too_large(&c->rp, p))
    return -1; /* an error: 1 here would mean "no body" and the body be read as a request */
  /* Expect: 100-continue */
  const char *h, *v;
  for (size_t pos = 0; reqparse_header(&c->rp, &pos, &h, &v);) {
    if (strcasecmp(h, "expect") == 0 && strcasecmp(v, "100-continue") == 0) {
      evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
    }
  }
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  conn *c = p->data;
  return reqparse_body(&c->rp, at, n);
}

static void dispatch(conn *c);

static int on_message_complete(http_parser *p) {
  conn *c = p->data;
  c->busy = 1;
  http_parser_pause(p, 1); /* one request at a time per connection */
  dispatch(c);
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

/* Feeds buffered input to the parser until it pauses for a handler or runs out. */
static void feed(conn *c) {
  struct evbuffer *in = bufferevent_get_input(c->bev);
  while (!c->busy && !c->closing) {
    size_t len = evbuffer_get_length(in);
    if (len == 0) return;
    char *data = (char *)evbuffer_pullup(in, (ssize_t)len);
    size_t used = http_parser_execute(&c->parser, &settings, data, len);
    enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
    if (err == HPE_PAUSED) {
      evbuffer_drain(in, used);
      return; /* resumed by respond() */
    }
    if (err != HPE_OK) {
      int st = c->rp.error_status ? c->rp.error_status : 400;
      evbuffer_drain(in, len);
      send_error(c, st,
                 st == 413   ? "request body too large"
                 : st == 431 ? "request headers too large"
                             : http_errno_description(err));
      return;
    }
    evbuffer_drain(in, used);
  }
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
  if (!c->busy && !c->closing) send_error(c, 408, "request headers not received in time");
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
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  c->rp.max_body = s->max_body;
  c->rp.max_header_bytes = s->max_header_bytes;
  c->rp.max_headers = s->max_headers;
  list_push(&s->conns, &c->link);
  struct timeval idle = bind_timeval(s->idle_timeout);
  bufferevent_set_timeouts(c->bev, &idle, NULL);
  bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
  bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* --- handing requests to Lua --- */

static void dispatch(conn *c) {
  server *s = c->srv;
  lua_State *L = s->loop->L;
  lua_checkstack(L, 8);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->anchor); /* [srv] */
  lua_getiuservalue(L, -1, 1);                  /* [srv, handler] */
  lua_remove(L, -2);
  lua_createtable(L, 0, 8); /* [handler, req] */
  bind_set_str(L, "method", http_method_str((enum http_method)c->parser.method));
  const char *u = c->rp.url.p ? c->rp.url.p : "/";
  bind_set_lstr(L, "target", u, c->rp.url.len);
  const char *q = strchr(u, '?');
  bind_set_lstr(L, "path", u, q ? (size_t)(q - u) : strlen(u));
  bind_set_str(L, "query", q ? q + 1 : "");
  bind_headers_begin(L);
  const char *h, *v;
  for (size_t pos = 0; reqparse_header(&c->rp, &pos, &h, &v);) bind_headers_add(L, h, strlen(h), v, strlen(v));
  bind_headers_end(L);
  lua_setfield(L, -2, "headers");
  bind_set_lstr(L, "body", c->rp.body.p ? c->rp.body.p : "", c->rp.body.len);
  srvreq *r = lua_newuserdatauv(L, sizeof *r, 0); /* [handler, req, h] */
  r->c = c;
  c->req = r;
  luaL_setmetatable(L, PACER_SRVREQ);
  task_spawn(L, 2);
  lua_pop(L, 1);
}

static srvreq *checkreq(lua_State *L) {
  return luaL_checkudata(L, 1, PACER_SRVREQ);
}

static int valid_header_text(const char *s) {
  for (; *s; s++)
    if (*s == '\r' || *s == '\n') return 0;
  return 1;
}

/* Checks the headers table at index 3: string or number names and values, no CR/LF. */
static void check_headers(lua_State *L) {
  lua_pushnil(L);
  while (lua_next(L, 3)) {
    for (int i = -2; i <= -1; i++) {
      int t = lua_type(L, i);
      if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_error(L, "respond: header names and values must be strings or numbers, got %s", luaL_typename(L, i));
    }
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    if (!valid_header_text(lua_tostring(L, -2)) || !valid_header_text(lua_tostring(L, -1)))
      luaL_error(L, "respond: header '%s' contains CR or LF", lua_tostring(L, -2));
    lua_pop(L, 3);
  }
}

/* h:respond(status, headers, body) -> true, or false when the client has gone. */
static int req_respond(lua_State *L) {
  srvreq *r = checkreq(L);
  lua_Integer status = luaL_checkinteger(L, 2);
  luaL_argcheck(L, status >= 100 && status <= 999, 2, "status must be 100..999");
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  size_t blen = 0;
  const char *body = luaL_optlstring(L, 4, "", &blen);
  if (lua_istable(L, 3)) check_headers(L);
  conn *c = r->c;
  if (!c) {
    lua_pushboolean(L, 0);
    return 1;
  }
  /* nothing below raises: written straight into the connection's output */
  struct evbuffer *out = bufferevent_get_output(c->bev);
  int keep = !c->closing && http_should_keep_alive(&c->parser);
  evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", (int)status, reason((int)status));
  if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      lua_pushvalue(L, -2);
      lua_pushvalue(L, -2);
      evbuffer_add_printf(out, "%s: %s\r\n", lua_tostring(L, -2), lua_tostring(L, -1));
      lua_pop(L, 3);
    }
  }
  evbuffer_add_printf(out, "Content-Length: %zu\r\nConnection: %s\r\n\r\n", blen, keep ? "keep-alive" : "close");
  evbuffer_add(out, body, blen);
  r->c = NULL;
  c->req = NULL;
  c->busy = 0;
  if (!keep) {
    c->closing = 1;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setcb(c->bev, NULL, on_written_close, NULL, c);
  } else {
    http_parser_pause(&c->parser, 0);
    /* pipelined input is parsed on the next turn of the loop, not inside this task */
    bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* h:drop([raw]) writes the raw bytes given (e.g. half a response) and closes the
 * connection: how the mock simulates a connection lost mid-answer. */
static int req_drop(lua_State *L) {
  srvreq *r = checkreq(L);
  size_t len = 0;
  const char *raw = luaL_optlstring(L, 2, "", &len);
  conn *c = r->c;
  if (!c) return 0;
  r->c = NULL;
  c->req = NULL;
  if (len) {
    bufferevent_write(c->bev, raw, len);
    c->closing = 1;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setcb(c->bev, NULL, on_written_close, NULL, c);
  } else {
    conn_free(c);
  }
  return 0;
}

/* h:answered() -> true once respond() or drop() ran (or the client is gone) */
static int req_answered(lua_State *L) {
  lua_pushboolean(L, checkreq(L)->c == NULL);
  return 1;
}

static int req_gc(lua_State *L) {
  srvreq *r = checkreq(L);
  if (r->c) { /* never answered: do not leave the client hanging */
    conn *c = r->c;
    r->c = NULL;
    c->req = NULL;
    c->busy = 0;
    send_error(c, 500, "handler did not respond");
  }
  return 0;
}

/* --- the server object --- */

static server *checkserver(lua_State *L) {
  return luaL_checkudata(L, 1, PACER_SERVER);
}

static int srv_close(lua_State *L) {
  server *s = checkserver(L);
  if (s->lis) {
    evconnlistener_free(s->lis);
    s->lis = NULL;
  }
  list_node *n;
  while ((n = list_first(&s->conns))) conn_free(LIST_ENTRY(n, conn, link));
  if (s->anchor != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, s->anchor);
    s->anchor = LUA_NOREF;
  }
  return 0;
}

static int srv_port(lua_State *L) {
  lua_pushinteger(L, checkserver(L)->port);
  return 1;
}

static double opt_num(lua_State *L, const char *k, double def) {
  lua_getfield(L, 1, k);
  double v = luaL_optnumber(L, -1, def);
  lua_pop(L, 1);
  if (!(v > 0)) luaL_error(L, "pacer.serve: '%s' must be positive", k);
  return v;
}

/* listen{host=, port=, handler=fn(req, h), max_body=, max_header_bytes=, max_headers=,
 *        header_timeout=, idle_timeout=} -> server (port via srv:port()) */
static int l_listen(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "host");
  const char *host = luaL_optstring(L, -1, "127.0.0.1");
  lua_getfield(L, 1, "port");
  lua_Integer port = luaL_optinteger(L, -1, 0);
  if (port < 0 || port > 65535) return luaL_error(L, "pacer.serve: port must be 0..65535");
  lua_getfield(L, 1, "handler");
  luaL_checktype(L, -1, LUA_TFUNCTION);
  double max_body = opt_num(L, "max_body", 1024 * 1024), max_hb = opt_num(L, "max_header_bytes", 16384),
         max_h = opt_num(L, "max_headers", 100), ht = opt_num(L, "header_timeout", 10),
         it = opt_num(L, "idle_timeout", 60);

  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  char portstr[16];
  snprintf(portstr, sizeof portstr, "%d", (int)port);
  int gai = getaddrinfo(host, portstr, &hints, &ai);
  if (gai) return luaL_error(L, "pacer.serve: cannot resolve host '%s': %s", host, gai_strerror(gai));

  server *s = lua_newuserdatauv(L, sizeof *s, 1);
  memset(s, 0, sizeof *s);
  list_init(&s->conns);
  s->anchor = LUA_NOREF;
  s->loop = loop_get(L);
  s->max_body = (size_t)max_body;
  s->max_header_bytes = (size_t)max_hb;
  s->max_headers = (int)max_h;
  s->header_timeout = ht;
  s->idle_timeout = it;
  luaL_setmetatable(L, PACER_SERVER);
  lua_pushvalue(L, 4);
  lua_setiuservalue(L, -2, 1);
  s->lis = evconnlistener_new_bind(s->loop->base, on_accept, s, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 1024,
                                   ai->ai_addr, (int)ai->ai_addrlen);
  freeaddrinfo(ai);
  if (!s->lis) return luaL_error(L, "pacer.serve: cannot listen on %s:%d: %s", host, (int)port, strerror(errno));
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  getsockname(evconnlistener_get_fd(s->lis), (struct sockaddr *)&ss, &sl);
  s->port =
      ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
  lua_pushvalue(L, -1);
  s->anchor = luaL_ref(L, LUA_REGISTRYINDEX); /* open servers live until closed */
  return 1;
}

int luaopen_pacer_server(lua_State *L) {
  static const luaL_Reg srv_methods[] = {{"close", srv_close}, {"port", srv_port}, {NULL, NULL}};
  static const luaL_Reg req_methods[] = {
      {"respond", req_respond}, {"drop", req_drop}, {"answered", req_answered}, {NULL, NULL}};
  static const luaL_Reg srv_meta[] = {{"__gc", srv_close}, {"__close", srv_close}, {NULL, NULL}};
  static const luaL_Reg req_meta[] = {{"__gc", req_gc}, {NULL, NULL}};
  bind_createmeta(L, PACER_SERVER, srv_methods, srv_meta);
  bind_createmeta(L, PACER_SRVREQ, req_methods, req_meta);
  lua_pushcfunction(L, l_listen);
  return 1;
}
