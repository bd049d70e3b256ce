/* The cache index: lookups, LRU order, reclaim order, slot reuse, growth. */
#include "check.h"
#include "core/lru.h"
#include <stdio.h>
#include <string.h>

int main(void) {
  lru l;
  CHECK(lru_init(&l) == 0);
  uint32_t a = lru_insert(&l, "a", 1, 10, 5, 5);
  uint32_t b = lru_insert(&l, "b", 1, 20, 3, 3);
  uint32_t c = lru_insert(&l, "c", 1, 30, 9, 9);
  CHECK(l.count == 3 && l.bytes == 60);
  CHECK(lru_find(&l, "a", 1) == a && lru_find(&l, "b", 1) == b && lru_find(&l, "zz", 2) == LRU_NONE);
  /* least recently used is "a"; touching it makes "b" the oldest */
  CHECK(lru_oldest(&l) == a);
  lru_touch(&l, a);
  CHECK(lru_oldest(&l) == b);
  /* reclaim order follows time, not use */
  CHECK(lru_expired(&l, 2) == LRU_NONE);
  CHECK(lru_expired(&l, 3) == b);
  lru_remove(&l, b);
  CHECK(lru_expired(&l, 4) == LRU_NONE);
  CHECK(lru_expired(&l, 5) == a);
  /* update moves the reclaim time and the byte count */
  lru_update(&l, a, 15, 100, 100);
  CHECK(l.bytes == 45);
  CHECK(lru_expired(&l, 9) == c);
  lru_remove(&l, c);
  CHECK(lru_expired(&l, 99) == LRU_NONE && lru_expired(&l, 100) == a);
  /* a freed slot is handed out again */
  uint32_t d = lru_insert(&l, "d", 1, 1, 50, 50);
  CHECK(d == c || d == b);
  /* growth past many buckets keeps every key findable, and the heap ordered */
  char k[32];
  for (int i = 0; i < 5000; i++) {
    snprintf(k, sizeof k, "key-%d", i);
    CHECK(lru_insert(&l, k, strlen(k), 1, 1000 + (i * 7919) % 5000, 1000 + (i * 7919) % 5000) != LRU_NONE);
  }
  int found = 0;
  for (int i = 0; i < 5000; i++) {
    snprintf(k, sizeof k, "key-%d", i);
    found += lru_find(&l, k, strlen(k)) != LRU_NONE;
  }
  CHECK(found == 5000);
  double last = 0;
  int ordered = 1, n = 0;
  uint32_t s;
  while ((s = lru_expired(&l, 1e9)) != LRU_NONE) {
    if (l.e[s].reclaim_at < last) ordered = 0;
    last = l.e[s].reclaim_at;
    lru_remove(&l, s);
    n++;
  }
  CHECK(ordered && n == 5002 && l.count == 0 && l.bytes == 0);
  CHECK(lru_oldest(&l) == LRU_NONE);
  /* keys may hold NUL bytes */
  CHECK(lru_insert(&l, "x\0y", 3, 1, 1, 1) != LRU_NONE);
  CHECK(lru_find(&l, "x\0y", 3) != LRU_NONE && lru_find(&l, "x", 1) == LRU_NONE);
  lru_free(&l);
  return CHECK_DONE();
}
