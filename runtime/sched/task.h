/* task.h: tasks are Lua coroutines driven by the event loop. A C primitive that must
 * wait records the current task, then returns task_suspend(); whoever completes the
 * wait pushes the results on task_thread() and calls task_wake(). */
#ifndef PACER_TASK_H
#define PACER_TASK_H
#include <lua.h>

typedef struct task task;

#define PACER_TASK "pacer.task"

/* The task being run, or NULL when called outside any task. */
task *task_current(lua_State *L);
/* Like task_current, but raises "<what>: must be called from a task" when there is none
 * or when L cannot yield here (inside a C call such as table.sort). */
task *task_check_current(lua_State *L, const char *what);

/* Yields the running task until task_wake(); the values given to task_wake become the
 * primitive's results. Use as `return task_suspend(L)`. The k variant resumes in k. */
int task_suspend(lua_State *L);
int task_suspendk(lua_State *L, lua_KContext ctx, lua_KFunction k);

/* The thread to push wake-up values on. */
lua_State *task_thread(task *t);
/* Queues t to be resumed on the next turn of the loop with the top `nargs` values of
 * task_thread(t). Never resumes inside the caller. */
void task_wake(task *t, int nargs);

/* Starts a task running the function at stack index -nargs-1 with the nargs values above
 * it (all popped); pushes the task object. */
task *task_spawn(lua_State *L, int nargs);
/* 1 when finished (ok or not); *ok is 0 when it died with an error. */
int task_finished(task *t, int *ok);
/* With the task's userdata on top of L: pushes the error value a failed task died with
 * plus its traceback string; or the {n=, ...} results of a finished one. */
void task_push_error(lua_State *L, task *t);
void task_push_results(lua_State *L, task *t);

/* The loop's ready event callback: resumes every queued task. */
void task_run_ready(int fd, short what, void *arg);

int luaopen_pacer_task(lua_State *L);
#endif
