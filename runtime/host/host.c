/* host.c: makes the Lua state (libraries, embedded lualib/, C modules), runs the main
 * chunk as a task on the loop, reports errors with a traceback, and tears down. */
#include "host/host.h"
#include "host/embed.h"
#include "mod/bind.h"
#include "mod/http.h"
#include "sched/loop.h"
#include "sched/task.h"
#include "sched/workers.h"
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* package.searchers entry: $PACER_PATH first (development), then the embedded copy. */
static int embedded_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *dir = getenv("PACER_PATH");
  if (dir && *dir) {
    const char *rel = luaL_gsub(L, name, ".", "/");
    const char *tries[] = {"%s/%s.lua", "%s/%s/init.lua"};
    for (int i = 0; i < 2; i++) {
      const char *path = lua_pushfstring(L, tries[i], dir, rel);
      FILE *f = fopen(path, "r");
      if (f) {
        fclose(f);
        if (luaL_loadfilex(L, path, "t") != LUA_OK) return lua_error(L);
        lua_pushstring(L, path);
        return 2;
      }
      lua_pop(L, 1);
    }
  }
  for (const struct embedded_module *m = pacer_embedded; m->name; m++) {
    if (strcmp(m->name, name) == 0) {
      /* bytecode made at build time (tools/luadump.c), named in it as m->chunkname */
      if (luaL_loadbufferx(L, m->data, m->len, m->chunkname, "b") != LUA_OK) return lua_error(L);
      lua_pushstring(L, m->chunkname + 1);
      return 2;
    }
  }
  lua_pushfstring(L, "no embedded module '%s'", name);
  return 1;
}

static void install_searcher(lua_State *L) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  int n = (int)lua_rawlen(L, -1);
  for (int i = n; i >= 2; i--) { /* shift to make room at 2, after preload */
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcfunction(L, embedded_searcher);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);
}

/* package.loaded["pacer.c.cmdline"]: what the command line said, for the Lua layer. */
static void publish_options(lua_State *L, const host_opts *o) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_createtable(L, 0, 6);
  bind_set_int(L, "verbosity", o->quiet ? -1 : o->verbose);
  bind_set_str(L, "events", o->events);
  bind_set_str(L, "stats", o->stats);
  bind_set_str(L, "progress", o->progress);
  bind_set_str(L, "metrics", o->metrics);
  bind_set_int(L, "worker", o->worker_id > 0 ? o->worker_id : 1);
  bind_set_int(L, "workers", o->workers > 1 ? o->workers : 1);
  bind_set_bool(L, "in_worker", o->worker_id > 0); /* (not the parent that forked them) */
  lua_createtable(L, o->nthresholds, 0);
  for (int i = 0; i < o->nthresholds; i++) {
    lua_pushstring(L, o->thresholds[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "thresholds");
  lua_setfield(L, -2, "pacer.c.cmdline");
  lua_pop(L, 1);
}

/* arg = {[-k..-1] = interpreter and options, [0] = script, [1..] = arguments} */
static void make_arg(lua_State *L, const host_opts *o) {
  lua_createtable(L, o->nargs, o->script_index + 1);
  for (int i = 0; i < o->script_index; i++) {
    lua_pushstring(L, o->argv[i]);
    lua_rawseti(L, -2, i - o->script_index);
  }
  lua_pushstring(L, o->script ? o->script : o->code ? "-e" : o->argv[0]);
  lua_rawseti(L, -2, 0);
  for (int i = 0; i < o->nargs; i++) {
    lua_pushstring(L, o->args[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setglobal(L, "arg");
}

typedef struct run_state {
  task *main;
  pacer_loop *loop;
} run_state;

static int main_done(void *arg) {
  run_state *rs = arg;
  int ok;
  if (!task_finished(rs->main, &ok)) return 0;
  return !ok || rs->loop->live == 0; /* a failed main ends the run at once */
}

/* Calls the at-exit hook of pacer.run.summary (summary, --stats, thresholds) under
 * protection. Returns the exit status it asks for: 99 when a threshold was crossed, 1
 * when items failed, else 0. A worker of --workers N leaves the figures the hook gives
 * back in its slot of the shared region, for the parent's run-wide summary. */
static int at_exit(lua_State *L, const char *how) {
  int code = 0, top = lua_gettop(L);
  pacer_loop *loop = loop_get(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "pacer.run.summary");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
    lua_getfield(L, -1, "at_exit");
    lua_pushstring(L, how);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK) { /* [summary, code, figures] */
      fprintf(stderr, "pacer: at exit: %s\n", lua_tostring(L, -1));
      code = 1;
    } else {
      code = (int)lua_tointeger(L, -2);
      size_t len;
      const char *figures = lua_tolstring(L, -1, &len);
      if (loop->shared && figures && workers_put_report(loop->shared, loop->worker_id, figures, len))
        fprintf(stderr, "pacer: worker %d of %d: its figures (%zu bytes, more than %d) are left out of the run's\n",
                loop->worker_id, loop->worker_count, len, WORKERS_REPORT);
    }
  } else {
    fprintf(stderr, "pacer: %s\n", lua_tostring(L, -1));
  }
  lua_settop(L, top);
  return code;
}

/* --metrics and --threshold, set up before the script runs (pacer.observe.cli).
 * Returns 0, or 2 (a command-line error, printed) when one of them cannot be had. */
static int start_observing(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "pacer.observe.cli");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "start");
  lua_call(L, 0, 1);
  int bad = lua_isstring(L, -1);
  if (bad) fprintf(stderr, "pacer: %s\ntry 'pacer --help'\n", lua_tostring(L, -1));
  lua_pop(L, 2);
  return bad ? 2 : 0;
}

