#!/usr/bin/env bash
# Start-up benchmark: tsrun vs runc vs crun (and `node -e 0`). See bench/startup.mjs.
# usage: sudo bench/startup.sh [--rounds 30] [--warmup 3] [--only tsrun,runc,crun,node] [--json FILE]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export BENCH_NODE_EXTRA_CA_CERTS_WAS_SET="${NODE_EXTRA_CA_CERTS:+1}"
exec env -u NODE_EXTRA_CA_CERTS node bench/startup.mjs "$@"
