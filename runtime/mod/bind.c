/* bind.c: helpers shared by the Lua bindings (see bind.h). */
#include "mod/bind.h"
#include "core/units.h"

void bind_set_str(lua_State *L, const char *k, const char *v) {
  if (!v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

void bind_set_lstr(lua_State *L, const char *k, const char *v, size_t len) {
  lua_pushlstring(L, v, len);
  lua_setfield(L, -2, k);
}

void bind_set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

void bind_set_num(lua_State *L, const char *k, lua_Number v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

void bind_set_bool(lua_State *L, const char *k, int v) {
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}

void bind_createmeta(lua_State *L, const char *tname, const luaL_Reg *methods, const luaL_Reg *meta) {
  luaL_newmetatable(L, tname); /* [mt] */
  if (meta) luaL_setfuncs(L, meta, 0);
  if (methods) {
    lua_newtable(L); /* [mt, methods] */
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

int bind_push_error(lua_State *L, const char *kind, const char *message) {
  lua_pushnil(L);
  lua_createtable(L, 0, 3);
  bind_set_str(L, "kind", kind);
  bind_set_str(L, "message", message);
  return 2;
}

double bind_check_seconds(lua_State *L, int i, const char *what) {
  if (lua_type(L, i) == LUA_TSTRING) {
    int64_t ns;
    const char *err = parse_duration(lua_tostring(L, i), &ns);
    if (err) luaL_error(L, "%s: invalid duration '%s': %s", what, lua_tostring(L, i), err);
    return (double)ns / 1e9;
  }
  if (!lua_isnumber(L, i))
    luaL_error(L, "%s: expected a duration (seconds or a string like \"250ms\"), got %s", what, luaL_typename(L, i));
  double s = lua_tonumber(L, i);
  const char *why = check_seconds(s);
  if (why) luaL_error(L, "%s: invalid duration %s: %s", what, lua_tostring(L, i), why);
  return s;
}

struct timeval bind_timeval_ns(int64_t ns) {
  if (ns < 0) ns = 0;
  int64_t us = ns / 1000 + (ns % 1000 != 0);
  struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
  return tv;
}

struct timeval bind_timeval(double seconds) {
  if (!(seconds > 0)) return bind_timeval_ns(0);
  if (seconds > 9e9) seconds = 9e9; /* past any timer pacer sets; keeps the product in range */
  return bind_timeval_ns((int64_t)(seconds * 1e9));
}

void bind_headers_begin(lua_State *L) {
  lua_createtable(L, 0, 16); /* [t]: room for a usual answer's headers, no rehash as it fills */
  lua_pushnil(L);            /* [t, repeats: name -> {v1, v2, ...}, made at the first repeat] */
}

void bind_headers_add(lua_State *L, const char *name, size_t nlen, const char *value, size_t vlen) {
  /* [t, rep]; a name lower-cased on the C stack: a luaL_Buffer (a box, a copy) per
   * header was a fair part of the cost of an answer */
  char small[256];
  if (nlen <= sizeof small) {
    for (size_t i = 0; i < nlen; i++) small[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    lua_pushlstring(L, small, nlen); /* [t, rep, name] */
  } else {
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, nlen);
    for (size_t i = 0; i < nlen; i++) p[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    luaL_pushresultsize(&b, nlen);
  }
  lua_pushvalue(L, -1);
  if (lua_rawget(L, -4) != LUA_TSTRING) { /* the first: t[name] = value */
    lua_pop(L, 1);
    lua_pushlstring(L, value, vlen);
    lua_rawset(L, -4);
    return;
  }
  lua_pop(L, 1); /* a repeat: appended to rep[name], which starts with the first value */
  if (lua_isnil(L, -2)) {
    lua_newtable(L);
    lua_replace(L, -3); /* [t, rep, name] */
  }
  lua_pushvalue(L, -1);
  if (lua_rawget(L, -3) != LUA_TTABLE) { /* [t, rep, name, nil] */
    lua_pop(L, 1);
    lua_createtable(L, 4, 0);
    lua_pushvalue(L, -2);
    lua_rawget(L, -5);
    lua_rawseti(L, -2, 1); /* {first} */
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, -5); /* rep[name] = {first} */
  }
  lua_pushlstring(L, value, vlen); /* [t, rep, name, list, value] */
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 2);
}

void bind_headers_end(lua_State *L) {
  int rep = lua_gettop(L), t = rep - 1;
  if (lua_isnil(L, rep)) { /* no name came twice */
    lua_pop(L, 1);
    return;
  }
  lua_pushnil(L);            /* join each list once: t[name] = "v1, v2, ..." */
  while (lua_next(L, rep)) { /* [t, rep, name, list] */
    int list = lua_gettop(L);
    lua_pushvalue(L, list - 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_Integer k = (lua_Integer)lua_rawlen(L, list);
    for (lua_Integer i = 1; i <= k; i++) {
      if (i > 1) luaL_addstring(&b, ", ");
      lua_rawgeti(L, list, i);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b); /* [t, rep, name, list, name, joined] */
    lua_rawset(L, t);
    lua_pop(L, 1);
  }
  lua_pop(L, 1); /* [t] */
}
