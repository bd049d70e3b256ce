/* workers.c: the region the worker processes share (see workers.h). */
#include "sched/workers.h"
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

struct workers_region {
  pthread_mutex_t mu;
  shared_limiter slots[WORKERS_LIMITERS];
};

workers_region *workers_region_new(void) {
  workers_region *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED) return NULL;
  memset(r, 0, sizeof *r);
  pthread_mutexattr_t a;
  int e = pthread_mutexattr_init(&a);
  if (!e) e = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  if (!e) e = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  if (!e) e = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  if (!e) e = pthread_mutex_init(&r->mu, &a);
  pthread_mutexattr_destroy(&a);
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
