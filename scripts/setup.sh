#!/usr/bin/env bash
# This machine's part, for a team's own stacks: the npm packages (installed again only when package-lock.json changed)
# and the Pulumi CLI and plugins (scripts/engine.sh). No lab and no root: tools/up.sh and scripts/test.sh do the
# lab's part themselves.
set -euo pipefail
. "$(dirname "$0")/env.sh"
ensure_node_modules
"$REPO/scripts/engine.sh"