static int pmain(lua_State *L) {
  const host_opts *o = lua_touserdata(L, 1);
  pacer_loop *loop = loop_get(L);
  loop_set_verbosity(loop, o->quiet ? -1 : o->verbose);
  luaL_openlibs(L);
  host_preload(L);
  install_searcher(L);
  publish_options(L, o);
  lua_getglobal(L, "require"); /* boot: wraps coroutine.*, sets the `pacer` global */
  lua_pushliteral(L, "pacer.base.boot");
  lua_call(L, 1, 0);
  make_arg(L, o);
  if ((o->metrics || o->nthresholds) && start_observing(L)) {
    lua_pushinteger(L, 2);
    return 1;
  }

  int status;
  if (o->interactive) { /* the REPL is the main function; the chunk (if any) its argument */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "pacer.repl");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "main");
    lua_remove(L, -2);
  }
  if (o->code)
    status = luaL_loadbuffer(L, o->code, strlen(o->code), "=(command line)");
  else if (o->module) {
    lua_getglobal(L, "require");
    lua_pushstring(L, o->module);
    status = lua_pcall(L, 1, 1, 0);
  } else if (o->script)
    status = luaL_loadfile(L, strcmp(o->script, "-") == 0 ? NULL : o->script);
  else
    status = (lua_pushnil(L), LUA_OK); /* the REPL alone */
  if (status != LUA_OK) {
    fprintf(stderr, "pacer: %s\n", lua_tostring(L, -1));
    lua_pushinteger(L, 1);
    return 1;
  }
  for (int i = 0; i < o->nargs; i++) lua_pushstring(L, o->args[i]);
  run_state rs = {task_spawn(L, o->nargs + (o->interactive ? 1 : 0)), loop}; /* [main task] */
  lua_pushlightuserdata(L, rs.main);
  lua_setfield(L, LUA_REGISTRYINDEX, "pacer.main_task");

  int code = loop_run(loop, main_done, &rs);
  int ok = 0;
  if (code == 130) {
    fprintf(stderr, "\npacer: interrupted\n");
    at_exit(L, "interrupted");
  } else if (!task_finished(rs.main, &ok)) {
    fprintf(stderr, "pacer: the main task is blocked with nothing left to wake it (deadlock)\n");
    code = 1;
  } else if (ok && loop->live > 0) {
    fprintf(stderr, "pacer: %d task%s blocked with nothing left to wake %s (deadlock)\n", loop->live,
            loop->live == 1 ? " is" : "s are", loop->live == 1 ? "it" : "them");
    code = 1;
  } else if (!ok) {
    lua_settop(L, 2);
    task_push_error(L, rs.main); /* [.., err, traceback] */
    if (loop->worker_count > 1) fprintf(stderr, "pacer: worker %d of %d: ", loop->worker_id, loop->worker_count);
    fprintf(stderr, "%s%s\n", loop->worker_count > 1 ? "" : "pacer: ", lua_tostring(L, -1));
    at_exit(L, "error");
    code = 1;
  } else {
    int status = at_exit(L, "ok"); /* 99: a threshold was crossed; 1: items failed */
    code = loop->failed ? 1 : status;
    if (o->module) { /* a subcommand's main function may return its exit status (2: bad usage) */
      lua_settop(L, 2);
      task_push_results(L, rs.main); /* [.., {n=, ...}] */
      lua_rawgeti(L, -1, 1);
      if (lua_isinteger(L, -1)) code = (int)lua_tointeger(L, -1);
    }
  }
  lua_pushinteger(L, code);
  return 1;
}

