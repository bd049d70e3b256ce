/* lru.h: the cache's index: a hash map of string keys to entry slots, an LRU list and
 * a min-heap of reclaim times, so that expired entries go without a full scan. Values
 * live elsewhere (the Lua binding keeps them in a table indexed by slot). Pure C. */
#ifndef PACER_LRU_H
#define PACER_LRU_H
#include <stddef.h>
#include <stdint.h>

#define LRU_NONE UINT32_MAX

typedef struct lru_entry {
  char *key;
  size_t klen;
  uint64_t hash;
  size_t size;         /* bytes charged against max_bytes */
  double fresh_until;  /* get() answers until then */
  double reclaim_at;   /* removed from then on (>= fresh_until: stale-while-revalidate) */
  uint32_t prev, next; /* LRU list, most recent at head */
  uint32_t chain;      /* next in the hash bucket; LRU_NONE ends it */
  uint32_t heap_pos;   /* index in the reclaim heap */
  int used;
} lru_entry;

typedef struct lru {
  lru_entry *e;
  uint32_t cap, count, free_head;
  uint32_t *buckets;
  uint32_t nbuckets; /* a power of two */
  uint32_t head, tail;
  uint32_t *heap; /* slots ordered by reclaim_at */
  size_t bytes;
} lru;

/* 0 or -1 (out of memory). */
int lru_init(lru *l);
void lru_free(lru *l);

/* The slot holding key, or LRU_NONE. No side effect. */
uint32_t lru_find(const lru *l, const char *key, size_t klen);
/* Marks the slot most recently used. */
void lru_touch(lru *l, uint32_t slot);
/* Adds a new key (not present); returns its slot, or LRU_NONE when out of memory. */
uint32_t lru_insert(lru *l, const char *key, size_t klen, size_t size, double fresh_until, double reclaim_at);
/* Changes size and times of a present slot. */
void lru_update(lru *l, uint32_t slot, size_t size, double fresh_until, double reclaim_at);
/* Removes a slot; its number may be handed out again. */
void lru_remove(lru *l, uint32_t slot);
/* The least recently used slot, or LRU_NONE when empty. */
uint32_t lru_oldest(const lru *l);
/* A slot whose reclaim time is <= now, or LRU_NONE. O(1). */
uint32_t lru_expired(const lru *l, double now);
#endif
