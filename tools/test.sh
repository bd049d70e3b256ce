#!/bin/sh
# tools/test.sh: runs the ctest units and the busted specs (inside the pacer host) from
# an existing build/, then prints the combined count as its last line.
set -u
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
PACER=${PACER:-./$BUILD_DIR/pacer}
export PACER
log=$(mktemp -d)

(cd "$BUILD_DIR" && ctest --output-on-failure) >"$log/ctest" 2>&1
cat "$log/ctest"
c_total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log/ctest" | tail -n 1)
c_failed=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$log/ctest" | tail -n 1)
c_total=${c_total:-0}
c_failed=${c_failed:-1}

# Each spec file runs in its own process, with a time limit, so one hang cannot stall CI.
b_passed=0
b_failed=0
for f in $(find spec -name "*_spec.lua" | sort); do
  timeout 300 "$PACER" -q tools/busted.lua -o TAP "$f" >"$log/tap" 2>"$log/err"
  rc=$?
  cat "$log/tap"
  [ -s "$log/err" ] && sed 's/^/# stderr: /' "$log/err"
  ok=$(grep -c '^ok ' "$log/tap")
  bad=$(grep -c '^not ok ' "$log/tap")
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
    echo "# $f: exited $rc without a failing test (crash or timeout): counted as a failure"
    bad=1
  fi
  b_passed=$((b_passed + ok))
  b_failed=$((b_failed + bad))
done
rm -rf "$log"

echo "ctest: $((c_total - c_failed)) passed, $c_failed failed; busted: $b_passed passed, $b_failed failed"
echo "$((c_total - c_failed + b_passed)) passed, $((c_failed + b_failed)) failed"
[ "$((c_failed + b_failed))" -eq 0 ]
