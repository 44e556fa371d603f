#!/usr/bin/env bash
# Engine benchmark: tsrun vs podman (vs docker, if a dockerd runs): `run --rm IMAGE true`
# start-up and per-container supervisor PSS. See bench/run.mjs.
# usage: sudo bench/run.sh [--rounds 20] [--warmup 3] [--containers 5] [--only startup,lifecycle,density] [--json FILE]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export BENCH_NODE_EXTRA_CA_CERTS_WAS_SET="${NODE_EXTRA_CA_CERTS:+1}"
exec env -u NODE_EXTRA_CA_CERTS node bench/run.mjs "$@"
