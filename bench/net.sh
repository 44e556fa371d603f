#!/usr/bin/env bash
# Network benchmark (bench/net.mjs): `run --rm IMAGE true` with tsrun --network none / bridge /
# bridge -p, podman (bridge) and docker (bridge), interleaved; then the throughput of a TCP stream
# between two containers on a bridge (tsrun MTU 1500 and 65000, podman, docker) vs loopback.
# usage: sudo bench/net.sh [--rounds 30] [--streams 3] [--mib 1024] [--only startup,throughput] [--no-peers]
# The NETWORK RULE: every engine runs inside a network namespace made here (`ip netns add`, then
# `nsenter --net`): tsrun's, podman's (its netavark bridge + iptables) and a private dockerd's
# (docker0 + iptables), so no bridge, veth, rule or sysctl appears in the host's namespace; the
# namespaces, the state dirs, the containers and the daemons are removed at the end.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tag="$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ns="tsrun-bench-net-$tag"
tmp="$(mktemp -d /tmp/tsrun-bench-net.XXXXXX)"
cleanup() {
  env -u NODE_EXTRA_CA_CERTS "$repo/bin/tsrun" --root "$tmp/root" rmi bench/bb:1 >/dev/null 2>&1 || true
  for n in $(ip netns list | cut -d' ' -f1 | grep -- "-$tag\$" || true); do ip netns del "$n"; done
  for d in /sys/fs/cgroup/*/tsrun-bench-*"$tag"; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done; true
  { grep " $tmp/" /proc/self/mountinfo || true; } | cut -d' ' -f5 | sort -r | xargs -r -n1 umount -l
  rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
image="${TSRUN_TEST_IMAGE:-$repo/test/.images/busybox/rootfs}"
[ -d "$image" ] || "$repo/scripts/make-test-image.sh" >/dev/null
# the stream tool: static, so it runs in the busybox image (musl-gcc if there, else gcc -static)
mkdir -p "$tmp/add"
cc="$(command -v musl-gcc || command -v gcc)"
"$cc" -O2 -static -o "$tmp/add/tcpblast" "$repo/bench/tcpblast.c"
tar -C "$image" -cf "$tmp/rootfs.tar" .
tar -C "$tmp/add" -rf "$tmp/rootfs.tar" ./tcpblast
env -u NODE_EXTRA_CA_CERTS "$repo/bin/tsrun" --root "$tmp/root" import "$tmp/rootfs.tar" bench/bb:1 >/dev/null
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
env -u NODE_EXTRA_CA_CERTS nsenter --net="/run/netns/$ns" node "$repo/bench/net.mjs" --root "$tmp/root" --image bench/bb:1 \
  --tarball "$tmp/rootfs.tar" --work "$tmp" --tag "$tag" "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
