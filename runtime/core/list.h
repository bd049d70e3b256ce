/* list.h: a small intrusive doubly linked list, circular around a head node (as in the
 * Linux kernel's list.h). An object that can be listed embeds a list_node and is found
 * again with LIST_ENTRY; the list never allocates, so adding cannot fail. A node that
 * is on no list points at itself: removing it twice is harmless. Pure C. */
#ifndef PACER_LIST_H
#define PACER_LIST_H
#include <stddef.h>

typedef struct list_node {
  struct list_node *prev, *next;
} list_node;

/* An empty list (a head), or a node that is on no list. */
static inline void list_init(list_node *n) {
  n->prev = n->next = n;
}

/* 1 when the head has no node (or the node is on no list). */
static inline int list_empty(const list_node *head) {
  return head->next == head;
}

/* Adds n, which must be on no list, at the end (FIFO order with list_pop). */
static inline void list_push(list_node *head, list_node *n) {
  n->prev = head->prev;
  n->next = head;
  head->prev->next = n;
  head->prev = n;
}

/* Takes n off its list; n is then on no list. Harmless on a node that is on none. */
static inline void list_remove(list_node *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  list_init(n);
}

/* Takes the first node off and returns it; NULL when the list is empty. */
static inline list_node *list_pop(list_node *head) {
  if (list_empty(head)) return NULL;
  list_node *n = head->next;
  list_remove(n);
  return n;
}

/* The first node, or NULL when empty. */
static inline list_node *list_first(const list_node *head) {
  return list_empty(head) ? NULL : head->next;
}

/* How many nodes (O(n): for stats, not hot paths). */
static inline size_t list_len(const list_node *head) {
  size_t n = 0;
  for (const list_node *p = head->next; p != head; p = p->next) n++;
  return n;
}

/* The object of type `type` whose member `member` is the node n. */
#define LIST_ENTRY(n, type, member) ((type *)(void *)((char *)(n)-offsetof(type, member)))

/* for (list_node *n = first; n != head; n = next), where the body may remove n. */
#define LIST_EACH(n, head)                                                                                             \
  for (list_node *n = (head)->next, *n##_next = n->next; n != (head); n = n##_next, n##_next = n->next)
#endif
