/* queue.c: pacer.queue, a priority queue of Lua values (heap in pqueue.c, values in a
 * Lua table by slot). pop() suspends while empty and push() while full; a push hands its
 * item straight to the longest-waiting pop. work(), retries and dead letters are Lua
 * (lualib/pacer/queue/memory.lua). */
#include "core/list.h"
#include "core/pqueue.h"
#include "mod/bind.h"
#include "sched/loop.h"
#include "sched/task.h"
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define PACER_QUEUE      "pacer.queue"
#define UV_VALUES        1
#define DEFAULT_PRIORITY 5

typedef struct qwaiter {
  task *t;
  list_node link;
} qwaiter;

typedef struct queue {
  pqueue pq;
  uint32_t *free_slots; /* slot numbers to reuse */
  size_t nfree, free_cap;
  uint32_t next_slot;
  size_t capacity; /* 0: unbounded */
  int fail_when_full;
  int closed, live;
  list_node poppers, pushers; /* FIFO of qwaiter: tasks waiting in pop() and push() */
  lua_Integer pushed, popped, max_len;
} queue;

static queue *checkqueue(lua_State *L) {
  queue *q = luaL_checkudata(L, 1, PACER_QUEUE);
  if (!q->live) luaL_error(L, "attempt to use a freed queue");
  return q;
}

/* Queues t at the end of a waiters list: 0, or -1 when out of memory. */
static int enqueue(list_node *waiters, task *t) {
  qwaiter *w = malloc(sizeof *w);
  if (!w) return -1;
  w->t = t;
  list_push(waiters, &w->link);
  return 0;
}

/* The longest-waiting task, taken off the list; NULL when none waits. */
static task *dequeue(list_node *waiters) {
  list_node *n = list_pop(waiters);
  if (!n) return NULL;
  qwaiter *w = LIST_ENTRY(n, qwaiter, link);
  task *t = w->t;
  free(w);
  return t;
}

static uint32_t take_slot(queue *q) {
  return q->nfree ? q->free_slots[--q->nfree] : q->next_slot++;
}

static int give_slot(queue *q, uint32_t s) {
  if (q->nfree == q->free_cap) {
    size_t cap = q->free_cap ? q->free_cap * 2 : 64;
    uint32_t *n = realloc(q->free_slots, cap * sizeof *n);
    if (!n) return -1;
    q->free_slots = n;
    q->free_cap = cap;
  }
  q->free_slots[q->nfree++] = s;
  return 0;
}

static int push_k(lua_State *L, int status, lua_KContext ctx);

/* q:push(item [, priority]) -> true | nil, "full" (full = "error"). Lower priorities
 * leave first; equal ones in push order. Suspends while the queue is at capacity. */
static int queue_push(lua_State *L) {
  checkqueue(L);
  luaL_checkany(L, 2);
  if (lua_isnil(L, 2)) return luaL_error(L, "queue:push: cannot push nil");
  luaL_optnumber(L, 3, DEFAULT_PRIORITY); /* checked before any waiting */
  return push_k(L, LUA_OK, 0);
}

static int push_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status, (void)ctx;
  queue *q = checkqueue(L);
  lua_settop(L, 3);
  double prio = luaL_optnumber(L, 3, DEFAULT_PRIORITY);
  if (q->closed) return luaL_error(L, "queue:push: the queue is closed");
  task *popper = dequeue(&q->poppers);
  if (popper) { /* hand over: it never touches the heap */
    lua_State *co = task_thread(popper);
    lua_pushvalue(L, 2);
    lua_xmove(L, co, 1);
    lua_pushnumber(co, prio);
    task_wake(popper, 2);
    q->pushed++;
    q->popped++;
    lua_pushboolean(L, 1);
    return 1;
  }
  if (q->capacity && q->pq.len >= q->capacity) {
    if (q->fail_when_full) {
      lua_pushnil(L);
      lua_pushliteral(L, "full");
      return 2;
    }
    task *t = task_check_current(L, "queue:push");
    if (enqueue(&q->pushers, t) < 0) return luaL_error(L, "queue:push: out of memory");
    return task_suspendk(L, 0, push_k); /* woken by pop or close: try again */
  }
  uint32_t s = take_slot(q);
  if (pq_push(&q->pq, prio, s) < 0) {
    give_slot(q, s);
    return luaL_error(L, "queue:push: out of memory");
  }
  lua_getiuservalue(L, 1, UV_VALUES);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, (lua_Integer)s + 1);
  q->pushed++;
  if ((lua_Integer)q->pq.len > q->max_len) q->max_len = (lua_Integer)q->pq.len;
  lua_pushboolean(L, 1);
  return 1;
}

