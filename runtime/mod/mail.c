/* mail.c: pacer.c.mail, an SMTP send through libcurl on the event loop (for the email
 * alert action). Mail is rare and small, so it keeps its own multi handle beside the
 * HTTP one rather than share http.c's transfer bookkeeping; the glue is the same
 * hiperfifo pattern (cb_* called by libcurl, on_* by the loop). The task yields until
 * the server has taken the message or refused it. */
#include "sched/loop.h"
#include "sched/task.h"
#include <curl/curl.h>
#include <event2/event.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

typedef struct mail_multi {
  pacer_loop *loop;
  CURLM *multi;
  struct event *timer;
} mail_multi;

typedef struct mailjob {
  CURL *easy;
  task *task;
  struct curl_slist *rcpt;
  char *payload;
  size_t len, off;
  char errbuf[CURL_ERROR_SIZE];
} mailjob;

static mail_multi *the_multi; /* one loop per process; made on first use */

static void check_done(mail_multi *mm);

static void on_socket(evutil_socket_t fd, short what, void *arg) {
  mail_multi *mm = arg;
  int running, flags = 0;
  if (what & EV_READ) flags |= CURL_CSELECT_IN;
  if (what & EV_WRITE) flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(mm->multi, fd, flags, &running);
  check_done(mm);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  mail_multi *mm = arg;
  int running;
  curl_multi_socket_action(mm->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(mm);
}

static int cb_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  (void)e;
  mail_multi *mm = userp;
  struct event *ev = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (ev) {
      event_free(ev);
      curl_multi_assign(mm->multi, s, NULL);
    }
    return 0;
  }
  short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
  if (!ev) {
    ev = event_new(mm->loop->base, s, kind, on_socket, mm);
    if (!ev) return -1;
    curl_multi_assign(mm->multi, s, ev);
  } else {
    event_del(ev);
    event_assign(ev, mm->loop->base, s, kind, on_socket, mm);
  }
  event_add(ev, NULL);
  return 0;
}

static int cb_timer(CURLM *m, long timeout_ms, void *userp) {
  (void)m;
  mail_multi *mm = userp;
  if (timeout_ms < 0) {
    evtimer_del(mm->timer);
  } else { /* 0 means "soon, but not inside this callback" */
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(mm->timer, &tv);
  }
  return 0;
}

static mail_multi *multi_get(pacer_loop *loop) {
  if (the_multi) return the_multi;
  mail_multi *mm = calloc(1, sizeof *mm);
  if (!mm) return NULL;
  mm->loop = loop;
  mm->multi = curl_multi_init();
  mm->timer = evtimer_new(loop->base, on_timeout, mm);
  if (!mm->multi || !mm->timer) {
    if (mm->multi) curl_multi_cleanup(mm->multi);
    if (mm->timer) event_free(mm->timer);
    free(mm);
    return NULL;
  }
  curl_multi_setopt(mm->multi, CURLMOPT_SOCKETFUNCTION, cb_socket);
  curl_multi_setopt(mm->multi, CURLMOPT_SOCKETDATA, mm);
  curl_multi_setopt(mm->multi, CURLMOPT_TIMERFUNCTION, cb_timer);
  curl_multi_setopt(mm->multi, CURLMOPT_TIMERDATA, mm);
  the_multi = mm;
  return mm;
}

static void job_free(mailjob *j) {
  if (j->easy) {
    if (the_multi) curl_multi_remove_handle(the_multi->multi, j->easy);
    curl_easy_cleanup(j->easy);
  }
  curl_slist_free_all(j->rcpt);
  free(j->payload);
  free(j);
}

/* libcurl reads the message (headers and body, CRLF lines) from here. */
static size_t cb_read(char *buf, size_t size, size_t n, void *arg) {
  mailjob *j = arg;
  size_t room = size * n, left = j->len - j->off;
  size_t k = left < room ? left : room;
  memcpy(buf, j->payload + j->off, k);
  j->off += k;
  return k;
}

/* Wakes the task with true, or nil, {kind = "mail", message =} (the server's or
 * libcurl's words; never the password, which libcurl does not echo). */
