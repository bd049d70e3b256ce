/* redis.c: a Redis connection on the event loop (hiredis async + its libevent adapter):
 * conn:call(cmd, ...) suspends the calling task until the reply; nothing blocks. A
 * command timeout (hiredis 0.14 has none for async contexts: one libevent timer per
 * connection, re-armed by each reply) drops a connection whose server stopped answering,
 * so a frozen Redis fails its commands instead of stalling them. The
 * policies built on it (a shared GCRA limiter) are Lua: lualib/pacer/limiter/redis.lua and redis/conn.lua. */
#include "mod/bind.h"
#include "sched/loop.h"
#include "sched/task.h"
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PACER_REDIS "pacer.redis"

typedef struct rconn {
  redisAsyncContext *ac; /* NULL once disconnected: hiredis frees it */
  int up;                /* connected (handshake done) */
  int pending;           /* commands sent and not answered */
  struct event *timer;   /* fires when `pending` > 0 and no reply came for `timeout` */
  struct timeval timeout;
  char err[128]; /* why it went down */
} rconn;

/* The timer's callback: the server has not answered for the timeout. Drops the
 * connection; hiredis hands every pending command a NULL reply, which reads r->err. */
static void on_timeout(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  rconn *r = arg;
  if (!r->ac) return;
  snprintf(r->err, sizeof r->err, "timeout: no reply in %gs", (double)r->timeout.tv_sec + r->timeout.tv_usec / 1e6);
  redisAsyncContext *ac = r->ac;
  r->ac = NULL;
  r->up = 0;
  r->pending = 0;
  redisAsyncFree(ac); /* on_reply(NULL) for each pending command, then on_disconnect */
}

/* One reply (or failure) came: the clock starts again for those still pending. */
static void answered(rconn *r) {
  if (!r || !r->timer) return;
  if (r->pending > 0) r->pending--;
  if (r->pending > 0)
    evtimer_add(r->timer, &r->timeout);
  else
    evtimer_del(r->timer);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  rconn *r = ac->data;
  if (!r) return;
  if (status != REDIS_OK) {
    snprintf(r->err, sizeof r->err, "%s", ac->errstr[0] ? ac->errstr : "cannot connect");
    r->ac = NULL; /* hiredis frees the context after a failed connect */
    r->up = 0;
    return;
  }
  r->up = 1;
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  rconn *r = ac->data;
  if (!r) return;
  if (status != REDIS_OK)
    snprintf(r->err, sizeof r->err, "%s", ac->errstr[0] ? ac->errstr : "connection lost");
  else if (strncmp(r->err, "timeout", 7) != 0)
    snprintf(r->err, sizeof r->err, "closed");
  r->ac = NULL;
  r->up = 0;
}

