/* http.h: HTTP transfers on libcurl's multi socket API, driven by the loop. */
#ifndef PACER_HTTP_H
#define PACER_HTTP_H
#include <lua.h>

struct http_multi;
struct pacer_loop;

/* Frees every transfer still in flight (their tasks are not resumed) and the multi
 * handle. Called once at exit, before lua_close. */
void http_shutdown(struct pacer_loop *loop);

int luaopen_pacer_http(lua_State *L);
#endif
