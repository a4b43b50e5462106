#!/usr/bin/env bash
# Markdown for a pull request comment: runs `pulumi preview --json` on STACK (default: the selected stack) and prints,
# per host, each step that changes with its file diffs, the services it restarts, the resources created and deleted,
# and (with --refresh) the drift found. Secrets are never shown. Exit status: 0, or 1 when the preview failed (the
# Markdown then says why).
#   scripts/preview-summary.sh [STACK] [pulumi preview options, e.g. --refresh]
set -euo pipefail
cd "$(dirname "$0")/.."
stack=""
if [ $# -gt 0 ] && [[ $1 != -* ]]; then stack=$1; shift; fi
[ -n "$stack" ] || stack=$(pulumi stack --show-name 2>/dev/null) || { echo "preview-summary: no stack selected: give one (scripts/preview-summary.sh STACK)" >&2; exit 2; }
json=$(mktemp)
trap 'rm -f "$json"' EXIT
# The preview's own exit status is the summary's: it prints JSON either way (diagnostics included).
pulumi preview --json --non-interactive --stack "$stack" "$@" >"$json" || true
exec node -r ts-node/register/transpile-only scripts/previewSummary.ts "$stack" <"$json"