static void push_reply(lua_State *L, redisReply *rep, int depth) {
  switch (rep->type) {
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS: lua_pushlstring(L, rep->str, rep->len); break;
  case REDIS_REPLY_INTEGER: lua_pushinteger(L, rep->integer); break;
  case REDIS_REPLY_ARRAY:
    lua_createtable(L, (int)rep->elements, 0);
    for (size_t i = 0; i < rep->elements && depth < 8; i++) {
      push_reply(L, rep->element[i], depth + 1);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    break;
  default: lua_pushboolean(L, 0); /* nil */
  }
}

/* hiredis calls this with the reply, or with NULL when the connection went away. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  task *t = privdata;
  lua_State *L = task_thread(t);
  redisReply *rep = reply;
  answered(ac->data);
  lua_checkstack(L, 4);
  if (!rep) {
    rconn *r = ac->data;
    lua_pushnil(L);
    lua_pushstring(L, r && r->err[0] ? r->err : (ac->errstr[0] ? ac->errstr : "connection lost"));
  } else if (rep->type == REDIS_REPLY_ERROR) {
    lua_pushnil(L);
    lua_pushlstring(L, rep->str, rep->len);
  } else if (rep->type == REDIS_REPLY_NIL) {
    lua_pushboolean(L, 0);
    lua_pushnil(L);
  } else {
    push_reply(L, rep, 0);
    lua_pushnil(L);
  }
  task_wake(t, 2);
}

static rconn *checkconn(lua_State *L) {
  return luaL_checkudata(L, 1, PACER_REDIS);
}

/* conn:call("GET", "k", ...) -> reply, nil | false (a nil reply), nil | nil, error text.
 * Arguments are strings or numbers. Raises only on misuse. */
static int conn_call(lua_State *L) {
  rconn *r = checkconn(L);
  int argc = lua_gettop(L) - 1;
  luaL_argcheck(L, argc >= 1 && argc <= 256, 2, "a command and up to 255 arguments");
  const char *argv[256];
  size_t lens[256];
  for (int i = 0; i < argc; i++) {
    int t = lua_type(L, i + 2);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      return luaL_error(L, "redis: argument %d is a %s", i + 1, luaL_typename(L, i + 2));
    argv[i] = lua_tolstring(L, i + 2, &lens[i]);
  }
  if (!r->ac) {
    lua_pushnil(L);
    lua_pushstring(L, r->err[0] ? r->err : "not connected");
    return 2;
  }
  task *t = task_check_current(L, "redis:call");
  if (redisAsyncCommandArgv(r->ac, on_reply, t, argc, argv, lens) != REDIS_OK) {
    lua_pushnil(L);
    lua_pushstring(L, r->ac && r->ac->errstr[0] ? r->ac->errstr : "cannot send");
    return 2;
  }
  if (r->timer && r->pending++ == 0) evtimer_add(r->timer, &r->timeout);
  return task_suspend(L);
}

/* conn:alive() -> false once the connection is gone (make a new one to reconnect) */
static int conn_alive(lua_State *L) {
  lua_pushboolean(L, checkconn(L)->ac != NULL);
  return 1;
}

static int conn_close(lua_State *L) {
  rconn *r = luaL_checkudata(L, 1, PACER_REDIS);
  if (r->timer) {
    event_free(r->timer);
    r->timer = NULL;
  }
  r->pending = 0;
  if (r->ac) {
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    ac->data = NULL;    /* its callbacks no longer reach this (maybe collected) object */
    redisAsyncFree(ac); /* pending replies get NULL: their tasks see "connection lost" */
  }
  return 0;
}

/* connect(host, port [, timeout]) -> conn (the connection completes in the background;
 * commands sent meanwhile wait for it) | raises when the address cannot even be tried.
 * timeout: seconds a command may wait for its reply (connecting included) before the
 * connection is dropped and the command fails with "timeout: ..."; 0 or nil: none. */
static int l_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  lua_Number timeout = luaL_optnumber(L, 3, 0);
  luaL_argcheck(L, port > 0 && port < 65536, 2, "port must be 1..65535");
  luaL_argcheck(L, timeout >= 0 && timeout < 1e9, 3, "timeout must be 0 .. 1e9 seconds");
  rconn *r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, PACER_REDIS);
  if (timeout > 0) {
    r->timeout.tv_sec = (time_t)timeout;
    r->timeout.tv_usec = (suseconds_t)((timeout - floor(timeout)) * 1e6);
    r->timer = evtimer_new(loop_get(L)->base, on_timeout, r);
    if (!r->timer) return luaL_error(L, "redis: out of memory");
  }
  redisAsyncContext *ac = redisAsyncConnect(host, (int)port);
  if (!ac) return luaL_error(L, "redis: out of memory");
  if (ac->err) {
    lua_pushfstring(L, "redis: cannot connect to %s:%d: %s", host, (int)port, ac->errstr);
    redisAsyncFree(ac);
    return lua_error(L);
  }
  ac->data = r;
  r->ac = ac;
  redisLibeventAttach(ac, loop_get(L)->base);
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  return 1;
}

int luaopen_pacer_redis(lua_State *L) {
  static const luaL_Reg methods[] = {{"call", conn_call}, {"alive", conn_alive}, {"close", conn_close}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", conn_close}, {NULL, NULL}};
  bind_createmeta(L, PACER_REDIS, methods, meta);
  lua_pushcfunction(L, l_connect);
  return 1;
}
