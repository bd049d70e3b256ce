#!/bin/sh
# tools/memcheck.sh: valgrind memcheck of the demo run to its end, and of a run stopped by
# SIGINT mid-transfer. Each passes when valgrind reports no errors and nothing
# definitely lost. Prints one line per case and "memcheck: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
PACER=${PACER:-./build/pacer}
command -v valgrind >/dev/null || { apt-get install -y -q valgrind >/dev/null 2>&1; }
log=$(mktemp -d)
passed=0
failed=0

check() { # name logfile
  if grep -q "ERROR SUMMARY: 0 errors" "$2" && ! grep -q "definitely lost: [1-9]" "$2"; then
    echo "memcheck $1: ok ($(grep -o 'in use at exit: [0-9,]* bytes' "$2"))"
    passed=$((passed + 1))
  else
    echo "memcheck $1: FAILED"
    grep -E "definitely lost|Invalid|uninitialised|ERROR SUMMARY" "$2" | head -20
    failed=$((failed + 1))
  fi
}

VG="valgrind --leak-check=full --errors-for-leak-kinds=definite"
$VG "$PACER" -q scripts/demo.lua 40 20 >"$log/demo.out" 2>"$log/demo.vg"
check demo "$log/demo.vg"

cat >"$log/slow.lua" <<'LUA'
local mock = pacer.mock{rate = "5/s", latency = 30}
local api = pacer.client{base_url = mock.url, rate = "5/s"}
pacer.each({1, 2, 3, 4, 5, 6, 7, 8}, function() return api:get("/v2/numbers") end)
LUA
timeout --preserve-status -s INT 8 $VG "$PACER" -q "$log/slow.lua" >"$log/int.out" 2>"$log/int.vg"
code=$?
if [ "$code" -ne 130 ]; then
  echo "memcheck sigint: FAILED: exit $code, expected 130"
  failed=$((failed + 1))
else
  check sigint "$log/int.vg"
fi

rm -rf "$log"
echo "memcheck: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
