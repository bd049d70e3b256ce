/* loop.h: the one event loop of a pacer process and the scheduler state around it.
 * The loop is the only mutable state that is not owned by a Lua object; it is reached
 * from any Lua thread through the main state's extra space. */
#ifndef PACER_LOOP_H
#define PACER_LOOP_H
#include "core/list.h"
#include <lua.h>
#include <signal.h>
#include <stdint.h>

struct event_base;
struct event;
struct task;
struct http_multi;
struct workers_region;

typedef struct pacer_loop {
  struct event_base *base;
  lua_State *L;           /* main state */
  struct task *current;   /* the task being resumed, or NULL */
  list_node ready;        /* tasks to resume on the next turn of the loop, in order */
  struct event *ready_ev; /* made active while `ready` is not empty */
  struct event *sigint_ev;
  int live;                                 /* tasks started and not finished */
  int failed;                               /* tasks that died with an error nobody waited for */
  volatile int interrupted;                 /* SIGINT seen */
  struct http_multi *http;                  /* libcurl multi glue, made on first use */
  void (*sigint_hook)(struct pacer_loop *); /* the REPL's Ctrl-C, instead of ending the run */
  int graceful;                             /* > 0: a first SIGINT only asks the run to stop (jobs) */
  volatile int stopping;                    /* that first SIGINT was seen: the run ends with 130 */
  int verbosity;                            /* PLOG_* level and below are printed */
  /* Ctrl-C for code that never yields (loop.c): the process's SIGINT handler counts, the
   * loop's callback counts what it saw, a Lua hook raises "interrupted" when the loop
   * does not get to see it in time. */
  volatile sig_atomic_t sigints;      /* SIGINTs delivered while the loop runs */
  volatile sig_atomic_t sigints_seen; /* of those, how many the loop's callback has seen */
  int sigints_consumed;               /* raised by the hook: the loop's callback skips them */
  volatile int64_t sigint_at;         /* when the last one came (monotonic ns) */
  struct sigaction sigint_prev;       /* libevent's handler, which ours chains to */
  list_node sendpaces;                /* limiters' send-side schedules (mod/sendpace.c) */
  struct workers_region *shared;      /* --workers: what the worker processes share, or NULL */
  int worker_id, worker_count;        /* 1..N of N; 1 of 1 without --workers */
  int limiters_made;                  /* shared limiters made so far: the next one's place */
} pacer_loop;

/* Log levels, as lualib/pacer/base/log.lua numbers them. */
enum { PLOG_ERROR = -1, PLOG_WARN = 0, PLOG_INFO = 1, PLOG_DEBUG = 2 };

/* Creates the loop and ties it to L (and every thread made from L later).
 * Returns NULL when the event base cannot be made. */
pacer_loop *loop_new(lua_State *L);
/* Frees what loop_new made; transfers and servers are freed by their own objects. */
void loop_free(pacer_loop *loop);
pacer_loop *loop_get(lua_State *L);

/* Monotonic nanoseconds, and the same clock in seconds. */
int64_t loop_now_ns(void);
double loop_now(void);
/* Wall-clock seconds since the epoch (for HTTP dates and quota resets). */
double loop_wall(void);

/* Sets the level from the command line's verbosity (-q: -1, -v: 1, -vv: 2), unless
 * PACER_LOG names one (error, warn, info, debug), as log.lua does. */
void loop_set_verbosity(pacer_loop *loop, int verbosity);
/* Prints "pacer: warning: ..." (or error:, debug:; nothing for info) on stderr when the
 * level is enabled: how C code that has no Lua caller (loop callbacks) reports. */
void loop_log(pacer_loop *loop, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Runs until `done()` says so, the loop runs dry, or SIGINT. Returns 0, or 130 on SIGINT.
 * While loop->graceful > 0 a first SIGINT only sets loop->stopping (the job finishes
 * what is in flight, and the run still ends with 130); a second one ends the run.
 * Lua code that keeps the loop from seeing a SIGINT for LOOP_SIGINT_GRACE seconds (a
 * `while true do end`) gets "interrupted" raised in it; the run then ends with 130 (the
 * error is raised again if the code catches it), or with the REPL's sigint_hook set,
 * the REPL goes on. A third SIGINT the loop has not seen ends the process at once (a
 * loop in a user's coroutine, which the hook on its task's thread cannot reach). */
#define LOOP_SIGINT_GRACE 0.25
int loop_run(pacer_loop *loop, int (*done)(void *), void *arg);
#endif
