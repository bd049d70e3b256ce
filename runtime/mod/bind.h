/* bind.h: the small pieces every C-to-Lua binding repeats (mod/, store/, and the binding
 * half of sched/task.c): fields on the table at the top of the stack, a metatable made
 * as liolib's createmeta makes it, durations given by Lua code, seconds as the struct
 * timeval libevent takes, and HTTP header tables (lower-case names, repeats joined). */
#ifndef PACER_BIND_H
#define PACER_BIND_H
#include <lauxlib.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

/* t[k] = v for the table at the top of the stack (bind_set_str: nothing when v is NULL). */
void bind_set_str(lua_State *L, const char *k, const char *v);
void bind_set_lstr(lua_State *L, const char *k, const char *v, size_t len);
void bind_set_int(lua_State *L, const char *k, lua_Integer v);
void bind_set_num(lua_State *L, const char *k, lua_Number v);
void bind_set_bool(lua_State *L, const char *k, int v);

/* Registers the metatable tname with the functions of meta (__gc, __close, __len,
 * __tostring, ...) and an __index table holding methods (either may be NULL). Leaves
 * the stack as it was. */
void bind_createmeta(lua_State *L, const char *tname, const luaL_Reg *methods, const luaL_Reg *meta);

/* Pushes nil and an error table {kind=, message=} (an outcome of the world); returns 2. */
int bind_push_error(lua_State *L, const char *kind, const char *message);

/* The duration at index i, seconds or a string like "250ms", as seconds within
 * 0 .. PACER_MAX_SECONDS; raises "<what>: invalid duration ..." otherwise. */
double bind_check_seconds(lua_State *L, int i, const char *what);

/* A non-negative time as the struct timeval libevent takes, rounded up to the
 * microsecond so that a timer never fires early. */
struct timeval bind_timeval_ns(int64_t ns);
struct timeval bind_timeval(double seconds);

/* A header table: bind_headers_begin pushes it (and a scratch table above it),
 * bind_headers_add adds a header with the name lower-cased (ASCII), bind_headers_end
 * joins each repeated name's values with ", " (RFC 9110 5.3) and leaves the table on
 * top. Repeats are gathered in lists and joined once, so a hostile message with 50,000
 * copies of one header costs linear time, not quadratic. */
void bind_headers_begin(lua_State *L);
void bind_headers_add(lua_State *L, const char *name, size_t nlen, const char *value, size_t vlen);
void bind_headers_end(lua_State *L);
#endif
