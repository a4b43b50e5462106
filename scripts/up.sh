#!/usr/bin/env bash
# The main job: `pulumi up` of a stack (default dev, the documented topology, against the local lab), then its
# outputs. Installs what it needs first: npm packages, the Pulumi engine and plugins (scripts/engine.sh), the lab.
set -euo pipefail
. "$(dirname "$0")/env.sh"
stack="${1:-dev}"
cd "$REPO"
phase_start "npm packages"; ensure_debs openssl:openssl; ensure_node_modules; phase_end
phase_start "Pulumi engine"; scripts/engine.sh; phase_end
if [ "$stack" = dev ]; then
    phase_start "lab up"; lab/lab.sh up; phase_end
fi
ensure_stack "$stack"
phase_start "pulumi up -s $stack"; pulumi up --yes --skip-preview --stack "$stack"; phase_end
pulumi stack output --stack "$stack"
