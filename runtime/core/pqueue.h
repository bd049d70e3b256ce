/* pqueue.h: a binary heap of (priority, sequence) -> slot. Lower priority numbers leave
 * first; equal priorities leave in push order (the sequence breaks ties), which a plain
 * heap of (priority, item) does not promise. Pure C. */
#ifndef PACER_PQUEUE_H
#define PACER_PQUEUE_H
#include <stddef.h>
#include <stdint.h>

typedef struct pq_item {
  double priority;
  uint64_t seq;
  uint32_t slot;
} pq_item;

typedef struct pqueue {
  pq_item *items;
  size_t len, cap;
  uint64_t next_seq;
} pqueue;

void pq_init(pqueue *q);
void pq_free(pqueue *q);
/* 0, or -1 when out of memory (nothing changed). */
int pq_push(pqueue *q, double priority, uint32_t slot);
/* Removes the first item into *out; 0, or -1 when empty. */
int pq_pop(pqueue *q, pq_item *out);
#endif
