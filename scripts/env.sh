# shellcheck shell=bash
# Sourced by the entry scripts: one place for paths, the engine on PATH, the local backend and npm deps.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO
export PATH="$REPO/.tools/bin:$PATH"
# The file backend without gocloud's ".attrs" sidecar files (metadata=skip): before each checkpoint's atomic rename,
# fileblob truncates and rewrites dev.json.attrs in place, so a pulumi killed in that instant left it empty and every
# later command failed with "failed to load checkpoint: EOF". Sidecars of older runs are never updated again; they go.
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$REPO/.pulumi-state?metadata=skip}"
if [ "$PULUMI_BACKEND_URL" = "file://$REPO/.pulumi-state?metadata=skip" ] && [ -d "$REPO/.pulumi-state/.pulumi" ]; then
    find "$REPO/.pulumi-state/.pulumi" -name '*.attrs' -type f -delete
fi
# A file backend's directory must exist before the first `pulumi stack init`.
file_backend_dir() { case "$PULUMI_BACKEND_URL" in file://*) local d="${PULUMI_BACKEND_URL#file://}"; mkdir -p "${d%%\?*}" ;; esac; }
file_backend_dir
export PULUMI_SKIP_UPDATE_CHECK=1
# With the offline plugin mirror (scripts/engine.sh installs from it), a missing plugin fails at once instead of
# trying a download that cannot succeed; without it, pulumi downloads plugins itself.
if [ -n "${PULUMI_PLUGIN_MIRROR:-}" ] || [ -d "$REPO/../shared/pulumi-plugins" ]; then
    export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="${PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION:-true}"
fi

# ------------------------------------------------------------------------------------------ stacks and secrets
# The lab's stacks: dev, and the stacks the tests (e2e-*) and the bench (bench-*) create. Only they may use the lab's
# passphrase, which is public (it is in this file). Every other stack is a team's own and needs its own secrets.
export LAB_PASSPHRASE=host-topology-lab
is_lab_stack() { case "$1" in dev | e2e-* | bench-*) return 0 ;; *) return 1 ;; esac; }

# For the scripts that only ever touch lab stacks (test.sh, bench.sh): the lab passphrase for their children.
use_lab_passphrase() {
    [ -n "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] || export PULUMI_CONFIG_PASSPHRASE="$LAB_PASSPHRASE"
}

# Whether STACK encrypts its secrets with a passphrase: a stack file with an encryptionsalt, or none (a new stack on
# a DIY backend gets the passphrase provider unless `stack init --secrets-provider` names another).
stack_uses_passphrase() {
    local file="$REPO/Pulumi.$1.yaml" provider
    [ -f "$file" ] || return 0
    provider=$(sed -n 's/^secretsprovider: *//p' "$file")
    [ -z "$provider" ] || [[ $provider == passphrase* ]]
}

# Stops (status 1, a message on stderr) when STACK is not a lab stack, uses the passphrase provider, and neither
# PULUMI_CONFIG_PASSPHRASE nor PULUMI_CONFIG_PASSPHRASE_FILE is set (an empty passphrase counts as none).
require_passphrase() {
    local stack=$1
    is_lab_stack "$stack" && return 0
    stack_uses_passphrase "$stack" || return 0
    [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] || return 0
    cat >&2 <<EOF
error: stack "$stack" encrypts its secrets with a passphrase, and none is set: nothing was run.
  Keep the passphrase in a file only you can read, and point Pulumi at it:
    (umask 077 && openssl rand -base64 32 > ~/.pulumi-$stack.passphrase)   # a new stack; else the team's passphrase
    export PULUMI_CONFIG_PASSPHRASE_FILE=~/.pulumi-$stack.passphrase
  or set PULUMI_CONFIG_PASSPHRASE from your CI's secret store, or use a KMS instead of a passphrase:
    pulumi stack change-secrets-provider --stack $stack "awskms://alias/host-topology?region=eu-central-1"
  The lab's passphrase is for the lab's stacks only (dev, e2e-*, bench-*).
EOF
    return 1
}

# The stack a pulumi command line names (--stack S, --stack=S, -s S, -sS), or nothing.
stack_of_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
        --stack | -s) [ $# -gt 1 ] && { echo "$2"; return 0; } ;;
        --stack=*) echo "${1#--stack=}"; return 0 ;;
        -s?*) echo "${1#-s}"; return 0 ;;
        esac
        shift
    done
    return 1
}

# `pulumi` after `. scripts/env.sh`: a lab stack gets the lab passphrase for that one command (never exported into
# the shell, so a later command on another stack cannot inherit it); a command that decrypts a team's stack stops
# first when that stack has no passphrase. Everything else is plain pulumi.
pulumi() {
    local stack="" sub="${1:-}"
    if [ "$sub" = stack ] && { [ "${2:-}" = init ] || [ "${2:-}" = select ]; }; then
        # `stack init NAME`, `stack select [--create] NAME`: the name is an argument.
        stack=$(stack_of_args "${@:3}") || stack=$(printf '%s\n' "${@:3}" | grep -v '^-' | head -1)
        case " $* " in *" --secrets-provider "* | *" --secrets-provider="*) [[ " $* " == *passphrase* ]] || stack="" ;; esac
    else
        stack=$(stack_of_args "$@") || stack=$(command pulumi stack --show-name 2>/dev/null) || stack=""
    fi
    if [ -n "$stack" ] && is_lab_stack "$stack" && [ -z "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
        PULUMI_CONFIG_PASSPHRASE="$LAB_PASSPHRASE" command pulumi "$@"
        return
    fi
    case "$sub ${2:-}" in
    "up "* | "preview "* | "refresh "* | "destroy "* | "import "* | "watch "* | "config "* | "stack init" | "stack select" | "stack output" | "stack export" | "stack import")
        [ -z "$stack" ] || require_passphrase "$stack" || return 1
        ;;
    esac
    command pulumi "$@"
}

phase_start() { PHASE_NAME="$1"; PHASE_T0=$(date +%s); echo "==> $1"; }
phase_end() { echo "<== ${PHASE_NAME}: $(( $(date +%s) - PHASE_T0 ))s"; }

# npm packages, installed again only when package-lock.json changed (with Node.js >= 22 first: scripts/node.sh).
ensure_node_modules() {
    "$REPO/scripts/node.sh"
    local stamp="$REPO/node_modules/.host-topology-lock.sha256"
    local want
    want=$(sha256sum "$REPO/package-lock.json" | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        (cd "$REPO" && npm ci --no-audit --no-fund)
        echo "$want" > "$stamp"
    fi
}

# The stack, created on first use.
ensure_stack() {
    local stack="$1"
    file_backend_dir
    (cd "$REPO" && pulumi stack select --create "$stack" >/dev/null)
}

# Debian packages the tests and etcdTls need on the machine that runs Pulumi (a fresh Debian may lack them).
ensure_debs() {
    local missing=() c
    for c in "$@"; do command -v "${c%%:*}" >/dev/null || missing+=("${c#*:}"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