static void check_done(mail_multi *mm) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(mm->multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    mailjob *j;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
    lua_State *L = task_thread(j->task);
    lua_checkstack(L, 4);
    int n = 1;
    if (msg->data.result == CURLE_OK) {
      lua_pushboolean(L, 1);
    } else {
      long code = 0;
      curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
      lua_pushnil(L);
      lua_createtable(L, 0, 3);
      lua_pushliteral(L, "mail");
      lua_setfield(L, -2, "kind");
      lua_pushstring(L, j->errbuf[0] ? j->errbuf : curl_easy_strerror(msg->data.result));
      lua_setfield(L, -2, "message");
      lua_pushinteger(L, code);
      lua_setfield(L, -2, "code");
      n = 2;
    }
    task *t = j->task;
    job_free(j);
    task_wake(t, n);
  }
}

static const char *optstr(lua_State *L, const char *k) {
  lua_getfield(L, 1, k);
  const char *s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_pop(L, 1); /* the string stays alive: it is a field of the options table */
  return s;
}

/* send{url =, from =, to = {...}, message =, user =, password =, starttls =, verify =,
 * timeout =} -> true | nil, {kind = "mail", message =, code = SMTP reply}. Yields. */
static int l_send(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *url = optstr(L, "url"), *from = optstr(L, "from"), *user = optstr(L, "user"),
             *password = optstr(L, "password");
  size_t len = 0;
  lua_getfield(L, 1, "message");
  const char *message = luaL_checklstring(L, -1, &len);
  lua_pop(L, 1);
  if (!url || !from) return luaL_error(L, "mail.send: 'url' and 'from' are required");
  lua_getfield(L, 1, "starttls");
  int starttls = lua_toboolean(L, -1);
  lua_getfield(L, 1, "verify");
  int verify = lua_isnil(L, -1) || lua_toboolean(L, -1);
  lua_getfield(L, 1, "timeout");
  double timeout = luaL_optnumber(L, -1, 30);
  lua_getfield(L, 1, "to");
  luaL_checktype(L, -1, LUA_TTABLE);
  int nto = (int)lua_rawlen(L, -1);
  if (nto < 1) return luaL_error(L, "mail.send: 'to' needs at least one address");
  for (int i = 1; i <= nto; i++) {
    lua_rawgeti(L, -1, i);
    luaL_checkstring(L, -1);
    lua_pop(L, 1);
  }
  task *t = task_check_current(L, "mail.send");
  mail_multi *mm = multi_get(loop_get(L));
  /* from here on nothing raises until the job is handed to libcurl */
  mailjob *j = calloc(1, sizeof *j);
  if (!mm || !j || !(j->payload = malloc(len ? len : 1)) || !(j->easy = curl_easy_init())) {
    if (j) job_free(j);
    lua_pushnil(L);
    lua_pushliteral(L, "out of memory");
    return 2;
  }
  memcpy(j->payload, message, len);
  j->len = len;
  j->task = t;
  int ok = 1;
  for (int i = 1; i <= nto && ok; i++) {
    lua_rawgeti(L, -1, i);
    struct curl_slist *r = curl_slist_append(j->rcpt, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (r) j->rcpt = r;
    ok = r != NULL;
  }
  CURL *e = j->easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
  curl_easy_setopt(e, CURLOPT_MAIL_RCPT, j->rcpt);
  curl_easy_setopt(e, CURLOPT_READFUNCTION, cb_read);
  curl_easy_setopt(e, CURLOPT_READDATA, j);
  curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  if (user) curl_easy_setopt(e, CURLOPT_USERNAME, user);
  if (password) curl_easy_setopt(e, CURLOPT_PASSWORD, password);
  if (starttls) curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
  if (!verify) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf);
  curl_easy_setopt(e, CURLOPT_PRIVATE, j);
  if (!ok || curl_multi_add_handle(mm->multi, e) != CURLM_OK) {
    job_free(j);
    lua_pushnil(L);
    lua_pushliteral(L, "cannot start the mail transfer");
    return 2;
  }
  return task_suspend(L);
}

int luaopen_pacer_mail(lua_State *L) {
  static const luaL_Reg funcs[] = {{"send", l_send}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