int host_run(const host_opts *o) {
  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "pacer: cannot create the Lua state (out of memory)\n");
    return 1;
  }
  pacer_loop *loop = loop_new(L);
  if (!loop) {
    fprintf(stderr, "pacer: cannot create the event loop\n");
    lua_close(L);
    return 1;
  }
  loop->shared = o->shared;
  loop->worker_id = o->worker_id > 0 ? o->worker_id : 1;
  loop->worker_count = o->workers > 1 ? o->workers : 1;
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, (void *)o);
  int code;
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "pacer: %s\n", msg ? msg : "(error object is not a string)");
    code = 1;
  } else {
    code = (int)lua_tointeger(L, -1);
  }
  http_shutdown(loop); /* cancels transfers still in flight */
  lua_close(L);
  loop_free(loop);
  return code;
}

/* The parent's Lua state: pacer.run.workers's summarize over the workers' figures.
 * [opts, status] */
static int psummary(lua_State *L) {
  const host_opts *o = lua_touserdata(L, 1);
  const int *status = lua_touserdata(L, 2);
  luaL_openlibs(L);
  host_preload(L);
  install_searcher(L);
  publish_options(L, o);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "pacer.run.workers");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "summarize");
  lua_createtable(L, o->workers, 0); /* [.., summarize, workers] */
  for (int k = 1; k <= o->workers; k++) {
    lua_createtable(L, 0, 3);
    size_t len;
    const char *figures = workers_get_report(o->shared, k, &len);
    if (figures) {
      lua_pushlstring(L, figures, len);
      lua_setfield(L, -2, "figures");
    }
    if (status[k - 1] < 0)
      bind_set_int(L, "signal", -status[k - 1]);
    else
      bind_set_int(L, "code", status[k - 1]);
    lua_rawseti(L, -2, k);
  }
  lua_call(L, 1, 0);
  return 0;
}

int host_summary(const host_opts *o, const int *status) {
  lua_State *L = luaL_newstate();
  pacer_loop *loop = L ? loop_new(L) : NULL;
  if (!loop) {
    fprintf(stderr, "pacer: no summary of the run: cannot create its Lua state\n");
    if (L) lua_close(L);
    return -1;
  }
  loop_set_verbosity(loop, o->quiet ? -1 : o->verbose);
  lua_pushcfunction(L, psummary);
  lua_pushlightuserdata(L, (void *)o);
  lua_pushlightuserdata(L, (void *)status);
  int rc = 0;
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "pacer: the summary of the run: %s\n", msg ? msg : "(error object is not a string)");
    rc = -1;
  }
  lua_close(L);
  loop_free(loop);
  return rc;
}
