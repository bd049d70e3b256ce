/* server.c: pacer.c.server, the Lua binding of the HTTP/1.1 listener: listen{...}, the
 * server object, and the request handle each Lua handler answers through. Each complete
 * request runs the handler in its own task; the connections themselves (parsing,
 * limits, timeouts, keep-alive) are server_io.c's, and oversized or malformed requests
 * get 413/431/400 there before any Lua runs. */
#include "mod/server.h"
#include "mod/bind.h"
#include "sched/task.h"
#include <errno.h>
#include <event2/buffer.h>
#include <lauxlib.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PACER_SERVER "pacer.server"
#define PACER_SRVREQ "pacer.srvreq"

/* Builds the request table and the handle, and spawns handler(req, h). */
void server_dispatch(conn *c) {
  server *s = c->srv;
  lua_State *L = s->loop->L;
  lua_checkstack(L, 8);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->anchor); /* [srv] */
  lua_getiuservalue(L, -1, 1);                  /* [srv, handler] */
  lua_remove(L, -2);
  lua_createtable(L, 0, 8); /* [handler, req] */
  bind_set_str(L, "method", reqparse_method(&c->rp));
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
  struct evbuffer *out = conn_output(c);
  int keep = !c->closing && reqparse_keep_alive(&c->rp);
  evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", (int)status, server_reason((int)status));
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
  conn_answered(c, keep);
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
  conn_drop(c, raw, len);
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
    conn_send_error(c, 500, "handler did not respond");
  }
  return 0;
}

/* --- the server object --- */

static server *checkserver(lua_State *L) {
  return luaL_checkudata(L, 1, PACER_SERVER);
}

static int srv_close(lua_State *L) {
  server *s = checkserver(L);
  server_io_close(s);
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
 *        max_connections=, header_timeout=, body_timeout=, idle_timeout=}
 * -> server (port via srv:port()) */
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
         bt = opt_num(L, "body_timeout", 30), it = opt_num(L, "idle_timeout", 60),
         max_c = opt_num(L, "max_connections", server_io_default_max_connections());

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
  s->max_connections = max_c > 1e9 ? 1000000000 : (int)max_c;
  s->header_timeout = ht;
  s->body_timeout = bt;
  s->idle_timeout = it;
  luaL_setmetatable(L, PACER_SERVER);
  lua_pushvalue(L, 4);
  lua_setiuservalue(L, -2, 1);
  int rc = server_io_listen(s, ai->ai_addr, (int)ai->ai_addrlen, host);
  freeaddrinfo(ai);
  if (rc < 0) return luaL_error(L, "pacer.serve: cannot listen on %s:%d: %s", host, (int)port, strerror(errno));
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