/* Takes the first item onto L's stack: item, priority. 0 when empty. */
static int take(lua_State *L, queue *q) {
  pq_item it;
  if (pq_pop(&q->pq, &it) < 0) return 0;
  lua_getiuservalue(L, 1, UV_VALUES);
  lua_rawgeti(L, -1, (lua_Integer)it.slot + 1);
  lua_pushnil(L);
  lua_rawseti(L, -3, (lua_Integer)it.slot + 1);
  lua_remove(L, -2);
  lua_pushnumber(L, it.priority);
  give_slot(q, it.slot); /* on failure the slot is just not reused */
  q->popped++;
  task *pusher = dequeue(&q->pushers);
  if (pusher) task_wake(pusher, 0);
  return 2;
}

/* q:pop() -> item, priority | nil once closed and empty. Suspends while empty. */
static int queue_pop(lua_State *L) {
  queue *q = checkqueue(L);
  lua_settop(L, 1);
  if (take(L, q)) return 2;
  if (q->closed) return 0;
  task *t = task_check_current(L, "queue:pop");
  if (enqueue(&q->poppers, t) < 0) return luaL_error(L, "queue:pop: out of memory");
  return task_suspend(L); /* push hands us (item, priority); close, nothing */
}

/* q:try_pop() -> item, priority | nil (never waits) */
static int queue_try_pop(lua_State *L) {
  queue *q = checkqueue(L);
  lua_settop(L, 1);
  return take(L, q);
}

/* q:close(): no more pushes; waiting pops get nil once the queue is empty. Idempotent. */
static int queue_close(lua_State *L) {
  queue *q = checkqueue(L);
  q->closed = 1;
  task *t;
  while ((t = dequeue(&q->poppers))) task_wake(t, 0);
  while ((t = dequeue(&q->pushers))) task_wake(t, 0); /* they raise "closed" */
  return 0;
}

static int queue_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)checkqueue(L)->pq.len);
  return 1;
}

static int queue_closed(lua_State *L) {
  lua_pushboolean(L, checkqueue(L)->closed);
  return 1;
}

/* q:stats() -> {len=, pushed=, popped=, max_len=, waiting_pop=, waiting_push=, capacity=} */
static int queue_stats(lua_State *L) {
  queue *q = checkqueue(L);
  lua_createtable(L, 0, 7);
  bind_set_int(L, "len", (lua_Integer)q->pq.len);
  bind_set_int(L, "pushed", q->pushed);
  bind_set_int(L, "popped", q->popped);
  bind_set_int(L, "max_len", q->max_len);
  bind_set_int(L, "waiting_pop", (lua_Integer)list_len(&q->poppers));
  bind_set_int(L, "waiting_push", (lua_Integer)list_len(&q->pushers));
  bind_set_int(L, "capacity", (lua_Integer)q->capacity);
  bind_set_bool(L, "closed", q->closed);
  return 1;
}

static int queue_gc(lua_State *L) {
  queue *q = luaL_checkudata(L, 1, PACER_QUEUE);
  if (!q->live) return 0;
  q->live = 0;
  while (dequeue(&q->poppers)) {
  }
  while (dequeue(&q->pushers)) {
  }
  pq_free(&q->pq);
  free(q->free_slots);
  q->free_slots = NULL;
  return 0;
}

/* pacer.queue{capacity=, full = "wait" | "error"} (other options are the Lua layer's) */
static int l_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "capacity");
  lua_Integer cap = 0;
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
      return luaL_error(L, "pacer.queue: 'capacity' must be an integer >= 1");
    cap = lua_tointeger(L, -1);
  }
  lua_getfield(L, 1, "full");
  const char *full = luaL_optstring(L, -1, "wait");
  if (strcmp(full, "wait") && strcmp(full, "error"))
    return luaL_error(L, "pacer.queue: 'full' must be \"wait\" or \"error\", got \"%s\"", full);
  queue *q = lua_newuserdatauv(L, sizeof *q, 1);
  memset(q, 0, sizeof *q);
  pq_init(&q->pq);
  list_init(&q->poppers);
  list_init(&q->pushers);
  q->capacity = (size_t)cap;
  q->fail_when_full = strcmp(full, "error") == 0;
  q->live = 1;
  luaL_setmetatable(L, PACER_QUEUE);
  lua_newtable(L);
  lua_setiuservalue(L, -2, UV_VALUES);
  return 1;
}

int luaopen_pacer_queue(lua_State *L) {
  static const luaL_Reg methods[] = {{"push", queue_push},   {"pop", queue_pop}, {"try_pop", queue_try_pop},
                                     {"close", queue_close}, {"len", queue_len}, {"closed", queue_closed},
                                     {"stats", queue_stats}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", queue_gc}, {"__len", queue_len}, {NULL, NULL}};
  bind_createmeta(L, PACER_QUEUE, methods, meta);
  lua_pushcfunction(L, l_new);
  return 1;
}
