/* task.c: the task object (pacer.spawn, task:wait), the scheduler's resume step,
 * pacer.sleep / pacer.now, and the suspend/wake primitives the Lua layer builds on. */
#include "sched/task.h"
#include "mod/bind.h"
#include "sched/loop.h"
#include <event2/event.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>

enum { TASK_LIVE, TASK_DONE, TASK_FAILED };

struct task {
  lua_State *co;
  pacer_loop *loop;
  int anchor; /* registry ref to the userdata while unfinished */
  int state;
  int nargs;           /* wake-up values waiting on co's stack */
  list_node ready;     /* on the loop's ready list while queued */
  list_node waiters;   /* tasks blocked in wait() on this one, in arrival order */
  list_node waiting;   /* on another task's waiters while in wait() */
  struct event *timer; /* pacer.sleep */
};

/* Marks a yield as pacer's own so wrapped coroutine.resume passes it up to us. */
static const char YIELD_MARK = 0;

/* uservalue slots of a task userdata */
#define UV_THREAD 1
#define UV_RESULT 2 /* {n=, ...} when done; {err=, traceback=} when failed */

static task *checktask(lua_State *L, int i) {
  return luaL_checkudata(L, i, PACER_TASK);
}

task *task_current(lua_State *L) {
  return loop_get(L)->current;
}

task *task_check_current(lua_State *L, const char *what) {
  task *t = task_current(L);
  if (!t) luaL_error(L, "%s: must be called from a task (pacer.spawn)", what);
  if (!lua_isyieldable(L))
    luaL_error(L, "%s: cannot wait here (inside a C call such as table.sort or string.gsub)", what);
  return t;
}

int task_suspend(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&YIELD_MARK);
  return lua_yield(L, 1);
}

int task_suspendk(lua_State *L, lua_KContext ctx, lua_KFunction k) {
  lua_pushlightuserdata(L, (void *)&YIELD_MARK);
  return lua_yieldk(L, 1, ctx, k);
}

lua_State *task_thread(task *t) {
  return t->co;
}

static int queued(const task *t) {
  return !list_empty(&t->ready);
}

void task_wake(task *t, int nargs) {
  pacer_loop *loop = t->loop;
  t->nargs += nargs;
  if (queued(t)) return;
  list_push(&loop->ready, &t->ready);
  event_active(loop->ready_ev, EV_TIMEOUT, 0);
}

int task_finished(task *t, int *ok) {
  if (ok) *ok = t->state == TASK_DONE;
  return t->state != TASK_LIVE;
}

/* Pushes the task userdata from its anchor (valid only while unfinished). */
static void push_self(lua_State *L, task *t) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->anchor);
}

void task_push_error(lua_State *L, task *t) {
  (void)t; /* the task userdata must be on top of L */
  lua_getiuservalue(L, -1, UV_RESULT);
  lua_getfield(L, -1, "err");
  lua_getfield(L, -2, "traceback");
  lua_remove(L, -3);
}

void task_push_results(lua_State *L, task *t) {
  (void)t; /* the task userdata must be on top of L */
  lua_getiuservalue(L, -1, UV_RESULT);
}

/* Called with the finished task's userdata at the top of L. Wakes waiters with
 * (true, results...) or (false, err). Returns how many were woken. */
static int wake_waiters(lua_State *L, task *t) {
  int woken = 0;
  lua_getiuservalue(L, -1, UV_RESULT); /* [ud, res] */
  list_node *n;
  while ((n = list_pop(&t->waiters))) {
    task *w = LIST_ENTRY(n, task, waiting);
    lua_State *wc = w->co;
    lua_checkstack(wc, 8);
    if (t->state == TASK_DONE) {
      lua_getfield(L, -1, "n");
      int n = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
      luaL_checkstack(wc, n + 1, "too many results");
      lua_pushboolean(wc, 1);
      for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_xmove(L, wc, 1);
      }
      task_wake(w, n + 1);
    } else {
      lua_pushboolean(wc, 0);
      lua_getfield(L, -1, "err");
      lua_xmove(L, wc, 1);
      task_wake(w, 2);
    }
    woken++;
  }
  lua_pop(L, 1);
  return woken;
}

