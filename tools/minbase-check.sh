#!/bin/sh
# tools/minbase-check.sh [REF]: runs README's test command, `sh setup.sh test`, in a fresh
# Debian 12 minbase root, to check that setup.sh installs everything the tests call.
# Run by hand when the package lists change (not part of CI); needs root, network access
# to a Debian mirror, about 2 GB of disk and 10 minutes.
#   1. debootstrap --variant=minbase bookworm ROOT MIRROR (installs debootstrap if missing)
#   2. binds /proc, /sys, /dev, /dev/pts and /dev/shm into ROOT, gives it apt sources
#      (bookworm, -updates, -security), /etc/resolv.conf and an /etc/hosts for localhost,
#      and clones REF (default: the current branch) of this repository to ROOT/root/pacer,
#      so only committed files are tested
#   3. in the chroot: cd /root/pacer && sh setup.sh test 2>&1 | tee /root/test.log
# Nothing else is installed by hand: what the tests need must come from setup.sh.
# Prints the failing specs and, last, the run's own last line ("N passed, N failed");
# copies the log to LOG; exits 0 only when nothing failed.
# Environment: ROOT (default /var/tmp/pacer-minbase; must not exist yet), LOG (default
# /var/tmp/pacer-minbase-test.log), MIRROR and
# SECURITY_MIRROR (default: this machine's Debian mirrors in /etc/apt, else
# deb.debian.org), KEEP=1 to keep ROOT afterwards (its binds are always undone).
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)
ref=${1:-$(git rev-parse --abbrev-ref HEAD)}
ROOT=$(realpath -m "${ROOT:-/var/tmp/pacer-minbase}")
LOG=${LOG:-/var/tmp/pacer-minbase-test.log}
KEEP=${KEEP:-0}

[ "$(id -u)" -eq 0 ] || { echo "minbase-check: needs root (debootstrap, mount, chroot)" >&2; exit 2; }
git rev-parse --verify -q "$ref^{commit}" >/dev/null || { echo "minbase-check: no such ref: $ref" >&2; exit 2; }
if [ -e "$ROOT" ] && [ -n "$(ls -A "$ROOT" 2>/dev/null)" ]; then
  echo "minbase-check: $ROOT exists and is not empty; remove it or set ROOT" >&2
  exit 2
fi

# the first Debian archive URI this machine's apt uses for SUITE (one-line and deb822 files)
mirror_for() {
  suite=$1
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case "$f" in
      *.sources) awk -v s="$suite" '
        /^[ \t]*$/ { if (u != "" && ok) { print u; exit } u = ""; ok = 0; next }
        tolower($1) == "uris:" { u = $2 }
        tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
        END { if (u != "" && ok) print u }' "$f" ;;
      *) awk -v s="$suite" '$1 == "deb" { sub(/^deb[ \t]+(\[[^]]*\][ \t]+)?/, ""); if ($2 == s) print $1 }' "$f" ;;
    esac
  done | head -n 1
}
MIRROR=${MIRROR:-$(mirror_for bookworm)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-$(mirror_for bookworm-security)}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}

if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2
fi

binds="proc sys dev dev/pts dev/shm"
unbind() {
  for m in dev/shm dev/pts dev sys proc; do
    if mountpoint -q "$ROOT/$m" 2>/dev/null; then
      umount "$ROOT/$m" 2>/dev/null || umount -l "$ROOT/$m"
    fi
  done
}
cleanup() {
  # a server a spec left running inside the root would hold it: stop those, by pid
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && kill -9 "${p#/proc/}" 2>/dev/null
  done
  unbind
  if [ "$KEEP" != 1 ]; then
    if grep -q " $ROOT/" /proc/mounts; then
      echo "minbase-check: something is still mounted under $ROOT; not removing it" >&2
    else
      rm -rf --one-file-system "$ROOT"
    fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "minbase-check: debootstrap --variant=minbase bookworm $ROOT $MIRROR" >&2
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$LOG" 2>&1 || {
  echo "minbase-check: debootstrap failed; its log is $LOG" >&2
  exit 1
}

cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
EOF
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# an installed system has this; a debootstrap root has none
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
for m in $binds; do mount --bind "/$m" "$ROOT/$m"; done

git clone -q --no-hardlinks "$repo" "$ROOT/root/pacer"
git -C "$ROOT/root/pacer" checkout -q --detach "$(git rev-parse "$ref^{commit}")"
echo "minbase-check: testing $(git -C "$ROOT/root/pacer" log -1 --format='%h %s')" >&2

# a login's environment, not this shell's (no PATH entries or variables from the host)
chroot "$ROOT" /usr/bin/env -i HOME=/root TERM="${TERM:-xterm}" LANG=C.UTF-8 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/sh -c 'cd /root/pacer && sh setup.sh test 2>&1 | tee /root/test.log' || true
cp "$ROOT/root/test.log" "$LOG"

echo "== minbase-check: failures (full log: $LOG) =="
grep -E '^not ok |without a failing test' "$LOG" || echo "(none)"
last=$(tail -n 1 "$LOG")
echo "$last"
case "$last" in
  *" passed, 0 failed") exit 0 ;;
  *) exit 1 ;;
esac
