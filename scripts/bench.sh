#!/usr/bin/env bash
# Benchmark (not a test): scripts/bench.sh [HOSTS...] (default: 3 12 24) prints, per host count, the time, SSH
# logins, state size and peak memory of fresh/no-op up, preview, refresh and destroy of the documented topology on
# the lab, through the real engine (medians of BENCH_ROUNDS rounds, default 3, alternating between host counts).
# The lab is grown to the largest count and set back to the documented three hosts at the end.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$REPO"
ensure_debs openssl:openssl; ensure_node_modules
scripts/engine.sh >/dev/null
[ $# -gt 0 ] || set -- 3 12 24
trap 'LAB_NODES=2 lab/lab.sh up >/dev/null 2>&1 || true' EXIT
npx ts-node --transpile-only scripts/bench.ts "$@"
