/* The intrusive list: FIFO order, removal from anywhere (twice is harmless), removal
 * while walking, and finding the object again from its node. */
#include "check.h"
#include "core/list.h"

typedef struct item {
  int id;
  list_node node;
} item;

static int id_of(list_node *n) {
  return LIST_ENTRY(n, item, node)->id;
}

int main(void) {
  list_node head;
  list_init(&head);
  CHECK(list_empty(&head));
  CHECK(list_len(&head) == 0);
  CHECK(list_pop(&head) == NULL);
  CHECK(list_first(&head) == NULL);

  item it[6];
  for (int i = 0; i < 6; i++) {
    it[i].id = i;
    list_init(&it[i].node);
    CHECK(list_empty(&it[i].node)); /* on no list */
    list_push(&head, &it[i].node);
  }
  CHECK(!list_empty(&head));
  CHECK(list_len(&head) == 6);
  CHECK(id_of(list_first(&head)) == 0);

  /* from the middle, the end and the front; twice is harmless */
  list_remove(&it[3].node);
  list_remove(&it[3].node);
  list_remove(&it[5].node);
  CHECK(list_len(&head) == 4);
  int want[] = {0, 1, 2, 4}, k = 0;
  LIST_EACH(n, &head) CHECK(k < 4 && id_of(n) == want[k++]);
  CHECK(k == 4);

  /* removing while walking: drop the even ones */
  LIST_EACH(n, &head) {
    if (id_of(n) % 2 == 0) list_remove(n);
  }
  CHECK(list_len(&head) == 1);
  CHECK(id_of(list_first(&head)) == 1);

  /* a removed node can be pushed again; FIFO order */
  list_push(&head, &it[3].node);
  list_push(&head, &it[0].node);
  int order[] = {1, 3, 0};
  for (int i = 0; i < 3; i++) {
    list_node *n = list_pop(&head);
    CHECK(n != NULL && id_of(n) == order[i]);
    CHECK(n && list_empty(n));
  }
  CHECK(list_empty(&head));
  CHECK(list_pop(&head) == NULL);

  /* many, to catch a broken link */
  item many[1000];
  for (int i = 0; i < 1000; i++) {
    many[i].id = i;
    list_push(&head, &many[i].node);
  }
  for (int i = 0; i < 1000; i += 3) list_remove(&many[i].node);
  size_t left = 0;
  int last = -1, sorted = 1;
  LIST_EACH(n, &head) {
    left++;
    if (id_of(n) <= last || id_of(n) % 3 == 0) sorted = 0;
    last = id_of(n);
  }
  CHECK(left == 666);
  CHECK(sorted);
  while (list_pop(&head)) {
  }
  CHECK(list_empty(&head));
  return CHECK_DONE();
}
