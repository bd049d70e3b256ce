/* pqueue.c: the stable priority heap (see pqueue.h). */
#include "core/pqueue.h"
#include <stdlib.h>

static int before(const pq_item *a, const pq_item *b) {
  return a->priority < b->priority || (a->priority == b->priority && a->seq < b->seq);
}

void pq_init(pqueue *q) {
  q->items = NULL;
  q->len = q->cap = 0;
  q->next_seq = 0;
}

void pq_free(pqueue *q) {
  free(q->items);
  pq_init(q);
}

int pq_push(pqueue *q, double priority, uint32_t slot) {
  if (q->len == q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 64;
    pq_item *n = realloc(q->items, cap * sizeof *n);
    if (!n) return -1;
    q->items = n;
    q->cap = cap;
  }
  pq_item it = {priority, q->next_seq++, slot};
  size_t i = q->len++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(&it, &q->items[parent])) break;
    q->items[i] = q->items[parent];
    i = parent;
  }
  q->items[i] = it;
  return 0;
}

int pq_pop(pqueue *q, pq_item *out) {
  if (q->len == 0) return -1;
  *out = q->items[0];
  pq_item last = q->items[--q->len];
  size_t i = 0, n = q->len;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && before(&q->items[c + 1], &q->items[c])) c++;
    if (!before(&q->items[c], &last)) break;
    q->items[i] = q->items[c];
    i = c;
  }
  if (n > 0) q->items[i] = last;
  return 0;
}
