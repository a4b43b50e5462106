#!/usr/bin/env bash
# Benchmark (not a test): bench/bench.sh [HOSTS[:ROUNDS]...] (default: 3 24 96:1) prints, per host count, the time, CPU
# seconds, SSH logins, state size and peak memory of fresh/no-op up, preview, refresh and destroy of the documented
# topology on the lab, through the real engine (medians of BENCH_ROUNDS rounds, default 3), then every target of the
# issues beside its figure. Only the measured hosts are booted (96 hosts take about 8.5 GiB).
#
# The lab runs outside the checkout (BENCH_LAB_DIR, default /var/tmp/host-topology-bench-lab): the Node.js language
# host walks the project directory at every run, and a lab under .lab/ holds every host's file system. The checkout's
# own lab (.lab/) is stopped first (the same addresses) and left stopped; `lab/lab.sh up` starts it again.
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"
cd "$REPO"
use_lab_passphrase # the bench creates lab stacks only (bench-N)
ensure_debs openssl:openssl; ensure_node_modules
scripts/engine.sh >/dev/null
[ $# -gt 0 ] || set -- 3 24 96:1
bench_lab="${BENCH_LAB_DIR:-/var/tmp/host-topology-bench-lab}"
case "$bench_lab" in "$REPO"/*) echo "bench.sh: BENCH_LAB_DIR must be outside the checkout ($REPO)" >&2; exit 2 ;; esac
env -u LAB_DIR lab/lab.sh down >/dev/null 2>&1 || true
mkdir -p "$bench_lab"
# The checkout's debootstrapped base, when there is one, saves the bench lab its own (about a minute).
if [ ! -e "$bench_lab/base/.complete" ] && [ -e "$REPO/.lab/base/.complete" ]; then
    rm -rf "$bench_lab/base" && cp -a "$REPO/.lab/base" "$bench_lab/base"
fi
export LAB_DIR="$bench_lab"
trap 'lab/lab.sh down >/dev/null 2>&1 || true' EXIT
node bench/bench.ts "$@"
