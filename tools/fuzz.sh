#!/bin/sh
# tools/fuzz.sh [SECONDS]: builds the libFuzzer targets of fuzz/ (clang, ASan + UBSan) in
# build-fuzz/ and runs each, one after the other, for SECONDS (default 30) on a copy of
# its seed corpus fuzz/corpus/<target>/ (the seeds are never modified). Installs what is
# missing with apt. Prints one line per target, e.g.
#   fuzz_units: ok, 7391021 execs in 30 s, corpus 16 -> 141
#   fuzz_quota: FAILED (crash), 4102 execs in 1 s, input: build-fuzz/findings/quota-crash-...
# with the sanitizer's or the invariant's report on stderr, and exits non-zero when any
# target crashed, broke an invariant, timed out or did not build.
# Reproduce a finding: ./build-fuzz/fuzz_<target> <input file>
set -u
cd "$(dirname "$0")/.."
SECS=${1:-30}
TARGETS="retry_after quota units gcra url listener csv"
BUILD=build-fuzz

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_install() {
  echo "fuzz.sh: installing $*" >&2
  $SUDO apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$@" >&2
}

# what CMake needs to configure (setup.sh's list), then clang and its libFuzzer runtime
pkgs=$(sed -n '/^PACKAGES="/,/"$/p' setup.sh | sed 's/^PACKAGES="//; s/"$//')
missing=""
for p in $pkgs clang; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] || apt_install $missing
probe=$(mktemp -d)
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! clang -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>/dev/null; then
  apt_install libclang-rt-dev # the unversioned name of libclang-rt-<N>-dev (libFuzzer)
fi
rm -rf "$probe"

fail_all() {
  for t in $TARGETS; do echo "fuzz_$t: FAILED ($1)"; done
  exit 1
}
# a build-fuzz/ configured with another compiler is started over
if [ -f "$BUILD/CMakeCache.txt" ] && ! grep -q '^CMAKE_C_COMPILER:[A-Z]*=.*clang' "$BUILD/CMakeCache.txt"; then
  rm -rf "$BUILD"
fi
CC=clang cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPACER_FUZZ=ON >/dev/null || fail_all "cmake"
cmake --build "$BUILD" --target fuzz -j"$(nproc)" >&2 || fail_all "build"

work=$(mktemp -d)
findings=$BUILD/findings
mkdir -p "$findings"
failed=0
for t in $TARGETS; do
  mkdir -p "$work/$t"
  cp fuzz/corpus/"$t"/* "$work/$t/"
  n0=$(ls "$work/$t" | wc -l)
  set -- -max_total_time="$SECS" -timeout=10 -print_final_stats=1 -artifact_prefix="$findings/$t-"
  [ -f "fuzz/$t.dict" ] && set -- "$@" -dict="fuzz/$t.dict"
  [ "$t" = listener ] && set -- "$@" -max_len=65536 # past the 16 KiB header limit
  ls "$findings" | sort >"$work/before"
  start=$(date +%s)
  "./$BUILD/fuzz_$t" "$@" "$work/$t" >"$work/$t.log" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -n 1)
  n1=$(ls "$work/$t" | wc -l)
  if [ "$rc" -eq 0 ]; then
    echo "fuzz_$t: ok, ${execs:-0} execs in $took s, corpus $n0 -> $n1"
  else
    failed=$((failed + 1))
    what=$(grep -oE 'deadly signal|ERROR: AddressSanitizer: [a-z-]+|runtime error|invariant broken|ERROR: libFuzzer: [a-z-]+' "$work/$t.log" | head -n 1)
    new=$(ls "$findings" | sort | comm -13 "$work/before" - | head -n 1)
    echo "fuzz_$t: FAILED (${what:-exit $rc}), ${execs:-0} execs in $took s, input: ${new:+$findings/$new}"
    grep -E 'invariant broken|ERROR:|SUMMARY:|runtime error|^    #[0-9] ' "$work/$t.log" | head -n 20 | sed "s/^/  fuzz_$t| /" >&2
  fi
done
rm -rf "$work"
[ "$failed" -eq 0 ]
