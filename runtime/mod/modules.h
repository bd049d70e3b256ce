/* modules.h: the luaopen function of every pacer.c.* module, for the host's preload
 * table (host/modules.c). A new module is one line here and one line there. */
#ifndef PACER_MODULES_H
#define PACER_MODULES_H
#include <lua.h>

int luaopen_pacer_task(lua_State *L);
int luaopen_pacer_http(lua_State *L);
int luaopen_pacer_limiter(lua_State *L);
int luaopen_pacer_server(lua_State *L);
int luaopen_pacer_corelib(lua_State *L);
int luaopen_pacer_crypto(lua_State *L);
int luaopen_pacer_mail(lua_State *L);
int luaopen_pacer_proc(lua_State *L);
int luaopen_pacer_cache(lua_State *L);
int luaopen_pacer_queue(lua_State *L);
int luaopen_pacer_repl(lua_State *L);
int luaopen_pacer_sqlite(lua_State *L);
int luaopen_pacer_redis(lua_State *L);
int luaopen_pacer_input(lua_State *L);
int luaopen_pacer_hist(lua_State *L);
int luaopen_pacer_linefile(lua_State *L);
int luaopen_pacer_share(lua_State *L);
int luaopen_cjson(lua_State *L);

#endif
