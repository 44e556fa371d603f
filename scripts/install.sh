#!/usr/bin/env bash
# Installs what tsrun needs on a fresh Debian/Ubuntu host, builds it, and prepares the
# example bundle, so that this works right after:
#
#   sudo scripts/install.sh && sudo bin/tsrun run --bundle examples/busybox hello
#
# usage: scripts/install.sh [--with-test-deps] [--no-build] [--no-example] [--force-npm]
#   --with-test-deps  also runc, crun, hyperfine, docker-registry, skopeo, vagrant (the tests and benchmarks use them)
#   --no-build        skip `npm ci` and `npm run build` (e.g. when testing another runtime)
#   --no-example      skip building examples/busybox
#   --force-npm       run `npm ci` even if node_modules matches package-lock.json
# Packages are only installed when missing, so re-running is quick.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

with_test=0 build=1 example=1 force_npm=0
for a in "$@"; do
  case "$a" in
    --with-test-deps) with_test=1 ;;
    --no-build) build=0 ;;
    --no-example) example=0 ;;
    --force-npm) force_npm=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

say() { echo "install.sh: $*"; }
die() { echo "install.sh: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo scripts/install.sh): it installs packages and tsrun needs root"
[ "$(uname -s)" = Linux ] || die "tsrun runs on Linux only"
command -v apt-get >/dev/null || die "no apt-get: this script supports Debian/Ubuntu; install by hand: Node.js >= 20, npm, gcc, make, libc6-dev, libseccomp2, busybox-static"

export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_install() { # apt_install PKG... (only the missing ones)
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated = 0 ]; then
    say "apt-get update"
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt_updated=1
  fi
  say "apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}"
}

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# --- Node.js >= 20 and npm ----------------------------------------------------------
if [ "$(node_major)" -ge 20 ]; then
  say "node $(node --version) found"
else
  if [ $apt_updated = 0 ]; then apt-get -o DPkg::Lock::Timeout=300 update -qq; apt_updated=1; fi
  cand="$(apt-cache policy nodejs 2>/dev/null | awk '/Candidate:/ {print $2}')"
  cand_major="$(echo "$cand" | sed -E 's/^[0-9]+://; s/[^0-9].*//')"
  if [ -n "$cand_major" ] && [ "$cand_major" -ge 20 ] 2>/dev/null; then
    apt_install nodejs npm
  else
    have="none"; command -v node >/dev/null && have="$(node --version)"
    die "tsrun needs Node.js >= 20 (found: $have; this distribution offers nodejs ${cand:-nothing}).
  Install Node.js 20 or newer (with npm) from another source, e.g. nvm or a vendor package, then re-run."
  fi
fi
command -v npm >/dev/null || {
  # A Node.js that did not come from the distribution usually brings its own npm; Debian's
  # npm package would pull Debian's (older) nodejs in, so don't install it over a foreign node.
  if dpkg-query -W -f='${Status}' nodejs 2>/dev/null | grep -q 'install ok installed'; then apt_install npm
  else die "node $(node --version) has no npm next to it: install npm for it and re-run"; fi
}

# --- build tools, runtime libraries, rootfs material --------------------------------
# musl-tools: the supervisor links statically against musl (76 KiB PSS per idle container; glibc: 644 KiB)
apt_install gcc make libc6-dev musl-tools libseccomp2 busybox-static util-linux procps ca-certificates iptables iproute2 tini
if [ $with_test = 1 ]; then
  # peers the tests and benchmarks compare with; a local registry and its htpasswd tool; skopeo as an independent client;
  # vagrant: the tests run `vagrant validate` on the Vagrantfile (~150 packages without recommends)
  apt_install runc crun hyperfine docker-registry apache2-utils skopeo vagrant
fi

# --- npm ci + build ---------------------------------------------------------------------
if [ $build = 1 ]; then
  stamp="node_modules/.tsrun-npm-ci"
  want="$(sha256sum package-lock.json | cut -c1-32) node=$(node --version)"
  if [ -L node_modules ]; then
    # a shared node_modules (a git worktree's symlink to another checkout's): npm ci would empty its target
    say "node_modules is a symlink to $(readlink -f node_modules): npm ci skipped (run it in that checkout)"
  elif [ $force_npm = 1 ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > "$stamp"
  else
    say "node_modules matches package-lock.json (npm ci skipped; --force-npm to redo)"
  fi
  say "npm run build"
  npm run build
fi

# --- example bundle -----------------------------------------------------------------------
if [ $example = 1 ]; then
  scripts/make-test-image.sh "$repo/examples/busybox/rootfs"
  node scripts/example-bundle.mjs "$repo/examples/busybox" >/dev/null
  say "example bundle ready: examples/busybox (config.json + rootfs)"
fi

say "done."
if [ $build = 1 ] && [ $example = 1 ]; then
  echo "  try:  sudo bin/tsrun run --bundle examples/busybox hello"
fi
