/* main.c: the command line. Parses options and hands over to the host. */
#include "host/host.h"
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <lua.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: pacer [OPTIONS] SCRIPT [ARGS...]   run a Lua script as the main task\n"
    "       pacer [OPTIONS] -e CODE [ARGS...]  run CODE\n"
    "       pacer [-i]                         the REPL (on a terminal; else the script on stdin)\n"
    "       pacer mock [MOCK OPTIONS]          a rate-limited mock API in the foreground\n"
    "       pacer report EVENTS.jsonl -o OUT.svg|OUT.html [--title T]\n"
    "                                          chart of a run made with --events\n"
    "       pacer job status LEDGER            a job's counts from its ledger\n"
    "       pacer job export LEDGER -o FILE    a job's outcomes as JSONL or CSV\n"
    "       pacer --version | --help\n"
    "\n"
    "options:\n"
    "  -e CODE              run CODE instead of a script file\n"
    "  -i                   enter the REPL after running the script or CODE\n"
    "  -v, --verbose        more log output: each retry (-vv: debug)\n"
    "  -q, --quiet          no progress line and no summary, errors only\n"
    "  --progress=MODE      auto (a live line on a terminal), plain (a line every 5 s), off\n"
    "  --events FILE.jsonl  write one JSON line per HTTP attempt ('-': stdout)\n"
    "  --stats FILE.json    write the run summary as JSON at exit ('-': stdout)\n"
    "  --metrics HOST:PORT  serve Prometheus metrics at http://HOST:PORT/metrics while it runs\n"
    "  --threshold EXPR     fail the run (exit 99) unless EXPR holds, e.g. 'p99<300ms',\n"
    "                       'errors<1%', 'throttled==0', 'ratio<1.05' (repeatable)\n"
    "  --workers N          run the script in N worker processes (1..64) that share its\n"
    "                       limiters; pacer.each and pacer.worker split the work; the\n"
    "                       parent prints the summary of the whole run (--events and\n"
    "                       --stats work too; not with --metrics or -i)\n"
    "  -h, --help           this help\n"
    "  --version            print the version and those of libcurl, Lua and libevent\n"
    "\n"
    "mock options (pacer mock --help for more):\n"
    "  --host H --port P    where to listen (default 127.0.0.1:8080)\n"
    "  --rate R --burst N   the limit, e.g. 5/s, 50/min (default 50/s), and its burst\n"
    "  --mode gcra|fixed    smooth pacing or fixed windows\n"
    "  --fail P --fail-status S --drop P --latency D\n"
    "                       injected 5xx, dropped connections, added latency\n"
    "  --key K              require X-Auth-Token: K\n"
    "  --no-headers         no RateLimit-* headers (429 and Retry-After only)\n"
    "\n"
    "exit status: 0 ok, 1 error, 2 bad command line, 99 a threshold crossed, 130 interrupted (SIGINT)\n"
    "environment: PACER_LOG=error|warn|info|debug sets the log level\n"
    "             PACER_PATH=DIR loads lualib modules from DIR instead of the built-in copy\n"
    "see man pacer, and the README\n";

static int bad(const char *msg, const char *what) {
  fprintf(stderr, "pacer: %s '%s'\n%s", msg, what, "try 'pacer --help'\n");
  return 2;
}

/* An output file named on the command line must be writable before anything is sent:
 * a report that cannot be written after the work is done invites sending it all again.
 * Opens `path` for appending (creating it if need be) and closes it again; "-" is stdout. */
static int check_output(const char *opt, const char *path) {
  if (!strcmp(path, "-")) return 0; /* stdout */
  FILE *f = fopen(path, "a");
  if (!f) {
    fprintf(stderr, "pacer: %s: cannot write '%s': %s\n", opt, path, strerror(errno));
    return 2;
  }
  fclose(f);
  return 0;
}

#define MAX_THRESHOLDS 32