static void finish(task *t, int status, int nres) {
  pacer_loop *loop = t->loop;
  lua_State *L = loop->L, *co = t->co;
  lua_checkstack(L, 8);
  push_self(L, t); /* [ud] */
  if (status == LUA_OK) {
    lua_createtable(L, nres, 1);
    lua_xmove(co, L, nres); /* [ud, res, r1..rn] */
    for (int i = nres; i >= 1; i--) lua_rawseti(L, -1 - i, i);
    lua_pushinteger(L, nres);
    lua_setfield(L, -2, "n");
    t->state = TASK_DONE;
  } else {
    lua_createtable(L, 0, 2);
    lua_xmove(co, L, 1);                           /* [ud, res, err] */
    const char *msg = luaL_tolstring(L, -1, NULL); /* [ud, res, err, msg] */
    luaL_traceback(L, co, msg, 0);
    lua_remove(L, -2);
    lua_setfield(L, -3, "traceback");
    lua_setfield(L, -2, "err");
    t->state = TASK_FAILED;
  }
  lua_setiuservalue(L, -2, UV_RESULT);
  lua_settop(co, 0);
  if (t->timer) {
    event_free(t->timer);
    t->timer = NULL;
  }
  loop->live--;
  if (wake_waiters(L, t) == 0 && t->state == TASK_FAILED && t->anchor != LUA_NOREF) {
    /* nobody is waiting: report now so the error is never silent */
    lua_getiuservalue(L, -1, UV_RESULT);
    lua_getfield(L, -1, "traceback");
    lua_getfield(L, LUA_REGISTRYINDEX, "pacer.main_task");
    int is_main = lua_touserdata(L, -1) == (void *)t;
    if (!is_main) {
      fprintf(stderr, "pacer: task failed: %s\n", lua_tostring(L, -2));
      fflush(stderr);
      loop->failed++;
    }
    lua_pop(L, 3);
  }
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, t->anchor);
  t->anchor = LUA_NOREF;
}

static void resume(task *t) {
  pacer_loop *loop = t->loop;
  int nargs = t->nargs, nres = 0;
  t->nargs = 0;
  task *prev = loop->current;
  loop->current = t;
  int status = lua_resume(t->co, loop->L, nargs, &nres);
  loop->current = prev;
  if (status == LUA_YIELD) {
    int ours = nres >= 1 && lua_touserdata(t->co, -nres) == (void *)&YIELD_MARK;
    lua_pop(t->co, nres);
    if (!ours) task_wake(t, 0); /* a bare coroutine.yield() in a task: let others run */
  } else {
    finish(t, status, nres);
  }
}

void task_run_ready(int fd, short what, void *arg) {
  (void)fd, (void)what;
  pacer_loop *loop = arg;
  /* Only the tasks queued before this turn: I/O gets its turn between rounds. */
  list_node *last = loop->ready.prev, *n;
  while ((n = list_pop(&loop->ready))) {
    resume(LIST_ENTRY(n, task, ready));
    if (n == last || loop->interrupted) break;
  }
  if (!list_empty(&loop->ready)) event_active(loop->ready_ev, EV_TIMEOUT, 0);
}

task *task_spawn(lua_State *L, int nargs) {
  pacer_loop *loop = loop_get(L);
  luaL_checktype(L, -nargs - 1, LUA_TFUNCTION);
  task *t = lua_newuserdatauv(L, sizeof *t, 2); /* [fn, args..., ud] */
  t->co = NULL;
  t->loop = loop;
  t->anchor = LUA_NOREF;
  t->state = TASK_LIVE;
  t->nargs = nargs;
  list_init(&t->ready);
  list_init(&t->waiters);
  list_init(&t->waiting);
  t->timer = NULL;
  luaL_setmetatable(L, PACER_TASK);
  lua_State *co = lua_newthread(L); /* [fn, args..., ud, co] */
  lua_setiuservalue(L, -2, UV_THREAD);
  t->co = co;
  lua_insert(L, -nargs - 2); /* [ud, fn, args...] */
  lua_xmove(L, co, nargs + 1);
  lua_pushvalue(L, -1);
  t->anchor = luaL_ref(L, LUA_REGISTRYINDEX);
  loop->live++;
  task_wake(t, 0); /* nargs already counted */
  return t;
}

/* pacer.spawn(fn, ...) -> task */
static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  task_spawn(L, lua_gettop(L) - 1);
  return 1;
}

/* task:wait() -> true, results... | false, err */
static int task_wait(lua_State *L) {
  task *t = checktask(L, 1);
  if (t->state == TASK_LIVE) {
    task *me = task_check_current(L, "task:wait");
    if (me == t) return luaL_error(L, "task:wait: a task cannot wait for itself");
    list_push(&t->waiters, &me->waiting);
    return task_suspend(L);
  }
  lua_getiuservalue(L, 1, UV_RESULT);
  if (t->state == TASK_FAILED) {
    lua_pushboolean(L, 0);
    lua_getfield(L, -2, "err");
    return 2;
  }
  lua_getfield(L, -1, "n");
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, n + 1, "too many results");
  lua_pushboolean(L, 1);
  for (int i = 1; i <= n; i++) lua_rawgeti(L, 2, i);
  return n + 1;
}

