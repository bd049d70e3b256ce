/* The stable priority heap: lower first, push order within a priority. */
#include "check.h"
#include "core/pqueue.h"

int main(void) {
  pqueue q;
  pq_init(&q);
  pq_item it;
  CHECK(pq_pop(&q, &it) == -1);
  /* equal priorities leave in push order (a plain heap would not promise this) */
  for (uint32_t i = 0; i < 1000; i++) CHECK(pq_push(&q, 5, i) == 0);
  int stable = 1;
  for (uint32_t i = 0; i < 1000; i++) {
    CHECK(pq_pop(&q, &it) == 0);
    if (it.slot != i) stable = 0;
  }
  CHECK(stable);
  /* mixed: by priority, then push order */
  double prios[] = {5, 1, 5, 3, 1, 9, 3};
  for (uint32_t i = 0; i < 7; i++) pq_push(&q, prios[i], i);
  uint32_t want[] = {1, 4, 3, 6, 0, 2, 5};
  for (int i = 0; i < 7; i++) {
    CHECK(pq_pop(&q, &it) == 0);
    CHECK(it.slot == want[i]);
  }
  CHECK(q.len == 0);
  /* many random-ish priorities come out sorted */
  for (uint32_t i = 0; i < 10000; i++) pq_push(&q, (double)((i * 7919) % 97), i);
  double last = -1;
  uint64_t last_seq = 0;
  int sorted = 1;
  while (pq_pop(&q, &it) == 0) {
    if (it.priority < last || (it.priority == last && it.seq < last_seq)) sorted = 0;
    last = it.priority;
    last_seq = it.seq;
  }
  CHECK(sorted);
  pq_free(&q);
  return CHECK_DONE();
}
