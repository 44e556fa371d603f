#!/usr/bin/env bash
# Pull benchmark: tsrun vs skopeo vs podman from a local docker-registry. See bench/pull.mjs.
# usage: sudo bench/pull.sh [--rounds 10] [--large-rounds 5] [--only tsrun,skopeo,podman]
#                           [--images small,large] [--mode cli|lib] [--src DIR] [--work DIR] [--json FILE] [--keep]
#                           [--also NAME=BIN,...]
# needs: docker-registry, skopeo, podman (optional), node_modules (esbuild)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for c in docker-registry skopeo; do
  command -v "$c" >/dev/null || { echo "bench/pull.sh: $c not found (apt-get install docker-registry skopeo podman)" >&2; exit 1; }
done
[ -x test/.images/busybox/rootfs/bin/busybox ] || scripts/make-test-image.sh
exec env -u NODE_EXTRA_CA_CERTS node bench/pull.mjs "$@"
