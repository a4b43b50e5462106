#!/usr/bin/env bash
# The main job: `pulumi up` of a stack, then its outputs. Installs what it needs first: npm packages, the Pulumi engine
# and plugins (scripts/engine.sh), and for the lab's dev stack the lab itself.
#
#   tools/up.sh                 the dev stack on the local lab (created on first use), applied without a question
#   tools/up.sh STACK           a team's stack: `pulumi up` with its preview and its question (needs a terminal)
#   tools/up.sh --yes STACK     the same without the question (CI): the preview is still shown, then applied
#
# A team's stack must exist (README, "Your own hosts") and have its own passphrase or KMS: this never creates one,
# never gives it the lab's passphrase, and without a terminal applies nothing unless --yes is given.
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"
yes=0 stack=""
while [ $# -gt 0 ]; do
    case "$1" in
    --yes | -y) yes=1 ;;
    -h | --help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "up.sh: unknown option $1 (usage: tools/up.sh [--yes] [STACK])" >&2; exit 2 ;;
    *) [ -z "$stack" ] || { echo "up.sh: one stack at a time (got $stack and $1)" >&2; exit 2; }; stack=$1 ;;
    esac
    shift
done
stack=${stack:-dev}
cd "$REPO"
if ! is_lab_stack "$stack"; then
    # Refused before anything is installed or run: no terminal to ask on, and no --yes.
    if [ "$yes" = 0 ] && { [ ! -t 0 ] || [ ! -t 1 ]; }; then
        echo "up.sh: stack $stack: no terminal to show the preview and ask on, so nothing was applied." >&2
        echo "  Run it in a terminal, or pass --yes to apply after the preview without asking (CI): tools/up.sh --yes $stack" >&2
        exit 2
    fi
    require_passphrase "$stack" || exit 2
fi
phase_start "npm packages"; ensure_debs openssl:openssl; ensure_node_modules; phase_end
phase_start "Pulumi engine"; scripts/engine.sh; phase_end
if is_lab_stack "$stack"; then
    [ "$stack" != dev ] || { phase_start "lab up"; lab/lab.sh up; phase_end; }
    ensure_stack "$stack"
    phase_start "pulumi up -s $stack"; pulumi up --yes --skip-preview --stack "$stack"; phase_end
else
    if ! command pulumi stack ls --json 2>/dev/null | grep -q "\"name\": \"\\([^\"]*/\\)\\?$stack\""; then
        echo "up.sh: there is no stack $stack on $PULUMI_BACKEND_URL; nothing was applied." >&2
        echo "  Create it with its own secrets first (README, \"Your own hosts\"): pulumi stack init $stack --secrets-provider passphrase" >&2
        exit 2
    fi
    flags=()
    [ "$yes" = 0 ] || flags+=(--yes)
    phase_start "pulumi up -s $stack"; pulumi up "${flags[@]}" --stack "$stack"; phase_end
fi
pulumi stack output --stack "$stack"
