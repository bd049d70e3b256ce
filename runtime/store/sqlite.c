/* sqlite.c: a small SQLite binding for pacer's durable stores (queue/sqlite.lua, limiter/sqlite.lua,
 * http/cache_store.lua): db = open(path); db:exec(sql, ...) -> rows (a list of {column = value}) with `?` parameters
 * bound from the arguments; statements are prepared once and kept. SQLite calls are quick local file I/O, made on the
 * loop thread. */
#include "mod/bind.h"
#include <lauxlib.h>
#include <sqlite3.h>
#include <string.h>

#define PACER_SQLITE "pacer.sqlite"
#define UV_STMTS     1 /* sql text -> light userdata sqlite3_stmt* */

typedef struct db {
  sqlite3 *h;
} db;

static db *checkdb(lua_State *L) {
  db *d = luaL_checkudata(L, 1, PACER_SQLITE);
  if (!d->h) luaL_error(L, "attempt to use a closed database");
  return d;
}

static int fail(lua_State *L, db *d, const char *what) {
  return luaL_error(L, "sqlite: %s: %s", what, sqlite3_errmsg(d->h));
}

/* The prepared statement for sql, made on first use. */
static sqlite3_stmt *prepared(lua_State *L, db *d, int sqli) {
  lua_getiuservalue(L, 1, UV_STMTS);
  lua_pushvalue(L, sqli);
  lua_rawget(L, -2);
  sqlite3_stmt *st = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!st) {
    size_t len;
    const char *sql = lua_tolstring(L, sqli, &len);
    if (sqlite3_prepare_v3(d->h, sql, (int)len, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
      lua_pop(L, 1);
      fail(L, d, sql);
    }
    lua_pushvalue(L, sqli);
    lua_pushlightuserdata(L, st);
    lua_rawset(L, -3);
  }
  lua_pop(L, 1);
  return st;
}

/* db:exec(sql, ...) -> rows */
static int db_exec(lua_State *L) {
  db *d = checkdb(L);
  luaL_checkstring(L, 2);
  sqlite3_stmt *st = prepared(L, d, 2);
  int nargs = lua_gettop(L) - 2;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  for (int i = 1; i <= nargs; i++) {
    int idx = i + 2, rc;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: rc = sqlite3_bind_null(st, i); break;
    case LUA_TBOOLEAN: rc = sqlite3_bind_int(st, i, lua_toboolean(L, idx)); break;
    case LUA_TNUMBER:
      rc = lua_isinteger(L, idx) ? sqlite3_bind_int64(st, i, lua_tointeger(L, idx))
                                 : sqlite3_bind_double(st, i, lua_tonumber(L, idx));
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      rc = sqlite3_bind_text(st, i, s, (int)len, SQLITE_TRANSIENT);
      break;
    }
    default: return luaL_error(L, "sqlite: cannot bind a %s (parameter %d)", luaL_typename(L, idx), i);
    }
    if (rc != SQLITE_OK) return fail(L, d, "bind");
  }
  lua_newtable(L);
  int n = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int cols = sqlite3_column_count(st);
    lua_createtable(L, 0, cols);
    for (int c = 0; c < cols; c++) {
      switch (sqlite3_column_type(st, c)) {
      case SQLITE_INTEGER: lua_pushinteger(L, sqlite3_column_int64(st, c)); break;
      case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, c)); break;
      case SQLITE_NULL: lua_pushnil(L); break;
      default: lua_pushlstring(L, (const char *)sqlite3_column_blob(st, c), (size_t)sqlite3_column_bytes(st, c));
      }
      lua_setfield(L, -2, sqlite3_column_name(st, c));
    }
    lua_rawseti(L, -2, ++n);
  }
  if (rc != SQLITE_DONE) {
    sqlite3_reset(st);
    return fail(L, d, lua_tostring(L, 2));
  }
  sqlite3_reset(st);
  return 1;
}

static int db_changes(lua_State *L) {
  lua_pushinteger(L, sqlite3_changes(checkdb(L)->h));
  return 1;
}

static int db_last_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sqlite3_last_insert_rowid(checkdb(L)->h));
  return 1;
}

/* close, __close and __gc: idempotent, never raise */
static int db_close(lua_State *L) {
  db *d = luaL_checkudata(L, 1, PACER_SQLITE);
  if (!d->h) return 0;
  sqlite3_stmt *st;
  while ((st = sqlite3_next_stmt(d->h, NULL))) sqlite3_finalize(st);
  sqlite3_close_v2(d->h);
  d->h = NULL;
  return 0;
}

/* open(path) -> db (WAL, synchronous=NORMAL: a commit survives a crash of the process) */
static int l_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  db *d = lua_newuserdatauv(L, sizeof *d, 1);
  d->h = NULL;
  luaL_setmetatable(L, PACER_SQLITE);
  lua_newtable(L);
  lua_setiuservalue(L, -2, UV_STMTS);
  if (sqlite3_open_v2(path, &d->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK) {
    const char *msg = d->h ? sqlite3_errmsg(d->h) : "out of memory";
    lua_pushfstring(L, "sqlite: cannot open %s: %s", path, msg);
    sqlite3_close_v2(d->h);
    d->h = NULL;
    return lua_error(L);
  }
  sqlite3_busy_timeout(d->h, 5000); /* other processes on the same file */
  char *err = NULL;
  if (sqlite3_exec(d->h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &err) != SQLITE_OK) {
    lua_pushfstring(L, "sqlite: %s: %s", path, err ? err : "cannot set WAL mode");
    sqlite3_free(err);
    return lua_error(L);
  }
  return 1;
}

int luaopen_pacer_sqlite(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"exec", db_exec}, {"changes", db_changes}, {"last_id", db_last_id}, {"close", db_close}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", db_close}, {"__close", db_close}, {NULL, NULL}};
  bind_createmeta(L, PACER_SQLITE, methods, meta);
  lua_pushcfunction(L, l_open);
  return 1;
}
