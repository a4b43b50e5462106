#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The host scripts' library (sourced, never run): the protocol, the checks of what was uploaded, the step's
# ownership of what it manages, and the files of one concern each that it sources. Protocol:
#   bash <dir>/<script>.sh apply|remove|check   with parameters on stdin (the framing: read_records).
# apply brings the host to the desired state and is idempotent; remove undoes what apply added (never data);
# check prints one `drift <item> <reason>` line per difference from the desired state and changes nothing.
# Every path is prefixed with $HOST_TOPOLOGY_ROOT (empty on hosts; a temp dir in tests).
set -euo pipefail

ROOT="${HOST_TOPOLOGY_ROOT:-}"
STATE_DIR="$ROOT/var/lib/host-topology"
OS_RELEASE="${HOST_TOPOLOGY_OS_RELEASE:-$ROOT/etc/os-release}"
declare -A P=()
CHANGED=0
SECRETS_INLINE=0

die() { printf 'host-topology: %s: %s\n' "$(hostname 2>/dev/null || echo '?')" "$*" >&2; exit 1; }
warn() { printf 'warning: %s\n' "$*"; }

# The library, one file per concern, in the order LIB_SHA256 covers them (the program's libSha256: sorted names).
LIB_DIR=$(dirname "${BASH_SOURCE[0]}")
LIB_FILES=(checks.sh files.sh os.sh packages.sh params.sh services.sh step.sh)
# shellcheck source=params.sh
. "$LIB_DIR/params.sh"
# shellcheck source=os.sh
. "$LIB_DIR/os.sh"
# shellcheck source=packages.sh
. "$LIB_DIR/packages.sh"
# shellcheck source=files.sh
. "$LIB_DIR/files.sh"
# shellcheck source=services.sh
. "$LIB_DIR/services.sh"
# shellcheck source=checks.sh
. "$LIB_DIR/checks.sh"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
# The library's one digest: sha256 of its files' contents, one after another in LIB_FILES order.
lib_sha256() { (cd "$LIB_DIR" && cat -- "${LIB_FILES[@]}") | sha256sum | cut -d' ' -f1; }

# start_script SLOT SCRIPT ACTION: reads the parameters, checks the uploaded files are the program's, detects the OS.
# SLOT names what the script manages on the host (its owner record, its `ok` line): hostbase, timesync, ...
start_script() {
    SLOT=$1
    SCRIPT=$2
    ACTION=${3:-}
    case "$ACTION" in apply | remove | check) ;; *) die "usage: $(basename "$SCRIPT") apply|remove|check" ;; esac
    load_params
    need SCRIPT_SHA256 LIB_SHA256
    local f want got
    for f in "$SCRIPT" "$LIB_DIR"; do
        if [ "$f" = "$SCRIPT" ]; then want=${P[SCRIPT_SHA256]} got=$(sha256_of "$f"); else want=${P[LIB_SHA256]} got=$(lib_sha256); fi
        if [ "$got" != "$want" ]; then
            # remove must still work after the program moved on to a newer script.
            if [ "$ACTION" = remove ]; then
                warn "$f differs from the version that applied this step"
            else
                printf 'host-topology: %s on %s differs from the program'\''s version (expected %s, found %s)\n' \
                    "$f" "$(hostname 2>/dev/null || echo '?')" "$want" "$got" >&2
                exit 3
            fi
        fi
    done
    detect_family
    if [ "$ACTION" = remove ] && ! owns_slot; then
        echo "left alone: $SLOT on $(hostname 2>/dev/null || echo '?') was applied by $(slot_owner), not by this step (${P[OWNER]}): nothing removed"
        echo "ok $SLOT family=$FAMILY"
        exit 0
    fi
}

# ---- ownership ----
# What a script manages on a host (its "slot": the hosts block, the time daemon, ...) belongs to the step whose
# apply wrote it last: OWNER (the stack, project and step name) is recorded under $STATE_DIR/owners/. A remove
# from another step leaves the host alone: after a rename, Pulumi creates the steps of the new name first and
# deletes those of the old name at the end, on the same host. Without OWNER (a step applied before owners were
# recorded) or without a record (a reinstalled host), remove proceeds.
owner_file() { printf '%s/owners/%s' "$STATE_DIR" "$SLOT"; }
slot_owner() { cat "$(owner_file)" 2>/dev/null || true; }
owns_slot() {
    local recorded
    recorded=$(slot_owner)
    [ -z "${P[OWNER]:-}" ] || [ -z "$recorded" ] || [ "$recorded" = "${P[OWNER]}" ]
}
record_owner() {
    local f
    f=$(owner_file)
    case "$ACTION" in
        apply) if [ -n "${P[OWNER]:-}" ] && [ "$(slot_owner)" != "${P[OWNER]}" ]; then mkdir -p "$(dirname "$f")" && printf '%s' "${P[OWNER]}" >"$f"; fi ;;
        remove) rm -f "$f" ;;
    esac
}

# finish: the last line of every script; records (apply) or drops (remove) the step's ownership of its slot.
finish() {
    [ "$SECRETS_INLINE" = 1 ] && secrets_file_step
    record_owner
    echo "ok $SLOT family=$FAMILY"
}
