/* repl.c: line input for the REPL without blocking the loop. libedit's callback
 * interface is fed from a libevent watch on stdin, so background tasks and requests
 * keep running while the prompt waits; the REPL task suspends in readline(). Ctrl-C
 * clears the line at the prompt, or abandons the running statement. History and
 * completion are libedit's; candidates come from a Lua function. */
#include "sched/loop.h"
#include "sched/task.h"
#include <editline/readline.h>
#include <event2/event.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libedit's callbacks carry no user pointer: this is how they reach the loop. It is set
 * once, to the process's one loop, when the REPL starts. */
static pacer_loop *repl_loop;

typedef struct repl_state {
  struct event *stdin_ev;
  task *reader;  /* the task waiting in readline(), or NULL */
  task *runner;  /* the REPL task waiting for a statement, or NULL */
  int completer; /* registry ref of the Lua completion function */
  int matches;   /* registry ref of the current candidates */
  int installed;
  int inject; /* a key to hand libedit before reading stdin (Ctrl-C's ^U) */
} repl_state;

static repl_state *state_of(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "pacer.repl");
  repl_state *r = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return r;
}

static void on_line(char *line) {
  lua_State *L = repl_loop->L;
  repl_state *r = state_of(L);
  rl_callback_handler_remove();
  r->installed = 0;
  event_del(r->stdin_ev);
  task *t = r->reader;
  r->reader = NULL;
  if (!t) {
    free(line);
    return;
  }
  lua_State *co = task_thread(t);
  if (line)
    lua_pushstring(co, line);
  else
    lua_pushnil(co); /* Ctrl-D */
  free(line);
  task_wake(t, 1);
}

static void on_stdin(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what, (void)arg;
  rl_callback_read_char();
}

/* Ctrl-C: give up waiting for the statement, or at the prompt clear the line and drop
 * a pending multi-line chunk, as lua.c does: readline() returns false. */
static void on_sigint(pacer_loop *loop) {
  repl_state *r = state_of(loop->L);
  if (r->runner) {
    task *t = r->runner;
    r->runner = NULL;
    lua_pushliteral(task_thread(t), "interrupted");
    task_wake(t, 1);
  } else if (r->reader) {
    /* libedit keeps its line buffer to itself: feed it a ^U (kill line) */
    fputs("^C\n", stdout);
    fflush(stdout);
    rl_on_new_line();
    r->inject = 0x15;
    rl_callback_read_char();
    task *t = r->reader;
    r->reader = NULL;
    rl_callback_handler_remove();
    r->installed = 0;
    event_del(r->stdin_ev);
    lua_pushboolean(task_thread(t), 0);
    task_wake(t, 1);
  }
}

/* libedit reads keys through this: an injected key first, else one byte of stdin. */
static int repl_getc(FILE *f) {
  repl_state *r = state_of(repl_loop->L);
  if (r->inject) {
    int c = r->inject;
    r->inject = 0;
    return c;
  }
  unsigned char c;
  return read(fileno(f), &c, 1) == 1 ? c : EOF;
}

/* readline(prompt) -> line | nil at end of input | false on Ctrl-C. Suspends the task,
 * not the loop. */
static int l_readline(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "> ");
  repl_state *r = state_of(L);
  if (!isatty(0)) { /* piped input: plain blocking reads (a file cannot be polled) */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int c, any = 0;
    while ((c = getchar()) != EOF && c != '\n') {
      luaL_addchar(&b, (char)c);
      any = 1;
    }
    if (c == EOF && !any) return 0;
    luaL_pushresult(&b);
    return 1;
  }
  task *t = task_check_current(L, "repl.readline");
  if (r->reader) return luaL_error(L, "repl.readline: already reading");
  r->reader = t;
  rl_callback_handler_install(prompt, on_line);
  r->installed = 1;
  event_add(r->stdin_ev, NULL);
  return task_suspend(L);
}

/* wait_statement() suspends the REPL task until statement_done(...) or Ctrl-C
 * ("interrupted"). */
static int l_wait_statement(lua_State *L) {
  repl_state *r = state_of(L);
  r->runner = task_check_current(L, "repl.wait_statement");
  return task_suspend(L);
}

/* statement_done(...) wakes the REPL task with the values, unless Ctrl-C let it go. */
static int l_statement_done(lua_State *L) {
  repl_state *r = state_of(L);
  if (!r->runner) return 0;
  task *t = r->runner;
  r->runner = NULL;
  int n = lua_gettop(L);
  lua_State *co = task_thread(t);
  luaL_checkstack(co, n, "too many results");
  lua_xmove(L, co, n);
  task_wake(t, n);
  return 0;
}

static char *generate(const char *text, int state) {
  (void)text;
  lua_State *L = repl_loop->L;
  repl_state *r = state_of(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->matches);
  lua_rawgeti(L, -1, state + 1);
  const char *m = lua_tostring(L, -1);
  char *out = m ? strdup(m) : NULL;
  lua_pop(L, 2);
  return out;
}

static char **complete(const char *text, int start, int end) {
  (void)start, (void)end;
  lua_State *L = repl_loop->L;
  repl_state *r = state_of(L);
  rl_attempted_completion_over = 1; /* never fall back to file names */
  if (r->completer == LUA_NOREF) return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->completer);
  lua_pushstring(L, text);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, r->matches);
  r->matches = luaL_ref(L, LUA_REGISTRYINDEX);
  return rl_completion_matches(text, generate);
}

/* set_completer(fn): fn(text) -> {candidates} */
static int l_set_completer(lua_State *L) {
  repl_state *r = state_of(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_unref(L, LUA_REGISTRYINDEX, r->completer);
  lua_settop(L, 1);
  r->completer = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static int l_add_history(lua_State *L) {
  add_history(luaL_checkstring(L, 1));
  return 0;
}

static int l_read_history(lua_State *L) {
  lua_pushboolean(L, read_history(luaL_checkstring(L, 1)) == 0);
  return 1;
}

static int l_write_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  stifle_history((int)luaL_optinteger(L, 2, 1000));
  lua_pushboolean(L, write_history(path) == 0);
  return 1;
}

static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty(0) && isatty(1));
  return 1;
}

static int repl_gc(lua_State *L) {
  repl_state *r = lua_touserdata(L, 1);
  if (r->installed) rl_callback_handler_remove();
  r->installed = 0;
  if (r->stdin_ev) event_free(r->stdin_ev);
  r->stdin_ev = NULL;
  if (repl_loop) repl_loop->sigint_hook = NULL;
  return 0;
}

int luaopen_pacer_repl(lua_State *L) {
  static const luaL_Reg funcs[] = {{"readline", l_readline},
                                   {"wait_statement", l_wait_statement},
                                   {"statement_done", l_statement_done},
                                   {"set_completer", l_set_completer},
                                   {"add_history", l_add_history},
                                   {"read_history", l_read_history},
                                   {"write_history", l_write_history},
                                   {"isatty", l_isatty},
                                   {NULL, NULL}};
  pacer_loop *loop = loop_get(L);
  repl_state *r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  r->completer = r->matches = LUA_NOREF;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, repl_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "pacer.repl");
  r->stdin_ev = event_new(loop->base, 0, EV_READ | EV_PERSIST, on_stdin, NULL);
  repl_loop = loop;
  loop->sigint_hook = on_sigint;
  rl_catch_signals = 0; /* SIGINT is the loop's */
  rl_attempted_completion_function = complete;
  rl_getc_function = repl_getc;
  rl_completion_append_character = '\0'; /* "pacer.sleep" then "(", not a space */
  rl_readline_name = "pacer";
  luaL_newlib(L, funcs);
  return 1;
}
