/* sendpace.h: where a limiter's grants meet the wire. A limiter spaces its *grants*,
 * but a server judges *arrivals*: the time from a grant to the bytes on the wire varies
 * (Lua work, curl's timer, the loop's turn), so a late send followed by a punctual one
 * can leave a gap a strict server (nginx limit_req, burst 0) refuses. A sendpace keeps a
 * second GCRA per rule over the times requests really go out (libcurl's PREREQFUNCTION,
 * just before the request is written) and, when a send would come too soon after the
 * previous ones, holds it there for the few microseconds left. It also pulls the
 * limiter's own schedule after the sends, so the next grant is timed from them.
 *
 * The link from a grant to its transfer is the task: limiter:acquire() notes the grant
 * on the task's behalf (sendpace_granted), and that task's next pacer.request claims it
 * (sendpace_claim). A grant no transfer claims within SENDPACE_UNCLAIMED_NS was not for a
 * request (a limiter used for something else) and is forgotten. */
#ifndef PACER_SENDPACE_H
#define PACER_SENDPACE_H
#include "core/gcra.h"
#include "core/list.h"
#include "sched/loop.h"
#include "sched/task.h"
#include <lua.h>
#include <stdint.h>

#define SENDPACE_RULES        8
#define SENDPACE_PENDING      256 /* grants waiting for their transfer, per limiter */
#define SENDPACE_LEAD_SAMPLES 32
#define SENDPACE_CLAIMS       4 /* limiters one request may be paced by (a path group, the client) */

typedef struct sendpace sendpace;

/* The grants a transfer claimed: sent (or not) together. */
typedef struct sendpace_claims {
  int n;
  sendpace *sp[SENDPACE_CLAIMS];
  int64_t cost[SENDPACE_CLAIMS];
  int64_t granted[SENDPACE_CLAIMS]; /* when each was granted (ns) */
  int done;                         /* on the wire, or given back */
  int queued;                       /* handed to libcurl (counted in each sendpace's queued) */
  int wired;                        /* sendpace_wire saw it written: */
  int64_t wire_at, wire_extra;      /* when, and how long it stalled on the way */
  int64_t sent_at;                  /* when it went out (ns) */
} sendpace_claims;

/* A sendpace for the limiter whose rules are `rules` (it keeps the pointer and moves
 * their schedule after sends); registered on the loop. NULL when out of memory. */
sendpace *sendpace_new(pacer_loop *loop, gcra *rules, int nrules);
/* The rules changed (a rate change): re-reads intervals and tolerances. */
void sendpace_rules(sendpace *sp, int nrules);
/* The limiter is gone: forget its rules; freed once no transfer holds a claim. */
void sendpace_orphan(sendpace *sp);

/* Under --workers: the send-side schedule is shared too. `hook(arg, 0)` locks and reads
 * the shared schedule in (through sendpace_load), `hook(arg, 1)` writes it back
 * (sendpace_store) and unlocks; the send side calls it around its own changes. */
void sendpace_sync(sendpace *sp, void (*hook)(void *arg, int out), void *arg);
void sendpace_load(sendpace *sp, const int64_t *tats);
void sendpace_store(const sendpace *sp, int64_t *tats);

/* Nanoseconds a grant is made ahead of its slot so that it reaches the wire on time:
 * learnt from recent sends, only for rules with a burst of 1 (for a larger burst a late
 * send is caught up later). */
int64_t sendpace_lead(const sendpace *sp);
/* Task t was granted `cost` units at `now`. */
void sendpace_granted(sendpace *sp, task *t, int64_t now, int64_t cost);

/* Moves the grants task t holds (on any limiter of the loop) to *c. */
void sendpace_claim(pacer_loop *loop, task *t, sendpace_claims *c);
/* Nanoseconds to keep the transfer from libcurl (on a timer) before sendpace_queue: its
 * slot, after the transfers queued before it, is further off than a send may spin for.
 * 0: hand it over now. Without this, grants that came due together (after the loop
 * stalled, or with concurrency) would all reach sendpace_send at once. */
int64_t sendpace_hold(sendpace_claims *c);
/* The transfer is handed to libcurl: its units go out before any transfer held after it. */
void sendpace_queue(sendpace_claims *c);
/* The request is about to be written: waits (spins) while it would come sooner than
 * the sends before it allow, then records it. Returns the send time (ns), or -1 when
 * its slot is further off than a spin may last (another transfer or worker took it):
 * nothing was recorded, and the caller holds the transfer again. */
int64_t sendpace_send(sendpace_claims *c);
/* A limiter of the transfer has a rule with a burst of 1 and an interval of 1 ms or more
 * (up to 1,000/s): it wants sendpace_wire. Faster ones (an adaptive limiter's "no limit
 * known yet") are not worth libcurl's verbose text on every request. */
int sendpace_precise(const sendpace_claims *c);
/* The request's header was written (libcurl's debug callback, CURLINFO_HEADER_OUT): a
 * write later than sendpace_send (the process was preempted in between, say) moves the
 * next sends of burst-1 rules by as much, so the gap the server sees is whole. */
void sendpace_wire(sendpace_claims *c);
/* The answer came (at loop time now): an answer much later than the fastest seen says
 * the server (or the path) stalled, so it may have timed this request late; for rules
 * with a burst of 1 the next send is spaced from that later time. `refused` (a 429):
 * the server timed a gap shorter than ours, so those rules' intervals grow (0.2 %,
 * doubling to at most 2 %; state's `margin`). */
void sendpace_answered(sendpace_claims *c, int refused);
/* The transfer is over: claims that never reached the wire are given back; frees. */
void sendpace_release(sendpace_claims *c);

/* Sets sent=, lead=, spun=, early= (sends held again at the wire), stalls=, pushed=,
 * margin= on the table at the top of L. */
void sendpace_push_state(lua_State *L, const sendpace *sp);
#endif
