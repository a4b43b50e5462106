#!/usr/bin/env bash
# EtcdMember: etcd installed, configured (the environment file), enabled, and healthy. The data dir is kept.
# Params: ETCD_ENV, NAME, DATA_DIR, CLIENT_URL, PEER_URL, PEER_CLIENT_URLS (the other members, comma-separated),
# HEALTH_TIMEOUT (seconds); with etcdTls also PKI_DIR, TLS_CA, TLS_CERT, TLS_KEY, TLS_CLIENT_CERT, TLS_CLIENT_KEY
# (PEM), written to PKI_DIR as ca.crt, member.crt, member.key, client.crt, client.key; etcdctl then uses the
# client certificate. Without them, TLS files an earlier apply wrote are removed.
# Membership changes one member at a time (the program applies the members in order): a member without data joins
# the running cluster as a learner and is promoted once it caught up; a member whose data dir is gone (a reinstalled
# host) is replaced; a member that leaves (remove) is taken out of the cluster first. A restart of a leader hands
# leadership over first.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/step.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/step.sh"
start_script etcd "$0" "${1:-}"
need ETCD_ENV NAME DATA_DIR CLIENT_URL
# PEER_URL identifies this member in a member list: needed with other members configured (a lone member may omit it).
[ -z "${P[PEER_CLIENT_URLS]:-}" ] || need PEER_URL
[[ ${P[DATA_DIR]} == /?* ]] || die "DATA_DIR must be an absolute path"
read -r -a pkgs <<<"$ETCD_PKGS"

DROPIN=/etc/systemd/system/$ETCD_SVC.service.d/host-topology-join.conf
JOIN_ENV=/var/lib/host-topology/etcd-join.env
PKI_DIR=${P[PKI_DIR]:-/etc/etcd/pki}
# file name, parameter, mode; "key" = the member key, readable by the etcd group when there is one (the
# package creates it, so this is decided after the install)
TLS_FILES=("ca.crt TLS_CA 0644" "member.crt TLS_CERT 0644" "member.key TLS_KEY key" "client.crt TLS_CLIENT_CERT 0644" "client.key TLS_CLIENT_KEY 0600")
key_mode() { if getent group etcd >/dev/null; then echo "0640 root:etcd"; else echo 0600; fi; }
ETCDCTL_TLS=()
if [ -n "${P[TLS_CA]:-}" ]; then
    [ "$ACTION" = remove ] || need TLS_CERT TLS_KEY TLS_CLIENT_CERT TLS_CLIENT_KEY
    ETCDCTL_TLS=(--cacert="$ROOT$PKI_DIR/ca.crt" --cert="$ROOT$PKI_DIR/client.crt" --key="$ROOT$PKI_DIR/client.key")
