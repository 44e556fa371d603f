#!/usr/bin/env bash
# The test command: installs/builds what is needed, builds the test rootfs, runs the ava
# suite with TAP output (also saved to test/.images/last-run.tap), and ends with exactly
# one summary line:
#
#   N passed, M failed, K skipped
#
# Exits non-zero when a test failed, when no test ran, or when ava itself failed.
# usage: scripts/test.sh [ava args, e.g. test/lifecycle.test.mjs --match '*ps*']
# env:   TSRUN=runc scripts/test.sh   drives another runtime (tsrun is then not built,
#                                     and tsrun-only tests are skipped)
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

install_args=(--with-test-deps --no-example)
if [ -n "${TSRUN:-}" ] && [ "$(readlink -f "$(command -v "$TSRUN" 2>/dev/null || echo "$TSRUN")")" != "$(readlink -f bin/tsrun 2>/dev/null)" ]; then
  echo "test.sh: TSRUN=$TSRUN: testing that runtime; tsrun is not built"
  install_args+=(--no-build)
fi

if ! scripts/install.sh "${install_args[@]}"; then
  echo "test.sh: scripts/install.sh failed" >&2
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi
if ! scripts/make-test-image.sh; then
  echo "test.sh: scripts/make-test-image.sh failed" >&2
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi
# ava is a devDependency: with --no-build npm ci did not run, so make sure it is there.
if [ ! -x node_modules/.bin/ava ]; then
  npm ci --no-audit --no-fund --loglevel=error || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
fi

tap="test/.images/last-run.tap"
mkdir -p "$(dirname "$tap")"
# All state roots and bundles of this run live under one directory, so that containers
# left by a test worker that ava killed (timeout: its teardown never ran) can be swept
# afterwards without touching anything of another run.
# containers without --network stay off the host's network (test/network*.test.mjs make namespaces of their own)
export TSRUN_DEFAULT_NETWORK=none
# ...and the suite is checked for that: the host namespace's links, named namespaces, tsrun's
# iptables rules (either backend) and ip_forward must be the same after the run as before.
host_net() {
  ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print "link " $2 }' | sort
  ip netns list 2>/dev/null | awk '{ print "netns " $1 }' | sort
  { iptables-save 2>/dev/null; iptables-legacy-save 2>/dev/null; } | grep TSRUN | sed 's/\[[0-9]*:[0-9]*\]//' | sort
  echo "ip_forward $(cat /proc/sys/net/ipv4/ip_forward)"
}
host_net_before="$(host_net)"
export TSRUN_TEST_TMP="$(mktemp -d "${TMPDIR:-/tmp}/tsrun-test.XXXXXX")"
chmod 755 "$TSRUN_TEST_TMP"   # user-namespaced containers must traverse it
runtime="${TSRUN:-$repo/bin/tsrun}"
echo "test.sh: runtime under test: $runtime"
node_modules/.bin/ava --tap "$@" < /dev/null 2>&1 | tee "$tap"
ava_status=${PIPESTATUS[0]}

swept=0
for r in "$TSRUN_TEST_TMP"/tsrun-t-root-*; do
  [ -d "$r" ] || continue
  ids="$( (env -u NODE_EXTRA_CA_CERTS "$runtime" --root "$r" list -q 2>/dev/null; ls "$r") | sort -u)"
  for id in $ids; do
    env -u NODE_EXTRA_CA_CERTS timeout 30 "$runtime" --root "$r" delete --force "$id" >/dev/null 2>&1 && swept=$((swept + 1))
  done
done
[ $swept -gt 0 ] && echo "test.sh: force-deleted $swept container(s) left behind by killed test workers" >&2
if grep -q " $TSRUN_TEST_TMP/" /proc/self/mountinfo; then
  echo "test.sh: mounts left under $TSRUN_TEST_TMP (kept for inspection):" >&2
  grep " $TSRUN_TEST_TMP/" /proc/self/mountinfo | cut -d' ' -f5 >&2
else
  rm -rf --one-file-system "$TSRUN_TEST_TMP" 2>/dev/null || { sleep 2; rm -rf --one-file-system "$TSRUN_TEST_TMP"; }
fi

# TAP: "ok N - title", "ok N - title # SKIP", "not ok N - title" (a "# TODO" is neither).
read -r passed failed skipped < <(awk '
  /^ok [0-9]+/     { if ($0 ~ /# (SKIP|skip)/) s++; else if ($0 ~ /# (TODO|todo)/) ; else p++; next }
  /^not ok [0-9]+/ { if ($0 ~ /# (TODO|todo)/) ; else f++; next }
  END { printf "%d %d %d\n", p, f, s }' "$tap")

host_net_diff="$(diff <(echo "$host_net_before") <(host_net))"
if [ -n "$host_net_diff" ]; then
  echo "test.sh: FAILED: the suite changed the host's network namespace (< before, > after):" >&2
  echo "$host_net_diff" >&2
  failed=$((failed + 1))
fi

status=0
if [ "$failed" -gt 0 ]; then status=1; fi
if [ $((passed + failed)) -eq 0 ]; then echo "test.sh: no test ran" >&2; status=1; fi
if [ "$ava_status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "test.sh: ava exited with status $ava_status" >&2
  failed=1
  status=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
