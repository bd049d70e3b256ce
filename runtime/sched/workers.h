/* workers.h: what the worker processes of `pacer --workers N` share. The host maps one
 * region before it forks; each worker runs the script in its own Lua state and event
 * loop (nothing of Lua is shared), and the limiters it makes, in the same order in every
 * worker, are the same limiters: their GCRA schedules live here, under one process-shared
 * mutex, so N workers together keep the declared rate exactly. Each worker also leaves
 * its figures here at exit, for the parent's run-wide summary, and writes its --events
 * lines under a second lock, so that lines from different workers never interleave. */
#ifndef PACER_WORKERS_H
#define PACER_WORKERS_H
#include "core/gcra.h"
#include <stddef.h>
#include <stdint.h>

#define WORKERS_MAX      64
#define WORKERS_LIMITERS 256 /* shared limiters a run may make */
#define WORKERS_RULES    8
#define WORKERS_REPORT   (256 * 1024) /* a worker's figures at exit (pacer.run.workers) */
#define WORKERS_PRIO     9            /* a limiter's priorities, 1..9 */
#define WORKERS_LISTS    256          /* pacer.each calls a run may hand out from */
#define WORKERS_WHERE    160          /* room for the script line that made a list */

/* What one worker's copy of a limiter has waiting: the other workers count it as queued
 * ahead of theirs (max_wait) and let its first waiter go before a later one of theirs. */
typedef struct shared_queue {
  int64_t units[WORKERS_PRIO]; /* the units its waiters of each priority ask for */
  int head_prio;               /* its first waiter's priority, 1..9; 0 when none waits */
  int64_t head_since;          /* when that waiter queued */
  int64_t head_cost;
  int64_t head_due; /* when its timer is to fire: long past, the worker is taken as stalled */
} shared_queue;

/* One limiter's schedule, as every worker sees it. */
typedef struct shared_limiter {
  int used; /* made by a worker: the others check they made the same one */
  int nrules;
  int64_t gen; /* bumped by a rate change: workers re-read the rules, not just the times */
  double counts[WORKERS_RULES];
  int64_t periods[WORKERS_RULES];
  gcra rules[WORKERS_RULES];
  int64_t send_tat[WORKERS_RULES];  /* the send-side schedule (mod/sendpace.c) */
  int64_t answered;                 /* answers that got through, all the workers' (lim:answered) */
  shared_queue queues[WORKERS_MAX]; /* worker k's at k - 1 */
} shared_limiter;

typedef struct workers_region workers_region;

/* Maps the region (before fork). NULL, errno set, on failure. */
workers_region *workers_region_new(void);
/* Slot i (0-based) of the region, or NULL past WORKERS_LIMITERS. */
shared_limiter *workers_slot(workers_region *r, int i);
/* The region's lock; it may be taken again by the holder (a send paced by two limiters).
 * A worker that died holding it leaves it usable to the others. */
void workers_lock(workers_region *r);
void workers_unlock(workers_region *r);

/* Clears what worker k (1..N) left queued: for the parent, once it has been reaped. */
void workers_forget(workers_region *r, int k);

/* Worker k (1..N) leaves its figures for the parent. Returns 0, or -1 when they are
 * longer than WORKERS_REPORT (nothing is kept: the parent counts them missing). */
int workers_put_report(workers_region *r, int k, const char *data, size_t len);
/* Worker k's figures and their length, or NULL when it left none (it died first). Only
 * for the parent, once worker k has been reaped. */
const char *workers_get_report(workers_region *r, int k, size_t *len);

/* The k-th list (0-based) every worker hands items out from (pacer.each): a worker
 * free for another item takes the next index, so the faster takes more. Opening says
 * which list this worker means (n items, made at `where`): 0 when it is the one the
 * first worker to open it meant (it is made then), 1 when it is another (theirs gets
 * that one's "where, n items"), -1 past WORKERS_LISTS. */
int workers_list_open(workers_region *r, int k, int64_t n, const char *where, char *theirs, size_t cap);
/* The next index of list k, from 1 (past its n: none left). */
int64_t workers_list_take(workers_region *r, int k);

/* The lock around one output line (--events): taken by a worker for one write(2). */
void workers_out_lock(workers_region *r);
void workers_out_unlock(workers_region *r);
#endif