int main(int argc, char **argv) {
  host_opts o = {0};
  const char *thresholds[MAX_THRESHOLDS];
  o.thresholds = thresholds;
  o.argv = argv;
  o.progress = "auto";
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || strcmp(a, "-") == 0) break;
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(usage, stdout);
      return 0;
    } else if (!strcmp(a, "--version")) {
      printf("pacer %s (libcurl %s, %s, libevent %s)\n", PACER_VERSION, curl_version_info(CURLVERSION_NOW)->version,
             LUA_RELEASE, event_get_version());
      return 0;
    } else if (!strcmp(a, "-e")) {
      if (++i >= argc) return bad("option needs an argument:", "-e");
      o.code = argv[i];
    } else if (!strcmp(a, "-i")) {
      o.interactive = 1;
    } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
      o.verbose++;
    } else if (!strcmp(a, "-vv")) {
      o.verbose += 2;
    } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
      o.quiet = 1;
    } else if (!strncmp(a, "--progress=", 11)) {
      o.progress = a + 11;
      if (strcmp(o.progress, "auto") && strcmp(o.progress, "plain") && strcmp(o.progress, "off"))
        return bad("--progress takes auto, plain or off, not", o.progress);
    } else if (!strcmp(a, "--events") || !strcmp(a, "--stats")) {
      if (++i >= argc) return bad("option needs a file name:", a);
      if (a[2] == 'e')
        o.events = argv[i];
      else
        o.stats = argv[i];
    } else if (!strcmp(a, "--metrics")) {
      if (++i >= argc) return bad("option needs HOST:PORT:", a);
      o.metrics = argv[i];
    } else if (!strcmp(a, "--threshold")) {
      if (++i >= argc) return bad("option needs an expression like 'p99<300ms':", a);
      if (o.nthresholds == MAX_THRESHOLDS) return bad("too many thresholds (at most 32) at", argv[i]);
      thresholds[o.nthresholds++] = argv[i];
    } else if (!strcmp(a, "--workers")) {
      if (++i >= argc) return bad("option needs a number of processes (1..64):", a);
      char *end;
      long n = strtol(argv[i], &end, 10);
      if (*end || end == argv[i] || n < 1 || n > 64) return bad("--workers takes a number from 1 to 64, not", argv[i]);
      o.workers = (int)n;
    } else {
      return bad("unknown option", a);
    }
  }
  o.script_index = i;
  if (!o.code) {
    if (i >= argc) {
      if (isatty(0))
        o.interactive = 1; /* `pacer` on a terminal: the REPL */
      else
        o.script = "-"; /* `pacer < job.lua`: the script from stdin */
    } else {
      if (!strcmp(argv[i], "mock"))
        o.module = "pacer.cli.mock";
      else if (!strcmp(argv[i], "report"))
        o.module = "pacer.cli.report";
      else if (!strcmp(argv[i], "job"))
        o.module = "pacer.cli.job";
      else
        o.script = argv[i];
      i++;
    }
  }
  if (o.interactive && o.module) return bad("-i does not go with", argv[o.script_index]);
  if (o.workers > 1) { /* each worker would serve (or read) the same one */
    const char *no = o.interactive ? "-i (the REPL)" : o.module ? argv[o.script_index] : o.metrics ? "--metrics" : NULL;
    if (no) return bad("--workers does not go with", no);
  }
  if (o.events && check_output("--events", o.events)) return 2;
  if (o.stats && check_output("--stats", o.stats)) return 2;
  o.args = argv + i;
  o.nargs = argc - i;
  signal(SIGPIPE, SIG_IGN); /* a closed peer is an error result, not a death */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "pacer: cannot initialise libcurl\n");
    return 1;
  }
  int code = 0, is_parent = 0;
  if (o.workers > 1) code = host_spawn(&o, &is_parent);
  if (!is_parent) code = host_run(&o);
  curl_global_cleanup();
  return code;
}
