#!/bin/sh
# bench/peers/curl_client.sh: curl as a client in bench/run, with the peers' command line:
# SCENARIO URL N RATE CONCURRENCY. RATE > 0: `curl --rate R/s` (one transfer at a time,
# started at that rate); RATE 0: `--parallel` with CONCURRENCY (default 50). Always
# `--retry 10` (429/5xx and timeouts, Retry-After honoured); POSTs also
# `--retry-all-errors`, so a dropped connection is retried, each item with its own
# Idempotency-Key. Prints {"ok":, "failed":} ({"queued": N} for hold). Bodies go to
# stdout (a file), not /dev/null: curl 7.88 cannot retry into /dev/null ("Failed to
# truncate file", exit 23).
set -eu
[ $# -eq 5 ] || { echo "usage: curl_client.sh get|post|hold URL N RATE CONCURRENCY" >&2; exit 2; }
scenario=$1 url=$2 n=$3 rate=$4 conc=$5
case $scenario in get|post|hold) ;; *) echo "curl_client.sh: unknown scenario '$scenario' (get, post, hold)" >&2; exit 2 ;; esac
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# curl's config file: one block per request (--next), so each POST keeps its own body and key
awk -v n="$n" -v url="$url" -v s="$scenario" 'BEGIN {
  srand();
  for (i = 1; i <= n; i++) {
    if (i > 1) print "next";
    print "url = \"" url "\"";
    print "write-out = \"\\n%{http_code}\\n\"";
    print "retry = 10";
    if (s != "get") {
      printf "data = \"{\\\"to\\\": \\\"+1555%07d\\\", \\\"message\\\": \\\"m%d\\\"}\"\n", i, i;
      print "header = \"Content-Type: application/json\"";
      printf "header = \"Idempotency-Key: %08x%08x%06d\"\n", rand() * 4294967295, rand() * 4294967295, i;
      print "retry-all-errors";
    }
  }
}' > "$dir/config"
if [ "$rate" != 0 ]; then mode="--rate ${rate}/s"; else mode="--parallel --parallel-max ${conc:-50}"; fi
[ "$conc" != 0 ] || [ "$rate" != 0 ] || mode="--parallel --parallel-max 50"
if [ "$scenario" = hold ]; then
  # every request is read and queued before the first is sent; curl then sends at the
  # rate until killed, so it is stopped once running
  curl -s $mode -K "$dir/config" > "$dir/codes" 2>/dev/null &
  pid=$!
  i=0
  while [ ! -s "$dir/codes" ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i + 1)); done
  sleep 0.5
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "{\"queued\": $n}"
  exit 0
fi
curl -s $mode -K "$dir/config" > "$dir/codes" 2>/dev/null || true
ok=$(grep -c '^2[0-9][0-9]$' "$dir/codes" || true)
echo "{\"ok\": $ok, \"failed\": $((n - ok))}"
