/* modules.c: the one list of C modules the host preloads, as Lua's linit.c lists its
 * libraries: {name, luaopen}. require "pacer.c.http" finds it in package.preload. */
#include "mod/modules.h"
#include "host/host.h"
#include <lauxlib.h>

static const luaL_Reg modules[] = {{"pacer.c.task", luaopen_pacer_task},
                                   {"pacer.c.http", luaopen_pacer_http},
                                   {"pacer.c.limiter", luaopen_pacer_limiter},
                                   {"pacer.c.server", luaopen_pacer_server},
                                   {"pacer.c.corelib", luaopen_pacer_corelib},
                                   {"pacer.c.crypto", luaopen_pacer_crypto},
                                   {"pacer.c.mail", luaopen_pacer_mail},
                                   {"pacer.c.proc", luaopen_pacer_proc},
                                   {"pacer.c.cache", luaopen_pacer_cache},
                                   {"pacer.c.queue", luaopen_pacer_queue},
                                   {"pacer.c.repl", luaopen_pacer_repl},
                                   {"pacer.c.sqlite", luaopen_pacer_sqlite},
                                   {"pacer.c.redis", luaopen_pacer_redis},
                                   {"pacer.c.input", luaopen_pacer_input},
                                   {"pacer.c.hist", luaopen_pacer_hist},
                                   {"pacer.c.linefile", luaopen_pacer_linefile},
                                   {"pacer.c.share", luaopen_pacer_share},
                                   {"cjson", luaopen_cjson},
                                   {NULL, NULL}};

void host_preload(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const luaL_Reg *m = modules; m->name; m++) {
    lua_pushcfunction(L, m->func);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
}