fi
tls() { [ ${#ETCDCTL_TLS[@]} -gt 0 ]; }
# etcdctl with the client certificate when TLS is on (bash 4.2: an empty array needs the +-form under set -u).
ctl() { ETCDCTL_API=3 etcdctl ${ETCDCTL_TLS[@]+"${ETCDCTL_TLS[@]}"} "$@"; }
peers() { ctl --endpoints="${P[PEER_CLIENT_URLS]}" --command-timeout=5s "$@"; }

# Writes (TLS on) or removes (TLS off) the member's TLS files; sets tls_changed.
sync_tls_files() {
    local entry f param m owner
    tls_changed=0
    for entry in "${TLS_FILES[@]}"; do
        read -r f param m <<<"$entry"
        if tls; then
            owner=""
            [ "$m" != key ] || read -r m owner <<<"$(key_mode)"
            put_file "$PKI_DIR/$f" "$m" "${P[$param]}" "$owner"
        else
            remove_file "$PKI_DIR/$f"
        fi
        [ "$CHANGED" = 0 ] || tls_changed=1
    done
    if ! tls; then rmdir "$ROOT$PKI_DIR" 2>/dev/null || true; fi
}

# The cluster as `member list` prints it (id, status, name, peer URLs, client URLs, learner), asked of the other
# members; empty when none of them answers.
cluster_list() { if [ -n "${P[PEER_CLIENT_URLS]:-}" ]; then peers member list 2>/dev/null || true; fi; }
# Client URLs of the started members in a member list, other than this one (comma-separated).
others_of() { awk -F', ' -v url="${P[PEER_URL]:-}" '$4 != url && $5 != "" { printf "%s%s", sep, $5; sep = "," }' <<<"$1"; }
# etcdctl against the started members of LIST (set by the caller), not the configured ones that never ran.
live() { ctl --endpoints="$(others_of "$list")" --command-timeout=10s "$@"; }
# This member's line in a member list (by its peer URL).
line_of() { awk -F', ' -v url="${P[PEER_URL]:-}" '$4 == url' <<<"$1"; }
# The first member of ETCD_INITIAL_CLUSTER (the program's member order) is the one that bootstraps a new cluster.
first_member() { sed -n 's/^ETCD_INITIAL_CLUSTER="\([^=,]*\)=.*/\1/p' <<<"${P[ETCD_ENV]}"; }
# Settings etcd reads at every start (ETCD_INITIAL_* count only at a member's first start, with an empty data dir).
running_settings() { grep -v '^ETCD_INITIAL_' <<<"$1" || true; }
# reconfig CMD...: a membership change, tried again for up to 2 minutes while etcd refuses it for now: its strict
# reconfiguration check wants every voting member connected for 5 s, so right after another change it answers
# "unhealthy cluster".
reconfig() {
    local out until=$((SECONDS + 120))
    while ! out=$("$@" 2>&1); do
        if [ $SECONDS -ge $until ] || ! grep -qE 'unhealthy cluster|not enough started members' <<<"$out"; then
            printf '%s\n' "$out" >&2
            return 1
        fi
        sleep 1
    done
    printf '%s\n' "$out"
}
# The help is read whole first: grep -q in a pipe exits at the first match, etcdctl's next write then gets SIGPIPE,
# and pipefail would turn that into "not supported".
learner_supported() { local help; help=$(ctl member add --help 2>&1) || true; grep -q -- '--learner' <<<"$help"; }

# The settings of a member's first start, as a systemd drop-in read after the package's environment file.
write_join_env() {
    put_file "$JOIN_ENV" 0644 "# host-topology: how etcd member ${P[NAME]} first started (read by etcd only with an empty data dir)
ETCD_INITIAL_CLUSTER=\"$1\"
ETCD_INITIAL_CLUSTER_STATE=\"$2\"
"
    put_file "$DROPIN" 0644 $'[Service]\nEnvironmentFile='"$JOIN_ENV"$'\n'
    [ "$CHANGED" = 0 ] || systemctl daemon-reload
}

# A member with no data joins the running cluster one at a time (the program orders the members): it is added as a
# learner (etcd >= 3.4; a plain member before), started, and promoted once it has caught up with the leader, so
# the cluster keeps its quorum throughout. A member whose data is gone (a reinstalled host) is removed and added
# again. With no other member answering, the first member bootstraps a new cluster of its own; any other fails.
join=""
join_cluster() {
    local list line initial out
    if [ -d "$data/member" ]; then
        # A learner an earlier run started but could not promote in time (still catching up): promoted now.
        [ "$(line_of "$(cluster_list)" | awk -F', ' '{ print $6 }')" != true ] || join=learner
        return 0
    fi
    list=$(cluster_list)
    if [ -z "$list" ]; then
        if [ -n "${P[PEER_CLIENT_URLS]:-}" ] && [ "$(first_member)" != "${P[NAME]}" ]; then
            die "etcd member ${P[NAME]} has no data and none of the other members (${P[PEER_CLIENT_URLS]}) answers: it cannot join; the first member, $(first_member), bootstraps a new cluster"
        fi
        if [ -n "${P[PEER_CLIENT_URLS]:-}" ]; then
            write_join_env "${P[NAME]}=${P[PEER_URL]}" new
            echo "etcd member ${P[NAME]} bootstraps a new cluster (the other members join it one at a time)"
        fi
        return 0
    fi
    line=$(line_of "$list")
    # Listed and started before (its client URLs are published), but its data is gone: replaced.
    if [ -n "$line" ] && [ "$(awk -F', ' '{ print $2 }' <<<"$line")" = started ] && [ -n "$(awk -F', ' '{ print $5 }' <<<"$line")" ]; then
        reconfig live member remove "$(cut -d, -f1 <<<"$line")" >/dev/null
        echo "changed etcd member ${P[NAME]} removed (its data is gone)"
        list=$(cluster_list)
        line=""
    fi
    if [ -z "$line" ]; then
        local how=()
        if learner_supported; then how=(--learner); fi
        out=$(reconfig live member add "${P[NAME]}" --peer-urls="${P[PEER_URL]}" ${how[@]+"${how[@]}"}) ||
            die "etcd member ${P[NAME]}: member add failed: $out"
        initial=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$out")
        echo "changed etcd member ${P[NAME]} added to the running cluster${how[*]:+ as a learner}"
        join=$( [ ${#how[@]} -gt 0 ] && echo learner || echo member)
    else
        # Added by an earlier run that did not get as far as starting it: its initial cluster is the list as it is.
        initial=$(awk -F', ' -v url="${P[PEER_URL]}" -v me="${P[NAME]}" '{ n = ($4 == url) ? me : $3
            if (n == "") { bad = 1 } printf "%s%s=%s", sep, n, $4; sep = "," } END { exit bad }' <<<"$list") ||
            die "etcd member ${P[NAME]}: the cluster lists another member that never started; remove it first (etcdctl member list / member remove)"
        join=$( [ "$(awk -F', ' '{ print $6 }' <<<"$line")" = true ] && echo learner || echo member)
        echo "etcd member ${P[NAME]} is listed already (never started): starting it"
    fi
    [ -n "$initial" ] || die "etcd member ${P[NAME]}: no initial cluster from member add: $out"
    write_join_env "$initial" existing
    changed=1
}

# Promotes this learner once it has caught up (etcd refuses before); dies after the health timeout.
promote() {
    local id list
    list=$(cluster_list)
    id=$(line_of "$list" | cut -d, -f1)
    [ -n "$id" ] || die "etcd member ${P[NAME]} is not in the member list"
    until live member promote "$id" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            echo "etcd learner ${P[NAME]} did not catch up with the leader within ${timeout}s" >&2
            die_service "$ETCD_SVC"
        fi
        sleep 1
    done
    echo "changed etcd member ${P[NAME]} promoted from learner"
}

# Before a restart: a leader hands leadership to another started member, so the restart costs no election.
hand_over() {
    local status list target
    status=$(ctl --endpoints="${P[CLIENT_URL]}" --command-timeout=3s endpoint status 2>/dev/null) || return 0
    [ "$(awk -F', ' '{ print $5 }' <<<"$status")" = true ] || return 0
    list=$(cluster_list)
    # started, with client URLs (it ran), and a voting member
    target=$(awk -F', ' -v url="${P[PEER_URL]:-}" '$4 != url && $2 == "started" && $5 != "" && $6 != "true" { print $1; exit }' <<<"$list")
    [ -n "$target" ] || return 0
    if ctl --endpoints="${P[CLIENT_URL]}" --command-timeout=10s move-leader "$target" >/dev/null 2>&1; then
        echo "etcd member ${P[NAME]} handed leadership to $target before restarting"
    fi
}

# remove: a member that leaves a cluster with other members is removed from it first (the rest keeps its quorum),
# and only when every other member is healthy; its data dir is then kept under a new name (a later join starts
# empty). The last member of a cluster (destroy) just stops, its data in place.
leave_cluster() {
    local list others id d
    unit_active "$ETCD_SVC" || { echo "etcd member ${P[NAME]} is not running: not removed from any cluster"; return 0; }
    list=$(ctl --endpoints="${P[CLIENT_URL]}" --command-timeout=5s member list 2>/dev/null) ||
        die "etcd member ${P[NAME]}: cannot read the member list at ${P[CLIENT_URL]} (no quorum?): refusing to stop it"
    # A lone member may have no PEER_URL: its line is the one with its name.
    [ -n "${P[PEER_URL]:-}" ] || P[PEER_URL]=$(awk -F', ' -v n="${P[NAME]}" '$3 == n { print $4; exit }' <<<"$list")
    others=$(others_of "$list")
    if [ -z "$(awk -F', ' -v url="${P[PEER_URL]:-}" '$4 != url' <<<"$list")" ]; then
        echo "etcd member ${P[NAME]} is the last member of its cluster: stopped with its data"
        return 0
    fi
    [ -n "$others" ] || die "etcd member ${P[NAME]}: the other members never started: refusing to remove it"
    local e
    for e in ${others//,/ }; do
        ctl --endpoints="$e" --command-timeout=5s endpoint health >/dev/null 2>&1 ||
            die "etcd member ${P[NAME]} stays: member at $e is not healthy, and the cluster would lose its quorum without ${P[NAME]}"
    done
    hand_over
    id=$(line_of "$list" | cut -d, -f1)
    reconfig live member remove "$id" >/dev/null
    echo "changed etcd member ${P[NAME]} removed from the cluster"
    local until=$((SECONDS + 60))
    until ctl --endpoints="$others" --command-timeout=3s endpoint health >/dev/null 2>&1; do
        [ $SECONDS -lt $until ] || die "etcd: the remaining members ($others) are not healthy after removing ${P[NAME]}"
        sleep 1
    done
    service_off "$ETCD_SVC"
    d="$ROOT${P[DATA_DIR]}"
    if [ -d "$d" ]; then
        mv "$d" "$d.removed-$(date +%Y%m%d%H%M%S)"
        echo "kept ${P[DATA_DIR]} as $(basename "$d").removed-* (the member left the cluster)"
    fi
}

healthy() { ctl --endpoints="${P[CLIENT_URL]}" --command-timeout=3s endpoint health >/dev/null 2>&1; }

# A host running a member that another step applied under another name (default names etcd<i> follow the order of
# etcdMembers; the step's name holds the member's): renaming a member of a running cluster is not supported, and a
# new member there would start without the data. The same step finding another name in the file is drift (a hand
# edit): repaired.
refuse_rename() {
    local cur name dir owner
    owner=$(slot_owner)
    if [ -z "$owner" ] || [ -z "${P[OWNER]:-}" ] || [ "$owner" = "${P[OWNER]}" ]; then return 0; fi
    cur=$(cat "$ROOT$ETCD_CONF" 2>/dev/null) || return 0
    grep -q "^# Managed by Pulumi" <<<"$cur" || return 0
    name=$(sed -n 's/^ETCD_NAME="\(.*\)"$/\1/p' <<<"$cur")
    dir=$(sed -n 's/^ETCD_DATA_DIR="\(.*\)"$/\1/p' <<<"$cur")
    if [ -n "$name" ] && [ "$name" != "${P[NAME]}" ] && [ -d "$ROOT$dir/member" ] && unit_active "$ETCD_SVC"; then
        die "this host runs etcd member $name (data in $dir), not ${P[NAME]}: renaming a member is not supported; set its name in etcdMembers (name: $name) to keep it"
    fi
}

case "$ACTION" in
apply)
    pkg_install "${pkgs[@]}"
    backup_once "$ETCD_CONF"
    refuse_rename
    data="$ROOT${P[DATA_DIR]}"
    before=$(cat "$ROOT$ETCD_CONF" 2>/dev/null || true)
    put_file "$ETCD_CONF" 0644 "${P[ETCD_ENV]}"
    changed=$CHANGED
    # A member added to or removed from the cluster changes ETCD_INITIAL_CLUSTER on every member: no restart for that.
    if [ "$changed" = 1 ] && [ -d "$data/member" ] && [ "$(running_settings "$before")" = "$(running_settings "${P[ETCD_ENV]}")" ]; then
        echo "etcd member ${P[NAME]}: only ETCD_INITIAL_* settings changed (read at a first start only): not restarted"
        changed=0
    fi
    sync_tls_files
    [ "$tls_changed" = 0 ] || changed=1
    owner=""
    if getent passwd etcd >/dev/null; then owner=etcd:; fi
    if [ ! -d "$data" ]; then
        if [ ! -d "$(dirname "$data")" ]; then
            mkdir -p "$(dirname "$data")"
            [ -z "$owner" ] || chown "$owner" "$(dirname "$data")"
        fi
        mkdir -m 0700 "$data"
        echo "changed ${P[DATA_DIR]}"
    fi
    [ -z "$owner" ] || chown "$owner" "$data"
    # etcd 3.4+ refuses a data dir that is not 0700.
    if [ "$(stat -c %a "$data")" != 700 ]; then chmod 0700 "$data"; echo "changed ${P[DATA_DIR]} mode 0700"; fi
    join_cluster
    if ! unit_enabled "$ETCD_SVC"; then systemctl enable -q "$ETCD_SVC"; echo "changed service:$ETCD_SVC enabled"; fi
    timeout=$(seconds_param HEALTH_TIMEOUT 180)
    deadline=$((SECONDS + timeout))
    if [ "$changed" = 1 ]; then
        # Members are applied one at a time (the program orders them), each healthy before the next: a rolling restart.
        if unit_active "$ETCD_SVC"; then hand_over; fi
        systemctl restart --no-block "$ETCD_SVC"; echo "changed service:$ETCD_SVC restarted"
    elif ! unit_active "$ETCD_SVC"; then systemctl start --no-block "$ETCD_SVC"; echo "changed service:$ETCD_SVC started"; fi
    if [ "$join" = learner ]; then promote; fi
    until healthy; do
        if [ $SECONDS -ge $deadline ]; then
            echo "etcd member ${P[NAME]} not healthy at ${P[CLIENT_URL]} after ${timeout}s" >&2
            die_service "$ETCD_SVC"
        fi
        sleep 1
    done
    echo "healthy ${P[NAME]} ${P[CLIENT_URL]}"
    ctl --endpoints="${P[CLIENT_URL]}" member list 2>/dev/null | sed 's/^/member /' || true
    ;;
remove)
    leave_cluster
    service_off "$ETCD_SVC"
    restore_backup "$ETCD_CONF"
    for entry in "${TLS_FILES[@]}"; do remove_file "$PKI_DIR/${entry%% *}"; done
    rmdir "$ROOT$PKI_DIR" 2>/dev/null || true
    if [ -e "$ROOT$DROPIN" ]; then rm -f "$ROOT$DROPIN"; systemctl daemon-reload; echo "removed $DROPIN"; fi
    remove_file "$JOIN_ENV"
    ;;
check)
    check_packages "${pkgs[@]}"
    check_file "$ETCD_CONF" "${P[ETCD_ENV]}" 0644
    for entry in "${TLS_FILES[@]}"; do
        read -r f param m <<<"$entry"
        [ "$m" != key ] || read -r m _ <<<"$(key_mode)"
        secret=""
        [[ $f != *.key ]] || secret=secret
        if tls; then check_file "$PKI_DIR/$f" "${P[$param]}" "$m" $secret; else check_absent "$PKI_DIR/$f"; fi
    done
    check_running "$ETCD_SVC"
    ;;
esac
finish
