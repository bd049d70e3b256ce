#!/bin/sh
# tools/package-check.sh: the Debian package, end to end on this machine (run by .ci/run).
# Builds build/pacer_<version>_<arch>.deb with cpack, checks what it holds (dpkg-deb -c)
# and its Depends (dpkg-shlibdeps), installs it with apt-get, runs the installed
# /usr/bin/pacer --version and an installed example against the installed `pacer mock`
# on 127.0.0.1, renders the installed manual page, then removes the package and checks
# nothing of it is left. Needs root (or sudo) for apt-get.
# Prints one line per check, "package-check: ok ..." or "package-check: FAILED ...";
# exits 1 if any failed.
set -u
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
tmp=$(mktemp -d)
failed=0
installed=0
mock_pid=""

ok() { echo "package-check: ok ($1)"; }
fail() {
  echo "package-check: FAILED ($1)"
  [ -s "$tmp/out" ] && sed 's/^/# /' "$tmp/out" | head -n 40
  failed=1
}
cleanup() {
  [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null
  if [ "$installed" -eq 1 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get remove -y -q pacer >/dev/null 2>&1
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. cmake --install into a prefix of our own, then the package
if ! { cmake -S . -B "$BUILD_DIR" -DPACER_WERROR=ON >/dev/null && cmake --build "$BUILD_DIR" -j"$(nproc)" >/dev/null; } >"$tmp/out" 2>&1; then
  fail "build"
  exit 1
fi
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD_DIR/CMakeCache.txt")
prefix="$tmp/prefix"
: >"$tmp/out"
if cmake --install "$BUILD_DIR" --prefix "$prefix" >"$tmp/out" 2>&1; then
  : >"$tmp/out"
  for p in bin/pacer share/man/man1/pacer.1 share/bash-completion/completions/pacer \
    $(for f in scripts/*.lua; do echo "share/doc/pacer/examples/${f#scripts/}"; done); do
    [ -f "$prefix/$p" ] || echo "missing: $prefix/$p" >>"$tmp/out"
  done
  (cd / && env -u PACER_PATH "$prefix/bin/pacer" -q "$prefix/share/doc/pacer/examples/learn_limit.lua" 20) >"$tmp/run" 2>&1 ||
    { echo "learn_limit.lua from the prefix failed:"; cat "$tmp/run"; } >>"$tmp/out"
fi
if [ -s "$tmp/out" ]; then fail "cmake --install --prefix"; else ok "cmake --install --prefix: $(grep -o '^20 requests in [0-9.]*s, [0-9]* 429s' "$tmp/run") from an installed example"; fi
arch=$(dpkg --print-architecture)
deb="$BUILD_DIR/pacer_${version}_${arch}.deb"
rm -f "$BUILD_DIR"/pacer_*.deb
if (cd "$BUILD_DIR" && cpack -G DEB) >"$tmp/out" 2>&1 && [ -f "$deb" ]; then
  ok "cpack built $deb"
else
  fail "cpack -G DEB did not build $deb"
  exit 1
fi

# 2. what it holds: every file cmake --install puts in place, and a computed Depends
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$tmp/contents"
: >"$tmp/out"
for p in /usr/bin/pacer /usr/share/man/man1/pacer.1 /usr/share/bash-completion/completions/pacer \
  /usr/share/doc/pacer/README.md $(for f in scripts/*.lua; do echo "/usr/share/doc/pacer/examples/${f#scripts/}"; done); do
  grep -qx "$p" "$tmp/contents" || echo "missing: $p" >>"$tmp/out"
done
if [ -s "$tmp/out" ]; then fail "dpkg-deb -c lacks expected paths"; else ok "dpkg-deb -c lists $(grep -vc '/$' "$tmp/contents") files"; fi
depends=$(dpkg-deb -f "$deb" Depends)
: >"$tmp/out"
for lib in libc6 libcurl4 liblua5.4-0 libevent-2.1-7 libsqlite3-0 libhiredis lua-cjson; do
  echo "$depends" | grep -q "$lib" || echo "Depends lacks $lib: $depends" >>"$tmp/out"
done
if [ -s "$tmp/out" ]; then fail "Depends"; else ok "Depends: $depends"; fi

# 3. install it the way a user does
if [ -e /usr/bin/pacer ] && ! dpkg -S /usr/bin/pacer >/dev/null 2>&1; then
  echo "/usr/bin/pacer exists and no package owns it; not overwriting it" >"$tmp/out"
  fail "apt-get install"
  exit 1
fi
cp "$deb" "$tmp/" && chmod 755 "$tmp" && chmod 644 "$tmp/${deb##*/}" # readable by apt's _apt user
if DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "$tmp/${deb##*/}" >"$tmp/out" 2>&1 &&
  [ "$(dpkg-query -W -f='${Version}' pacer 2>/dev/null)" = "$version" ]; then
  installed=1
  ok "apt-get install ./${deb##*/}"
else
  fail "apt-get install ./${deb##*/}"
  exit 1
fi

# 4. the installed binary, from outside the checkout: nothing of it is needed
cd /tmp || exit 1
if env -u PACER_PATH /usr/bin/pacer --version >"$tmp/out" 2>&1 && grep -q "^pacer $version (libcurl .*, Lua 5\.4.*, libevent .*)$" "$tmp/out"; then
  ok "$(cat "$tmp/out")"
else
  fail "/usr/bin/pacer --version"
fi

# an installed example against the installed mock, on loopback
env -u PACER_PATH /usr/bin/pacer mock --host 127.0.0.1 --port 0 --rate 20/s --key demo-key >"$tmp/mock" 2>&1 &
mock_pid=$!
url=""
i=0
while [ $i -lt 100 ] && [ -z "$url" ]; do # bounded: at most ~10 s
  url=$(sed -n 's|^pacer mock: listening on \(http://127\.0\.0\.1:[0-9]*\).*|\1|p' "$tmp/mock")
  [ -n "$url" ] || sleep 0.1
  i=$((i + 1))
done
if [ -z "$url" ]; then
  cp "$tmp/mock" "$tmp/out"
  fail "pacer mock did not start"
elif timeout 60 env -u PACER_PATH /usr/bin/pacer -q /usr/share/doc/pacer/examples/demo.lua 40 20 "$url" >"$tmp/out" 2>&1 &&
  grep -q '^sent 40, failed 0, 429s 0' "$tmp/out" && grep -q '^the mock accepted 40 messages; 40 requests in all' "$tmp/out"; then
  ok "examples/demo.lua against pacer mock at $url: $(grep '^makespan' "$tmp/out")"
else
  fail "examples/demo.lua against pacer mock at $url"
fi
kill "$mock_pid" 2>/dev/null
wait "$mock_pid" 2>/dev/null
mock_pid=""

# the manual page and the completion, as installed
if MANWIDTH=80 man --warnings pacer >"$tmp/page" 2>"$tmp/out" && [ ! -s "$tmp/out" ] &&
  grep -q 'pacer mock' "$tmp/page" && [ "$(man -w pacer 2>/dev/null)" = /usr/share/man/man1/pacer.1 ]; then
  ok "man pacer renders without warnings ($(wc -l <"$tmp/page") lines)"
else
  fail "man pacer"
fi
if groff -man -ww -z /usr/share/man/man1/pacer.1 >"$tmp/out" 2>&1 && [ ! -s "$tmp/out" ]; then
  ok "groff -man -ww -z pacer.1: no warnings"
else
  fail "groff -man -ww -z pacer.1"
fi
if bash -c '. /usr/share/bash-completion/completions/pacer && complete -p pacer' >"$tmp/out" 2>&1 &&
  grep -q '_pacer pacer' "$tmp/out"; then
  ok "bash completion: $(cat "$tmp/out")"
else
  fail "bash completion"
fi

# 5. remove it: nothing of it is left
if DEBIAN_FRONTEND=noninteractive $SUDO apt-get remove -y -q pacer >"$tmp/out" 2>&1; then
  installed=0
  : >"$tmp/out"
  while read -r p; do
    case $p in */) continue ;; esac # directories: shared ones (/usr/bin) stay
    [ -e "$p" ] && echo "left behind: $p" >>"$tmp/out"
  done <"$tmp/contents"
  [ -e /usr/share/doc/pacer ] && echo "left behind: /usr/share/doc/pacer" >>"$tmp/out"
  dpkg-query -W -f='${db:Status-Abbrev}' pacer 2>/dev/null | grep -q '^ii' && echo "dpkg still lists pacer" >>"$tmp/out"
  if [ -s "$tmp/out" ]; then
    fail "apt-get remove pacer left files behind"
  else
    ok "apt-get remove pacer: /usr/bin/pacer and the rest are gone"
  fi
else
  fail "apt-get remove pacer"
fi

exit "$failed"
