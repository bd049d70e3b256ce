/* host.h: the Lua state of a pacer process: boot, the main task, exit status. */
#ifndef PACER_HOST_H
#define PACER_HOST_H

typedef struct host_opts {
  const char *script; /* file to run, or NULL */
  const char *code;   /* -e CODE, or NULL */
  const char *module; /* an embedded module run as the main chunk (subcommands) */
  char **args;        /* arguments after the script */
  int nargs;
  char **argv;      /* the whole command line, for arg[negative] */
  int script_index; /* index in argv of the script (arg[0]) */
  int verbose, quiet;
  int interactive; /* -i, or no script on a terminal: the REPL after the script */
  const char *events, *stats, *progress;
  const char *metrics;     /* --metrics HOST:PORT, or NULL */
  const char **thresholds; /* --threshold EXPR, each */
  int nthresholds;
  int workers;                   /* --workers N (0: not given) */
  int worker_id;                 /* 1..N in a worker process */
  struct workers_region *shared; /* what the workers share (host/spawn.c) */
} host_opts;

/* Runs the script or code as the main task. Returns the process exit status:
 * 0 ok, 1 error, 130 SIGINT. Never calls exit(). */
int host_run(const host_opts *o);

/* --workers N: maps what the workers share into o->shared and forks N workers. In a
 * worker it returns 0 with o->worker_id set, and the worker goes on to run the script;
 * in the parent it returns the run's exit status once every worker has ended
 * (host/spawn.c): the worst of theirs, 130 before 99 before any other failure. */
int host_spawn(host_opts *o, int *is_parent);

/* --workers N, in the parent once every worker has ended: prints the summary of the
 * whole run from the figures the workers left in o->shared, and writes --stats.
 * status[k - 1] is worker k's exit status, or minus the signal that killed it. Returns
 * 0, or -1 when the summary could not be made (said on stderr). */
int host_summary(const host_opts *o, const int *status);

struct lua_State;
/* Puts every pacer.c.* module in package.preload (host/modules.c). */
void host_preload(struct lua_State *L);
#endif
