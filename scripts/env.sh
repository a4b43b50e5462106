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
# The lab's passphrase; real stacks set their own PULUMI_CONFIG_PASSPHRASE (or another secrets provider).
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-host-topology-lab}"
export PULUMI_SKIP_UPDATE_CHECK=1
# With the offline plugin mirror (scripts/engine.sh installs from it), a missing plugin fails at once instead of
# trying a download that cannot succeed; without it, pulumi downloads plugins itself.
if [ -n "${PULUMI_PLUGIN_MIRROR:-}" ] || [ -d "$REPO/../shared/pulumi-plugins" ]; then
    export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="${PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION:-true}"
fi
export PULUMI_SKIP_CONFIRMATIONS=1

phase_start() { PHASE_NAME="$1"; PHASE_T0=$(date +%s); echo "==> $1"; }
phase_end() { echo "<== ${PHASE_NAME}: $(( $(date +%s) - PHASE_T0 ))s"; }

# npm packages, installed again only when package-lock.json changed.
ensure_node_modules() {
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

