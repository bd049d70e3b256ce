#!/bin/sh
# setup.sh: installs the Debian packages pacer needs (only those missing), builds it,
# then runs what was asked:
#   sh setup.sh demo    the demo job against pacer's own mock API
#   sh setup.sh test    every test (ctest units + busted specs), last line "N passed, N failed"
#   sh setup.sh build   just build (./build/pacer)
set -eu
cd "$(dirname "$0")"

PACKAGES="build-essential cmake pkg-config ca-certificates liblua5.4-dev libcurl4-openssl-dev
  lua-cjson libevent-dev libmimalloc-dev libhttp-parser-dev libedit-dev libssl-dev libsqlite3-dev libhiredis-dev lua-busted nginx-light tmux"

# the test suite also renders charts in a real browser, runs Redis, shells out to curl,
# openssl and python3 (hostile servers), lints the tree (tools/lint.sh), checks the manual page (groff, man) and
# builds the Debian package for CI (dpkg-shlibdeps from dpkg-dev; CPack runs file),
# verifies JWTs with PyJWT and receives alert mail with aiosmtpd (Debian python3), and
# checks /metrics with Prometheus's promtool and a real prometheus server (prometheus)
[ "${1:-build}" = test ] && PACKAGES="$PACKAGES chromium redis-server curl openssl python3 lua-check clang-format
  groff-base man-db dpkg-dev file python3-jwt python3-aiosmtpd prometheus"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup.sh: installing$missing" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing >&2
fi

BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
cmake -S . -B build -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DPACER_WERROR=ON ${CMAKE_ARGS:-} >/dev/null
cmake --build build -j"$(nproc)" >&2

case "${1:-build}" in
  demo) shift; exec ./build/pacer scripts/demo.lua "$@" ;;
  test) exec sh tools/test.sh ;;
  build) ;;
  *) echo "usage: sh setup.sh [demo|test|build]" >&2; exit 2 ;;
esac
