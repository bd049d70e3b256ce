/* share.c: pacer.c.share, the lists `pacer --workers N` hand items out from: pacer.each
 * takes each next index from a count all the workers share (sched/workers.h), so a
 * worker that is free sooner takes more of the list. */
#include "mod/modules.h"
#include "sched/loop.h"
#include "sched/workers.h"
#include <lauxlib.h>

static workers_region *region(lua_State *L) {
  workers_region *r = loop_get(L)->shared;
  if (!r) luaL_error(L, "pacer.c.share: only under --workers");
  return r;
}

/* open(k, n, where) -> true | false, "where, n items" of the list another worker made
 * as its k-th (1-based) | nil past the lists a run may make */
static int l_open(lua_State *L) {
  workers_region *r = region(L);
  lua_Integer k = luaL_checkinteger(L, 1), n = luaL_checkinteger(L, 2);
  const char *where = luaL_checkstring(L, 3);
  char theirs[WORKERS_WHERE + 32];
  int rc = workers_list_open(r, (int)(k - 1), (int64_t)n, where, theirs, sizeof theirs);
  if (rc < 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushboolean(L, rc == 0);
  if (rc == 0) return 1;
  lua_pushstring(L, theirs);
  return 2;
}

/* take(k) -> the next index of the k-th list (from 1; past its n: none left) */
static int l_take(lua_State *L) {
  workers_region *r = region(L);
  lua_Integer k = luaL_checkinteger(L, 1);
  luaL_argcheck(L, k >= 1 && k <= WORKERS_LISTS, 1, "no such list");
  lua_pushinteger(L, (lua_Integer)workers_list_take(r, (int)(k - 1)));
  return 1;
}

int luaopen_pacer_share(lua_State *L) {
  static const luaL_Reg funcs[] = {{"open", l_open}, {"take", l_take}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
