/* workers.c: the region the worker processes share (see workers.h). */
#include "sched/workers.h"
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* A worker's figures: `done` is set last, so a worker that dies mid-copy leaves none. */
typedef struct report {
  atomic_int done;
  size_t len;
  char data[WORKERS_REPORT];
} report;

/* One list the workers hand out from (workers_list_open). */
typedef struct shared_list {
  int used;
  int64_t n;
  char where[WORKERS_WHERE];
  atomic_llong taken;
} shared_list;

struct workers_region {
  pthread_mutex_t mu, out_mu;
  shared_limiter slots[WORKERS_LIMITERS];
  shared_list lists[WORKERS_LISTS];
  report reports[WORKERS_MAX];
};

/* A robust, process-shared mutex: a worker that dies holding it leaves it usable. */
static int init_mutex(pthread_mutex_t *mu, int recursive) {
  pthread_mutexattr_t a;
  int e = pthread_mutexattr_init(&a);
  if (e) return e;
  e = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  if (!e) e = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  if (!e && recursive) e = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  if (!e) e = pthread_mutex_init(mu, &a);
  pthread_mutexattr_destroy(&a);
  return e;
}

workers_region *workers_region_new(void) {
  /* anonymous pages come zeroed, and the reports' pages (16 MB for 64 workers) take
   * memory only once a worker writes in them: no memset */
  workers_region *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED) return NULL;
  int e = init_mutex(&r->mu, 1);
  if (!e) e = init_mutex(&r->out_mu, 0);
  if (e) {
    munmap(r, sizeof *r);
    errno = e;
    return NULL;
  }
  return r;
}

shared_limiter *workers_slot(workers_region *r, int i) {
  return i >= 0 && i < WORKERS_LIMITERS ? &r->slots[i] : NULL;
}

void workers_lock(workers_region *r) {
  /* the owner died mid-update: a schedule is a few integers, each written whole, so
   * the state is usable as it is */
  if (pthread_mutex_lock(&r->mu) == EOWNERDEAD) pthread_mutex_consistent(&r->mu);
}

void workers_unlock(workers_region *r) {
  pthread_mutex_unlock(&r->mu);
}

void workers_forget(workers_region *r, int k) {
  if (k < 1 || k > WORKERS_MAX) return;
  workers_lock(r);
  /* the slots in use are the first ones (the k-th limiter of any worker is slot k), and
   * past them lie pages no one touched: not read, so never faulted in */
  for (int i = 0; i < WORKERS_LIMITERS && r->slots[i].used; i++)
    memset(&r->slots[i].queues[k - 1], 0, sizeof(shared_queue));
  workers_unlock(r);
}

int workers_put_report(workers_region *r, int k, const char *data, size_t len) {
  if (k < 1 || k > WORKERS_MAX) return -1;
  report *p = &r->reports[k - 1];
  atomic_store(&p->done, 0);
  if (len > sizeof p->data) return -1;
  memcpy(p->data, data, len);
  p->len = len;
  atomic_store(&p->done, 1); /* sequentially consistent: the copy is seen before this */
  return 0;
}

const char *workers_get_report(workers_region *r, int k, size_t *len) {
  if (k < 1 || k > WORKERS_MAX) return NULL;
  report *p = &r->reports[k - 1];
  if (!atomic_load(&p->done)) return NULL;
  *len = p->len;
  return p->data;
}

int workers_list_open(workers_region *r, int k, int64_t n, const char *where, char *theirs, size_t cap) {
  if (k < 0 || k >= WORKERS_LISTS) return -1;
  shared_list *l = &r->lists[k];
  int same = 1;
  workers_lock(r);
  if (!l->used) {
    l->used = 1, l->n = n;
    snprintf(l->where, sizeof l->where, "%s", where);
  } else if (l->n != n || strncmp(l->where, where, sizeof l->where - 1) != 0) { /* (as far as kept) */
    same = 0;
    snprintf(theirs, cap, "%s, %lld items", l->where, (long long)l->n);
  }
  workers_unlock(r);
  return same ? 0 : 1;
}

int64_t workers_list_take(workers_region *r, int k) {
  return atomic_fetch_add(&r->lists[k].taken, 1) + 1;
}

void workers_out_lock(workers_region *r) {
  /* the owner died mid-write: at worst its line is cut short, which readers skip */
  if (pthread_mutex_lock(&r->out_mu) == EOWNERDEAD) pthread_mutex_consistent(&r->out_mu);
}

void workers_out_unlock(workers_region *r) {
  pthread_mutex_unlock(&r->out_mu);
}
