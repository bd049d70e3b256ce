/* proc.c: processes: start a program without waiting for it (alert actions), poll its
 * end, whether a process still runs (durable queue leases), whether a fd is a terminal. */
#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* spawn(argv [, {NAME = value}]) -> pid | nil, message: starts a program without
 * waiting for it (alert actions must not stop the loop). */
static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)lua_rawlen(L, 1);
  luaL_argcheck(L, n >= 1 && n < 64, 1, "argv must hold 1 to 63 strings");
  const char *argv[64];
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 1, i + 1);
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "spawn: argv[%d] is not a string", i + 1);
    argv[i] = lua_tostring(L, -1); /* stays alive: the argv table holds it */
    lua_pop(L, 1);
  }
  argv[n] = NULL;
  /* the environment: ours, plus the given names (set in a copy, never in ours) */
  extern char **environ;
  int ne = 0;
  while (environ[ne]) ne++;
  int extra = 0;
  if (lua_istable(L, 2)) {
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      extra++;
      lua_pop(L, 1);
    }
  }
  const char **envp = lua_newuserdatauv(L, sizeof(char *) * (size_t)(ne + extra + 1), 0);
  int k = 0;
  for (int i = 0; i < ne; i++) envp[k++] = environ[i];
  if (lua_istable(L, 2)) {
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      envp[k++] = lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
      lua_insert(L, -3); /* keep the string on the stack, below key and value */
      lua_pop(L, 1);
    }
  }
  envp[k] = NULL;
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)argv, (char *const *)envp);
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot run '%s': %s", argv[0], strerror(rc));
    return 2;
  }
  lua_pushinteger(L, pid);
  return 1;
}

/* waitpid(pid) -> nil while it runs | exit status (128 + signal when killed) */
static int l_waitpid(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int st;
  pid_t r = waitpid(pid, &st, WNOHANG);
  if (r == 0) return 0;
  if (r < 0) {
    lua_pushinteger(L, -1);
    return 1;
  }
  lua_pushinteger(L, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  return 1;
}

/* pid() -> this process's id; pid_alive(pid) -> whether that process still runs */
static int l_pid(lua_State *L) {
  lua_pushinteger(L, getpid());
  return 1;
}

static int l_pid_alive(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int alive = pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
  if (alive) { /* a zombie (killed, not yet reaped) is not alive: state Z in /proc/PID/stat */
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f) {
      size_t n = fread(buf, 1, sizeof buf - 1, f);
      fclose(f);
      buf[n] = 0;
      const char *p = strrchr(buf, ')');
      if (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X')) alive = 0;
    }
  }
  lua_pushboolean(L, alive);
  return 1;
}

/* isatty(fd) for progress lines */
static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

int luaopen_pacer_proc(lua_State *L) {
  static const luaL_Reg funcs[] = {{"spawn", l_spawn},         {"waitpid", l_waitpid}, {"pid", l_pid},
                                   {"pid_alive", l_pid_alive}, {"isatty", l_isatty},   {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
