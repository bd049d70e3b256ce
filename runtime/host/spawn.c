/* spawn.c: `pacer --workers N`: forks the worker processes, forwards a SIGINT or SIGTERM
 * sent to the parent alone, and gives the run one exit status from theirs. */
#include "host/host.h"
#include "sched/loop.h"
#include "sched/workers.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The worse of two exit statuses: interrupted, then a threshold crossed, then the first
 * other failure. */
static int worse(int a, int b) {
  if (a == 130 || b == 130) return 130;
  if (a == 99 || b == 99) return 99;
  return a ? a : b;
}

/* --events: the run's one marker, written before the workers start, so that every
 * worker's lines come after it (`pacer report` charts from the last marker on). A
 * failure is a warning: the workers say theirs when they write. */
static void mark_run(const char *path, int n) {
  char line[128];
  int len = snprintf(line, sizeof line, "{\"run\":{\"started\":%.14g,\"pid\":%d,\"workers\":%d}}\n", loop_wall(),
                     (int)getpid(), n);
  int fd = strcmp(path, "-") == 0 ? STDOUT_FILENO : open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (fd == STDOUT_FILENO) fflush(stdout);
  if (fd < 0 || write(fd, line, (size_t)len) != len)
    fprintf(stderr, "pacer: warning: --events: cannot write to %s: %s\n", path, strerror(errno));
  if (fd > STDOUT_FILENO) close(fd);
}

int host_spawn(host_opts *o, int *is_parent) {
  *is_parent = 1;
  int n = o->workers;
  o->shared = workers_region_new();
  if (!o->shared) {
    fprintf(stderr, "pacer: --workers: cannot map the memory the workers share: %s\n", strerror(errno));
    return 1;
  }
  /* SIGCHLD, SIGINT and SIGTERM are read with sigwaitinfo(), not caught: blocked from
   * before the first fork, so none is lost; each worker gets the old mask back */
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, &old);
  if (o->events) mark_run(o->events, n);
  fflush(NULL); /* nothing buffered is written twice */
  pid_t pids[WORKERS_MAX];
  int status[WORKERS_MAX]; /* exit status, or minus the signal */
  int live = 0, code = 0;
  for (int i = 0; i < n; i++) {
    pid_t p = fork();
    if (p == 0) {
      sigprocmask(SIG_SETMASK, &old, NULL);
      *is_parent = 0;
      o->worker_id = i + 1;
      return 0;
    }
    if (p < 0) {
      fprintf(stderr, "pacer: --workers: cannot start worker %d of %d: %s\n", i + 1, n, strerror(errno));
      code = 1;
      for (int k = 0; k < i; k++) kill(pids[k], SIGTERM);
      n = i;
      break;
    }
    pids[i] = p;
    live++;
  }
  while (live > 0) {
    siginfo_t info;
    int sig = sigwaitinfo(&set, &info);
    if (sig < 0) continue; /* EINTR */
    if (sig != SIGCHLD) {
      /* from the terminal, the workers (one process group) had it already; sent to the
       * parent alone (kill, a supervisor), it is passed on */
      if (info.si_code == SI_USER || info.si_code == SI_QUEUE)
        for (int k = 0; k < n; k++)
          if (pids[k] > 0) kill(pids[k], sig);
      continue;
    }
    pid_t p;
    int st;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
      for (int k = 0; k < n; k++) {
        if (pids[k] != p) continue;
        pids[k] = 0;
        live--;
        workers_forget(o->shared, k + 1); /* its waiters, if it died with some, hold no one up */
        int c = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        status[k] = WIFSIGNALED(st) ? -WTERMSIG(st) : c;
        if (WIFSIGNALED(st))
          fprintf(stderr, "pacer: worker %d of %d was killed by signal %d\n", k + 1, n, WTERMSIG(st));
        else if (c)
          fprintf(stderr, "pacer: worker %d of %d exited with status %d\n", k + 1, n, c);
        code = worse(code, c);
      }
    }
  }
  /* still with the signals blocked: a late Ctrl-C does not cut the summary short; with
   * -q and no --stats it would show nothing (and the workers left no figures for it) */
  if (n > 0 && (!o->quiet || o->stats)) {
    o->workers = n;
    host_summary(o, status);
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  return code;
}