/* task:status() -> "running" | "done" | "failed" */
static int task_status(lua_State *L) {
  static const char *names[] = {"running", "done", "failed"};
  lua_pushstring(L, names[checktask(L, 1)->state]);
  return 1;
}

/* task:traceback() -> the traceback of a failed task, or nil */
static int task_traceback(lua_State *L) {
  task *t = checktask(L, 1);
  if (t->state != TASK_FAILED) return 0;
  lua_getiuservalue(L, 1, UV_RESULT);
  lua_getfield(L, -1, "traceback");
  return 1;
}

static int task_tostring(lua_State *L) {
  task *t = checktask(L, 1);
  static const char *names[] = {"running", "done", "failed"};
  lua_pushfstring(L, "pacer.task (%s): %p", names[t->state], (void *)t);
  return 1;
}

static int task_gc(lua_State *L) {
  task *t = checktask(L, 1);
  list_remove(&t->ready); /* never left on a list once collected (lua_close) */
  list_remove(&t->waiting);
  if (t->timer) {
    event_free(t->timer);
    t->timer = NULL;
  }
  return 0;
}

static void on_sleep(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  task_wake(arg, 0);
}

/* pacer.sleep(seconds | "250ms"): yields; other tasks run. */
static int l_sleep(lua_State *L) {
  double s = bind_check_seconds(L, 1, "pacer.sleep");
  task *t = task_check_current(L, "pacer.sleep");
  if (s <= 0) {
    task_wake(t, 0);
    return task_suspend(L);
  }
  if (!t->timer) t->timer = evtimer_new(t->loop->base, on_sleep, t);
  event_base_update_cache_time(t->loop->base); /* timers count from now, not from the turn's start */
  struct timeval tv = bind_timeval(s);
  evtimer_add(t->timer, &tv);
  return task_suspend(L);
}

static int l_now(lua_State *L) {
  lua_pushnumber(L, loop_now());
  return 1;
}

static int l_wall(lua_State *L) {
  lua_pushnumber(L, loop_wall());
  return 1;
}

/* current() -> the running task, or nil */
/* graceful(on): while some caller has it on, a first SIGINT only asks the run to stop
 * (see stopping); calls nest. */
static int l_graceful(lua_State *L) {
  pacer_loop *loop = loop_get(L);
  loop->graceful += lua_toboolean(L, 1) ? 1 : (loop->graceful > 0 ? -1 : 0);
  return 0;
}

/* stopping() -> true once a graceful SIGINT was seen: take no new work */
static int l_stopping(lua_State *L) {
  pacer_loop *loop = loop_get(L);
  lua_pushboolean(L, loop->stopping || loop->interrupted);
  return 1;
}

static int l_current(lua_State *L) {
  task *t = task_current(L);
  if (!t || t->anchor == LUA_NOREF) return 0;
  push_self(L, t);
  return 1;
}

/* suspend() -> whatever wake() passes: the block/unblock pair Lua code builds
 * semaphores and queues on. */
static int l_suspend(lua_State *L) {
  task_check_current(L, "pacer.suspend");
  return task_suspend(L);
}

/* wake(task, ...) queues a suspended task with the given values; a task in
 * pacer.sleep wakes early (sleep then returns the values). */
static int l_wake(lua_State *L) {
  task *t = checktask(L, 1);
  if (t->state != TASK_LIVE) return luaL_error(L, "pacer.wake: task has finished");
  if (queued(t) || t == task_current(L)) return luaL_error(L, "pacer.wake: task is not suspended");
  if (t->timer && evtimer_pending(t->timer, NULL)) evtimer_del(t->timer); /* cuts a sleep short */
  int n = lua_gettop(L) - 1;
  luaL_checkstack(t->co, n, "too many values");
  lua_xmove(L, t->co, n);
  task_wake(t, n);
  return 0;
}

/* The yield marker, so lualib/pacer/base/boot.lua can recognise our yields. */
static int l_yield_mark(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&YIELD_MARK);
  return 1;
}

int luaopen_pacer_task(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"wait", task_wait}, {"status", task_status}, {"traceback", task_traceback}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", task_gc}, {"__tostring", task_tostring}, {NULL, NULL}};
  static const luaL_Reg funcs[] = {
      {"spawn", l_spawn},       {"sleep", l_sleep},       {"now", l_now},   {"wall", l_wall},
      {"current", l_current},   {"suspend", l_suspend},   {"wake", l_wake}, {"yield_mark", l_yield_mark},
      {"graceful", l_graceful}, {"stopping", l_stopping}, {NULL, NULL}};
  bind_createmeta(L, PACER_TASK, methods, meta);
  luaL_newlib(L, funcs);
  return 1;
}
