#!/usr/bin/env bash
# The main job: `pulumi up` of a stack (default dev, the documented topology, against the local lab).
set -euo pipefail
. "$(dirname "$0")/env.sh"
stack="${1:-dev}"
cd "$REPO"
phase_start "npm packages"; ensure_debs openssl:openssl python3:python3; ensure_node_modules; phase_end
if [ "$stack" = dev ]; then
    phase_start "lab up"; lab/lab.sh up; phase_end
fi
if command -v pulumi >/dev/null && command -v pulumi-resource-command >/dev/null && command -v pulumi-resource-random >/dev/null; then
    ensure_stack "$stack"
    phase_start "pulumi up -s $stack"; pulumi up --yes --skip-preview -s "$stack"; phase_end
    pulumi stack output -s "$stack"
else
    echo "No Pulumi engine with the command and random provider plugins on PATH (they cannot be had from the"
    echo "registries here, see README): applying the program with tests/e2e/runner.ts instead, which runs the"
    echo "program's own commands and uploads over SSH in its dependency order. It is not the Pulumi engine."
    phase_start "runner up -s $stack"; npx ts-node --transpile-only tests/e2e/runner.ts up --stack "$stack"; phase_end
    npx ts-node --transpile-only tests/e2e/runner.ts output --stack "$stack"
fi
