/* linefile.c: pacer.c.linefile, a file that lines are appended to, each whole: the
 * --events log. Under `pacer --workers N` every worker appends to the same file or
 * stream, and a line must never be cut by another worker's.
 *   f = linefile.open(path | "-") -> f | nil, message  ("-": stdout, never closed)
 *   f:write(line) -> true | nil, message   (line and "\n" in one writev(2))
 *   f:close()
 * Each worker opens the file itself with O_APPEND, so every write goes at the end
 * whatever the others wrote. One writev(2) of a line is whole to a regular file (the
 * kernel holds the file for the write) and to a pipe up to PIPE_BUF; a longer line to a
 * pipe or a terminal may be cut, so under --workers each line is written under the
 * lock the workers share for their output. That lock costs an uncontended futex a line,
 * and is held only for the one write (sched/workers.h). */
#include "mod/bind.h"
#include "sched/loop.h"
#include "sched/workers.h"
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define PACER_LINEFILE "pacer.linefile"

typedef struct linefile {
  int fd; /* -1 once closed */
  int is_stdout;
} linefile;

static linefile *checklinefile(lua_State *L) {
  linefile *f = luaL_checkudata(L, 1, PACER_LINEFILE);
  if (f->fd < 0) luaL_error(L, "attempt to use a closed line file");
  return f;
}

/* close, __close and __gc: idempotent, never raise; stdout is left open */
static int linefile_close(lua_State *L) {
  linefile *f = luaL_checkudata(L, 1, PACER_LINEFILE);
  if (f->fd >= 0 && !f->is_stdout) close(f->fd);
  f->fd = -1;
  return 0;
}

/* linefile.open(path | "-") -> f | nil, "path: reason" */
static int l_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  linefile *f = lua_newuserdatauv(L, sizeof *f, 0); /* made closed first */
  f->fd = -1;
  f->is_stdout = 0;
  luaL_setmetatable(L, PACER_LINEFILE);
  if (strcmp(path, "-") == 0) {
    f->fd = STDOUT_FILENO;
    f->is_stdout = 1;
    return 1;
  }
  f->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (f->fd < 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  return 1;
}

/* Writes all of iov (a short write goes on from where it stopped). 0, or an errno. */
static int write_all(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    ssize_t w = writev(fd, iov, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++, n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  return 0;
}

/* f:write(line) -> true | nil, message: appends line and a newline, whole */
static int linefile_write(lua_State *L) {
  linefile *f = checklinefile(L);
  size_t len;
  const char *line = luaL_checklstring(L, 2, &len);
  struct iovec iov[2] = {{(void *)line, len}, {"\n", 1}};
  if (f->is_stdout) fflush(stdout); /* what the script printed before comes first */
  struct workers_region *shared = loop_get(L)->shared;
  if (shared) workers_out_lock(shared);
  int e = write_all(f->fd, iov, 2);
  if (shared) workers_out_unlock(shared);
  if (e) {
    lua_pushnil(L);
    lua_pushstring(L, strerror(e));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int linefile_tostring(lua_State *L) {
  linefile *f = luaL_checkudata(L, 1, PACER_LINEFILE);
  lua_pushfstring(L, f->fd < 0 ? "pacer.linefile (closed)" : "pacer.linefile (%d)", f->fd);
  return 1;
}

int luaopen_pacer_linefile(lua_State *L) {
  static const luaL_Reg methods[] = {{"write", linefile_write}, {"close", linefile_close}, {NULL, NULL}};
  static const luaL_Reg meta[] = {
      {"__gc", linefile_close}, {"__close", linefile_close}, {"__tostring", linefile_tostring}, {NULL, NULL}};
  bind_createmeta(L, PACER_LINEFILE, methods, meta);
  static const luaL_Reg funcs[] = {{"open", l_open}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
