/* loop.c: the libevent base, clocks, SIGINT, and the turn of the loop. */
#include "sched/loop.h"
#include "sched/task.h"
#include <event2/event.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

pacer_loop *loop_get(lua_State *L) {
  return *(pacer_loop **)lua_getextraspace(L);
}

int64_t loop_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double loop_now(void) {
  return (double)loop_now_ns() / 1e9;
}

double loop_wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The loop whose loop_run is under way, for the SIGINT handler (a signal carries no
 * pointer): the process's one loop, as lua.c keeps its globalL. */
static pacer_loop *running_loop;

#define INTERRUPT_MASK (LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT)

/* Runs in the Lua code that was running when SIGINT came. Gone quietly once the loop has
 * seen the signal (the code yielded in time); raises "interrupted" once the code has kept
 * the loop from it for LOOP_SIGINT_GRACE, and ends the run unless the REPL takes it. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  pacer_loop *loop = loop_get(L);
  if (loop->interrupted && !loop->sigint_hook) {
    /* the run is ending: code that caught "interrupted" gets it again at its next line
     * or call, so it cannot go on (and, say, record the item as failed) */
    luaL_error(L, "interrupted");
    return;
  }
  if (loop->sigints_seen >= loop->sigints) {
    lua_sethook(L, NULL, 0, 0);
    return;
  }
  if ((double)(loop_now_ns() - loop->sigint_at) < LOOP_SIGINT_GRACE * 1e9) {
    lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, 1000); /* look again soon, cheaply */
    return;
  }
  loop->sigints_consumed++;
  if (loop->sigint_hook)
    lua_sethook(L, NULL, 0, 0); /* the REPL: its statement ends, the session goes on */
  else {
    loop->interrupted = 1; /* the run ends; the hook stays, at every line and call */
    event_base_loopbreak(loop->base);
    lua_sethook(L, interrupt_hook, INTERRUPT_MASK, 1);
  }
  luaL_error(L, "interrupted");
}

/* The process's SIGINT handler while the loop runs: only signal-safe steps. Marks the
 * running task's thread with the hook (lua_sethook may be called from a signal), then
 * hands the signal to libevent's handler, which wakes the loop's on_sigint. */
static void on_sigint_signal(int sig) {
  pacer_loop *loop = running_loop;
  if (!loop) return;
  int unseen = loop->sigints - loop->sigints_seen;
  loop->sigints++;
  if (unseen >= 2) { /* the third the loop never saw: the code swallows "interrupted" */
    signal(SIGINT, SIG_DFL);
    raise(SIGINT);
    return;
  }
  loop->sigint_at = loop_now_ns();
  struct task *t = loop->current;
  if (t) lua_sethook(task_thread(t), interrupt_hook, INTERRUPT_MASK, 1);
  void (*prev)(int) = loop->sigint_prev.sa_handler;
  if (!(loop->sigint_prev.sa_flags & SA_SIGINFO) && prev != SIG_DFL && prev != SIG_IGN) prev(sig);
}

static void on_sigint(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  pacer_loop *loop = arg;
  loop->sigints_seen++;
  if (loop->sigints_consumed > 0) { /* the hook raised for this one already */
    loop->sigints_consumed--;
    return;
  }
  if (loop->sigint_hook) {
    loop->sigint_hook(loop);
    return;
  }
  if (loop->graceful > 0 && !loop->stopping) {
    loop->stopping = 1;
    return;
  }
  loop->interrupted = 1;
  event_base_loopbreak(loop->base);
}

pacer_loop *loop_new(lua_State *L) {
  pacer_loop *loop = calloc(1, sizeof *loop);
  if (!loop) return NULL;
  struct event_config *cfg = event_config_new();
  if (!cfg) goto fail;
  /* timerfd-backed timers: pacing needs sub-millisecond wake-ups */
  event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
  /* epoll changes applied once a turn: libcurl drops a connection's socket when a
   * transfer ends and asks for it again when the next starts, often in the same turn
   * (two epoll_ctl calls a request, 5 % of a GET's time). No fd pacer watches is a dup() of
   * another, which is what the changelist cannot tell apart. */
  event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
  loop->base = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (!loop->base) goto fail;
  loop->L = L;
  list_init(&loop->ready);
  list_init(&loop->sendpaces);
  loop->ready_ev = event_new(loop->base, -1, 0, task_run_ready, loop);
  loop->sigint_ev = evsignal_new(loop->base, SIGINT, on_sigint, loop);
  if (!loop->ready_ev || !loop->sigint_ev) goto fail;
  *(pacer_loop **)lua_getextraspace(L) = loop;
  return loop;
fail:
  loop_free(loop);
  return NULL;
}

void loop_free(pacer_loop *loop) {
  if (!loop) return;
  if (loop->ready_ev) event_free(loop->ready_ev);
  if (loop->sigint_ev) event_free(loop->sigint_ev);
  if (loop->base) event_base_free(loop->base);
  free(loop);
}

void loop_set_verbosity(pacer_loop *loop, int verbosity) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  const char *env = getenv("PACER_LOG");
  for (int i = 0; env && i < 4; i++)
    if (strcmp(env, names[i]) == 0) verbosity = i - 1;
  loop->verbosity = verbosity;
}

void loop_log(pacer_loop *loop, int level, const char *fmt, ...) {
  if (level > loop->verbosity) return;
  static const char *tags[] = {"error: ", "warning: ", "", "debug: "};
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "pacer: %s%s\n", tags[level + 1], msg);
  fflush(stderr);
}

static int pending(pacer_loop *loop) {
  return event_base_get_num_events(loop->base, EVENT_BASE_COUNT_ADDED) -
         event_base_get_num_events(loop->base, EVENT_BASE_COUNT_ACTIVE);
}

int loop_run(pacer_loop *loop, int (*done)(void *), void *arg) {
  event_add(loop->sigint_ev, NULL);
  /* ours in front of libevent's (which the add installed), for code that never yields */
  struct sigaction sa;
  running_loop = loop;
  loop->sigints = loop->sigints_seen = 0;
  loop->sigints_consumed = 0;
  if (sigaction(SIGINT, NULL, &loop->sigint_prev) == 0) {
    sa = loop->sigint_prev;
    sa.sa_flags &= ~SA_SIGINFO;
    sa.sa_handler = on_sigint_signal;
    sigaction(SIGINT, &sa, NULL);
  }
  /* what is pending with nothing else going on: the SIGINT watch and libevent's own
   * (libevent counts an active event as added too, hence the difference) */
  int idle = pending(loop);
  while (!loop->interrupted && !done(arg)) {
    if (list_empty(&loop->ready) && pending(loop) <= idle)
      break; /* no timer, transfer, listener or ready task can wake anyone: a deadlock */
    if (event_base_loop(loop->base, EVLOOP_ONCE) < 0) break;
  }
  sigaction(SIGINT, &loop->sigint_prev, NULL);
  running_loop = NULL;
  event_del(loop->sigint_ev);
  return loop->interrupted || loop->stopping ? 130 : 0;
}
