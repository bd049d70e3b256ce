/* luadump.c: a build tool. `luadump OUT IN CHUNKNAME` compiles the Lua file IN as
 * CHUNKNAME (e.g. "@lualib/pacer/http/client.lua") and writes its bytecode, debug
 * information kept, to OUT. The binary embeds lualib/ as bytecode, so that no process
 * parses it again at start (tools/embed.cmake); a syntax error fails the build, with
 * the file and line. */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>

static int write_chunk(lua_State *L, const void *p, size_t n, void *ud) {
  (void)L;
  return fwrite(p, 1, n, ud) == n ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: luadump OUT IN CHUNKNAME\n");
    return 2;
  }
  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "luadump: out of memory\n");
    return 1;
  }
  FILE *in = fopen(argv[2], "rb");
  if (!in) {
    perror(argv[2]);
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  char buf[8192];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) luaL_addlstring(&b, buf, n);
  fclose(in);
  luaL_pushresult(&b);
  size_t len;
  const char *src = lua_tolstring(L, -1, &len);
  if (luaL_loadbufferx(L, src, len, argv[3], "t") != LUA_OK) {
    fprintf(stderr, "luadump: %s\n", lua_tostring(L, -1));
    return 1;
  }
  FILE *out = fopen(argv[1], "wb");
  if (!out) {
    perror(argv[1]);
    return 1;
  }
  int bad = lua_dump(L, write_chunk, out, 0);
  if (fclose(out) != 0 || bad) {
    fprintf(stderr, "luadump: cannot write %s\n", argv[1]);
    remove(argv[1]);
    return 1;
  }
  lua_close(L);
  return 0;
}
