/* lru.c: hash map + LRU list + reclaim heap (see lru.h). */
#include "core/lru.h"
#include <stdlib.h>
#include <string.h>

static uint64_t hash_key(const char *k, size_t n) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)k[i];
    h *= 1099511628211ULL;
  }
  return h;
}

int lru_init(lru *l) {
  memset(l, 0, sizeof *l);
  l->head = l->tail = l->free_head = LRU_NONE;
  l->nbuckets = 16;
  l->buckets = malloc(l->nbuckets * sizeof *l->buckets);
  if (!l->buckets) return -1;
  memset(l->buckets, 0xff, l->nbuckets * sizeof *l->buckets);
  return 0;
}

void lru_free(lru *l) {
  for (uint32_t i = 0; i < l->cap; i++)
    if (l->e[i].used) free(l->e[i].key);
  free(l->e);
  free(l->buckets);
  free(l->heap);
  memset(l, 0, sizeof *l);
}

/* --- reclaim heap --- */

static int earlier(const lru *l, uint32_t a, uint32_t b) {
  return l->e[a].reclaim_at < l->e[b].reclaim_at;
}

static void heap_set(lru *l, uint32_t pos, uint32_t slot) {
  l->heap[pos] = slot;
  l->e[slot].heap_pos = pos;
}

static void sift_up(lru *l, uint32_t pos) {
  uint32_t slot = l->heap[pos];
  while (pos > 0) {
    uint32_t parent = (pos - 1) / 2;
    if (!earlier(l, slot, l->heap[parent])) break;
    heap_set(l, pos, l->heap[parent]);
    pos = parent;
  }
  heap_set(l, pos, slot);
}

static void sift_down(lru *l, uint32_t pos) {
  uint32_t slot = l->heap[pos], n = l->count;
  for (;;) {
    uint32_t c = 2 * pos + 1;
    if (c >= n) break;
    if (c + 1 < n && earlier(l, l->heap[c + 1], l->heap[c])) c++;
    if (!earlier(l, l->heap[c], slot)) break;
    heap_set(l, pos, l->heap[c]);
    pos = c;
  }
  heap_set(l, pos, slot);
}

static void heap_fix(lru *l, uint32_t pos) {
  if (pos > 0 && earlier(l, l->heap[pos], l->heap[(pos - 1) / 2]))
    sift_up(l, pos);
  else
    sift_down(l, pos);
}

/* --- LRU list --- */

static void unlink_entry(lru *l, uint32_t s) {
  lru_entry *e = &l->e[s];
  if (e->prev != LRU_NONE)
    l->e[e->prev].next = e->next;
  else
    l->head = e->next;
  if (e->next != LRU_NONE)
    l->e[e->next].prev = e->prev;
  else
    l->tail = e->prev;
}

static void push_front(lru *l, uint32_t s) {
  lru_entry *e = &l->e[s];
  e->prev = LRU_NONE;
  e->next = l->head;
  if (l->head != LRU_NONE) l->e[l->head].prev = s;
  l->head = s;
  if (l->tail == LRU_NONE) l->tail = s;
}

void lru_touch(lru *l, uint32_t s) {
  if (l->head == s) return;
  unlink_entry(l, s);
  push_front(l, s);
}

/* --- hash map --- */

uint32_t lru_find(const lru *l, const char *key, size_t klen) {
  uint64_t h = hash_key(key, klen);
  for (uint32_t s = l->buckets[h & (l->nbuckets - 1)]; s != LRU_NONE; s = l->e[s].chain) {
    const lru_entry *e = &l->e[s];
    if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) return s;
  }
  return LRU_NONE;
}

static int rehash(lru *l, uint32_t n) {
  uint32_t *b = malloc(n * sizeof *b);
  if (!b) return -1;
  memset(b, 0xff, n * sizeof *b);
  for (uint32_t s = 0; s < l->cap; s++) {
    if (!l->e[s].used) continue;
    uint32_t i = (uint32_t)(l->e[s].hash & (n - 1));
    l->e[s].chain = b[i];
    b[i] = s;
  }
  free(l->buckets);
  l->buckets = b;
  l->nbuckets = n;
  return 0;
}

static int grow(lru *l) {
  uint32_t cap = l->cap ? l->cap * 2 : 16;
  lru_entry *e = realloc(l->e, cap * sizeof *e);
  if (!e) return -1;
  l->e = e;
  uint32_t *heap = realloc(l->heap, cap * sizeof *heap);
  if (!heap) return -1;
  l->heap = heap;
  for (uint32_t s = cap; s-- > l->cap;) { /* new slots onto the free list, lowest first */
    e[s].used = 0;
    e[s].chain = l->free_head;
    l->free_head = s;
  }
  l->cap = cap;
  return 0;
}

uint32_t lru_insert(lru *l, const char *key, size_t klen, size_t size, double fresh_until, double reclaim_at) {
  if (l->free_head == LRU_NONE && grow(l) < 0) return LRU_NONE;
  if (l->count + 1 > l->nbuckets && rehash(l, l->nbuckets * 2) < 0) return LRU_NONE;
  char *k = malloc(klen ? klen : 1);
  if (!k) return LRU_NONE;
  memcpy(k, key, klen);
  uint32_t s = l->free_head;
  lru_entry *e = &l->e[s];
  l->free_head = e->chain;
  e->key = k;
  e->klen = klen;
  e->hash = hash_key(key, klen);
  e->size = size;
  e->fresh_until = fresh_until;
  e->reclaim_at = reclaim_at;
  e->used = 1;
  uint32_t b = (uint32_t)(e->hash & (l->nbuckets - 1));
  e->chain = l->buckets[b];
  l->buckets[b] = s;
  push_front(l, s);
  l->heap[l->count] = s;
  e->heap_pos = l->count;
  l->count++;
  sift_up(l, e->heap_pos);
  l->bytes += size;
  return s;
}

void lru_update(lru *l, uint32_t s, size_t size, double fresh_until, double reclaim_at) {
  lru_entry *e = &l->e[s];
  l->bytes = l->bytes - e->size + size;
  e->size = size;
  e->fresh_until = fresh_until;
  e->reclaim_at = reclaim_at;
  heap_fix(l, e->heap_pos);
  lru_touch(l, s);
}

void lru_remove(lru *l, uint32_t s) {
  lru_entry *e = &l->e[s];
  uint32_t *p = &l->buckets[e->hash & (l->nbuckets - 1)];
  while (*p != s) p = &l->e[*p].chain;
  *p = e->chain;
  unlink_entry(l, s);
  uint32_t pos = e->heap_pos, last = l->heap[l->count - 1];
  l->count--;
  if (pos < l->count) {
    heap_set(l, pos, last);
    heap_fix(l, pos);
  }
  l->bytes -= e->size;
  free(e->key);
  e->key = NULL;
  e->used = 0;
  e->chain = l->free_head;
  l->free_head = s;
}

uint32_t lru_oldest(const lru *l) {
  return l->tail;
}

uint32_t lru_expired(const lru *l, double now) {
  if (l->count == 0) return LRU_NONE;
  uint32_t s = l->heap[0];
  return l->e[s].reclaim_at <= now ? s : LRU_NONE;
}
