/* server.h: the two halves of pacer.c.server. server_io.c owns the connections (accept,
 * reading into the request parser, timeouts, answers written out, lingering close);
 * server.c is the Lua binding (listen, the server and request objects) and hands each
 * complete request to a Lua task. */
#ifndef PACER_SERVER_H
#define PACER_SERVER_H
#include "core/list.h"
#include "core/reqparse.h"
#include "sched/loop.h"
#include <stddef.h>

struct bufferevent;
struct evbuffer;
struct event;
struct evconnlistener;
struct sockaddr;

typedef struct conn conn;

typedef struct server {
  pacer_loop *loop;
  struct evconnlistener *lis;
  list_node conns; /* open connections */
  int nconns;
  int anchor; /* registry ref while open */
  int port;
  char name[80]; /* "127.0.0.1:8080", for warnings */
  size_t max_body, max_header_bytes;
  int max_headers, max_connections;
  double header_timeout, body_timeout, idle_timeout;
  int paused;               /* why accepting is off: PAUSE_* bits */
  double cap_seen, fd_seen; /* when max_connections, an accept() failure last happened */
  struct event *retry;      /* accepting again after running out of descriptors */
} server;

/* A request handed to Lua: the h of handler(req, h). */
typedef struct srvreq {
  conn *c; /* NULL once answered or the connection is gone */
} srvreq;

struct conn {
  server *srv;
  struct bufferevent *bev;
  reqparse rp;            /* the request being read, and its limits */
  int closing;            /* an error answer or Connection: close is on its way out */
  int continued;          /* "100 Continue" was sent for the current request */
  int timed;              /* the reqparse phase the deadline is armed for */
  srvreq *req;            /* the request Lua is answering, or NULL */
  struct event *deadline; /* header timeout, then the lingering close */
  list_node link;         /* on srv->conns */
};

/* Binds and listens on addr, then sets s->port and s->name (host is for the name);
 * 0, or -1 with errno set. */
int server_io_listen(server *s, const struct sockaddr *addr, int addrlen, const char *host);
/* max_connections when none is given: the soft RLIMIT_NOFILE less a reserve for the
 * rest of the process (a quarter of it, at most 64), at most 65536. */
int server_io_default_max_connections(void);
/* Stops listening and closes every connection (idempotent). */
void server_io_close(server *s);

/* The output of a connection, for an answer to be written into. */
struct evbuffer *conn_output(conn *c);
/* The answer to the current request is in the output: closes after it (keep = 0) or
 * goes on with the connection's next request. */
void conn_answered(conn *c, int keep);
/* Writes the raw bytes (maybe none) and closes: how the mock cuts a connection. */
void conn_drop(conn *c, const char *raw, size_t len);
/* A small JSON error answer ({"error": msg}), then a lingering close. */
void conn_send_error(conn *c, int status, const char *msg);
/* The reason phrase of a status ("Not Found"), "Status" for unknown ones. */
const char *server_reason(int status);

/* server.c: starts the Lua handler on c's complete request (c->rp, phase RP_DONE). */
void server_dispatch(conn *c);
#endif
