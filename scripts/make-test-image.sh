#!/usr/bin/env bash
# Builds the busybox test rootfs without any network access:
#   /bin/busybox (from Debian's busybox-static) + one symlink per applet in /bin,
#   /probe (test/probe/probe.c, gcc -static), /etc/passwd + /etc/group
#   (root, tty 5, nobody/nogroup 65534, test 1000), empty /proc /sys /dev /tmp.
# Also builds the test helper binaries into test/.images/bin (recvtty).
#
# usage: scripts/make-test-image.sh [OUT]     (default: test/.images/busybox/rootfs)
#
# Idempotent: a stamp inside OUT records what it was built from; when nothing
# changed the script returns at once. The rootfs is built next to OUT and renamed
# into place, so a reader never sees a half-built tree.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo/test/.images/busybox/rootfs}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cache="$repo/test/.images/bin"

die() { echo "make-test-image: $*" >&2; exit 1; }

busybox="${BUSYBOX:-}"
if [ -z "$busybox" ]; then
  for c in /bin/busybox /usr/bin/busybox "$(command -v busybox 2>/dev/null || true)"; do
    [ -n "$c" ] && [ -x "$c" ] && { busybox="$c"; break; }
  done
fi
[ -n "$busybox" ] || die "busybox not found: apt-get install busybox-static (or run scripts/install.sh)"
if ldd "$busybox" >/dev/null 2>&1; then
  die "$busybox is dynamically linked; the rootfs needs busybox-static (apt-get install busybox-static)"
fi
command -v gcc >/dev/null || die "gcc not found: apt-get install gcc libc6-dev (or run scripts/install.sh)"

# --- helper binaries (cached by source hash) --------------------------------------
mkdir -p "$cache"
build_c() { # build_c SRC OUT [extra gcc flags]
  local src="$1" bin="$2"; shift 2
  local sum; sum="$(sha256sum "$src" | cut -c1-16)"
  if [ -x "$bin" ] && [ "$(cat "$bin.sum" 2>/dev/null)" = "$sum" ]; then return 0; fi
  gcc -O2 -Wall "$@" -o "$bin.tmp.$$" "$src" || die "could not compile $src"
  mv -f "$bin.tmp.$$" "$bin"
  echo "$sum" > "$bin.sum"
}
build_c "$repo/test/probe/probe.c" "$cache/probe" -static
if [ -f "$repo/test/helpers/recvtty.c" ]; then
  build_c "$repo/test/helpers/recvtty.c" "$cache/recvtty"
fi

# --- rootfs -----------------------------------------------------------------------
script_sum="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"
stamp="busybox=$(sha256sum "$busybox" | cut -c1-16) probe=$(cat "$cache/probe.sum") script=$script_sum"
if [ -f "$out/.tsrun-image" ] && [ "$(cat "$out/.tsrun-image")" = "$stamp" ]; then
  exit 0
fi

mkdir -p "$(dirname "$out")"
# Serialize concurrent builders (ava runs test files in parallel workers); re-check under the lock.
exec 9>"$cache/.image.lock"
flock 9
if [ -f "$out/.tsrun-image" ] && [ "$(cat "$out/.tsrun-image")" = "$stamp" ]; then
  exit 0
fi
tmp="$(mktemp -d "$(dirname "$out")/.rootfs.XXXXXX")"
trap 'rm -rf --one-file-system "$tmp"' EXIT
chmod 755 "$tmp"

mkdir -p "$tmp"/{bin,sbin,etc,proc,sys,dev,tmp,root,home/test,var,run,mnt,usr/bin,usr/sbin}
chmod 1777 "$tmp/tmp"
chmod 700 "$tmp/root"
cp "$busybox" "$tmp/bin/busybox"
chmod 755 "$tmp/bin/busybox"
for applet in $("$busybox" --list); do
  case "$applet" in busybox|*/*|'') continue ;; esac
  ln -s busybox "$tmp/bin/$applet"
done
cp "$cache/probe" "$tmp/probe"
chmod 755 "$tmp/probe"

cat > "$tmp/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
test:x:1000:1000:test:/home/test:/bin/sh
EOF
cat > "$tmp/etc/group" <<'EOF'
root:x:0:
tty:x:5:
nogroup:x:65534:
test:x:1000:
EOF
chown 1000:1000 "$tmp/home/test"
echo tsrun > "$tmp/etc/hostname"
: > "$tmp/etc/hosts"
: > "$tmp/etc/resolv.conf"
echo "$stamp" > "$tmp/.tsrun-image"

# Swap into place. A rootfs that is in use by a running container must not be
# deleted from under it; tests only ever copy this tree, so replacing is safe.
if [ -e "$out" ]; then
  old="$(mktemp -d "$(dirname "$out")/.old.XXXXXX")"
  mv "$out" "$old/rootfs"
  mv "$tmp" "$out"
  rm -rf --one-file-system "$old"
else
  mv "$tmp" "$out"
fi
trap - EXIT
echo "make-test-image: built $out"
