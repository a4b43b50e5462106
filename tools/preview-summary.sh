#!/usr/bin/env bash
# Markdown for a pull request comment: runs `pulumi preview --json` on STACK (default: the selected stack) and prints,
# per host, each step that changes with its file diffs, the services it restarts, the resources created and deleted,
# and (with --refresh) the drift found. Secrets are never shown. Exit status: 0, or 1 when the preview failed (the
# Markdown then says why), or 2 on a usage error.
#   tools/preview-summary.sh [STACK] [--host NAME]... [pulumi preview options, e.g. --refresh]
# --host NAME (also --host=NAME; repeatable) keeps only the changes of those hosts, e.g. of the one node a change is
# tried on first: the other hosts' and the stack's own resources are left out, and the header says "filtered to hosts:
# NAME, ...". A host nothing changes on gets "no changes for NAME" (a preview lists no unchanged resource, so a misspelt
# name gets it too). The preview is still of the whole stack; the other options go to it, --host not.
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"
cd "$REPO"
usage() { echo "preview-summary: $1 (usage: tools/preview-summary.sh [STACK] [--host NAME]... [pulumi preview options])" >&2; exit 2; }
stack=""
if [ $# -gt 0 ] && [[ $1 != -* ]]; then stack=$1; shift; fi
hosts=() preview=()
while [ $# -gt 0 ]; do
    case $1 in
        --host) { [ $# -gt 1 ] && [[ $2 != -* ]]; } || usage "--host needs a host name"; [ -n "$2" ] || usage "--host: an empty host name"
            hosts+=("$2"); shift 2 ;;
        --host=*) [ -n "${1#--host=}" ] || usage "--host: an empty host name"; hosts+=("${1#--host=}"); shift ;;
        *) preview+=("$1"); shift ;;
    esac
done
[ -n "$stack" ] || stack=$(pulumi stack --show-name 2>/dev/null) || { echo "preview-summary: no stack selected: give one (tools/preview-summary.sh STACK)" >&2; exit 2; }
# A team's stack without its passphrase stops here, with how to set one (scripts/env.sh).
require_passphrase "$stack" || exit 2
json=$(mktemp)
trap 'rm -f "$json"' EXIT
# The preview's own exit status is the summary's: it prints JSON either way (diagnostics included).
pulumi preview --json --non-interactive --stack "$stack" ${preview[@]+"${preview[@]}"} >"$json" || true
exec node tools/previewSummary.ts "$stack" ${hosts[@]+"${hosts[@]}"} <"$json"
