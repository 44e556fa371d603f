#!/usr/bin/env bash
# What the bridge network costs a container's start and stop: `tsrun run --rm IMAGE true` with
# --network none, bridge and bridge + -p, interleaved round by round (bench/net.mjs).
# usage: sudo bench/net.sh [--rounds N]
# The NETWORK RULE: tsrun runs inside a throwaway network namespace (`nsenter --net`), so the
# bridge, veths and iptables rules never appear in the host's namespace; the namespace, the
# state root and the containers are removed at the end.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ns="tsrun-bench-net-$$"
tmp="$(mktemp -d /tmp/tsrun-bench-net.XXXXXX)"
cleanup() {
  ip netns del "$ns" 2>/dev/null || true
  grep -q " $tmp/" /proc/self/mountinfo && grep " $tmp/" /proc/self/mountinfo | cut -d' ' -f5 | xargs -r -n1 umount -l
  rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
image="${TSRUN_TEST_IMAGE:-$repo/test/.images/busybox/rootfs}"
[ -d "$image" ] || "$repo/scripts/make-test-image.sh" >/dev/null
tar -C "$image" -cf "$tmp/rootfs.tar" .
env -u NODE_EXTRA_CA_CERTS "$repo/bin/tsrun" --root "$tmp/root" import "$tmp/rootfs.tar" bench/bb:1 >/dev/null
env -u NODE_EXTRA_CA_CERTS nsenter --net="/run/netns/$ns" node "$repo/bench/net.mjs" --root "$tmp/root" --image bench/bb:1 "$@"
