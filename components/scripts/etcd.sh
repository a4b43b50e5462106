#!/usr/bin/env bash
# EtcdMember: etcd installed, configured (the environment file), enabled, and healthy. The data dir is kept.
# Params: ETCD_ENV, NAME, DATA_DIR, CLIENT_URL, PEER_URL, PEER_CLIENT_URLS (the other members, comma-separated),
# HEALTH_TIMEOUT (seconds); with etcdTls also PKI_DIR, TLS_CA, TLS_CERT, TLS_KEY, TLS_CLIENT_CERT, TLS_CLIENT_KEY
# (PEM), written to PKI_DIR as ca.crt, member.crt, member.key, client.crt, client.key; etcdctl then uses the
# client certificate. Without them, TLS files an earlier apply wrote are removed.
# A member whose data dir is gone (a reinstalled host) while the rest of the cluster runs is replaced:
# removed from the cluster, added again, and started with ETCD_INITIAL_CLUSTER_STATE=existing.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_script "$0" "${1:-}"
need ETCD_ENV NAME DATA_DIR CLIENT_URL
[[ ${P[DATA_DIR]} == /?* ]] || die "DATA_DIR must be an absolute path"
read -r -a pkgs <<<"$ETCD_PKGS"

DROPIN=/etc/systemd/system/$ETCD_SVC.service.d/host-topology-join.conf
PKI_DIR=${P[PKI_DIR]:-/etc/etcd/pki}
# file name, parameter, mode; "key" = the member key, readable by the etcd group when there is one (the
# package creates it, so this is decided after the install)
TLS_FILES=("ca.crt TLS_CA 0644" "member.crt TLS_CERT 0644" "member.key TLS_KEY key" "client.crt TLS_CLIENT_CERT 0644" "client.key TLS_CLIENT_KEY 0600")
key_mode() { if getent group etcd >/dev/null; then echo "0640 root:etcd"; else echo 0600; fi; }
ETCDCTL_TLS=()
if [ -n "${P[TLS_CA]:-}" ]; then
    need TLS_CERT TLS_KEY TLS_CLIENT_CERT TLS_CLIENT_KEY
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

# Joins an existing cluster when this member has no data but the others have a quorum.
join_if_replaced() {
    [ -n "${P[PEER_CLIENT_URLS]:-}" ] && [ ! -d "$data/member" ] || return 0
    need PEER_URL
    local list line
    list=$(peers member list 2>/dev/null) || return 0 # no quorum without us: a new cluster bootstrapping
    # id, status, name, peer URLs, client URLs, learner
    line=$(printf '%s\n' "$list" | awk -F', ' -v url="${P[PEER_URL]}" '$4 == url')
    # A founding member of a static cluster that has not run yet (its peers bootstrapped first): listed by
    # its name from ETCD_INITIAL_CLUSTER, or as unstarted, but without client URLs, which only a member that
    # ran publishes. It joins as a new member; nothing to replace.
    if [ -n "$line" ] && { [ "$(cut -d, -f2 <<<"$line" | tr -d ' ')" = unstarted ] || [ -z "$(cut -d, -f5 <<<"$line" | tr -d ' ')" ]; }; then
        return 0
    fi
    if [ -n "$line" ]; then
        peers member remove "$(cut -d, -f1 <<<"$line")" >/dev/null
        echo "changed etcd member ${P[NAME]} removed (its data is gone)"
    fi
    peers member add "${P[NAME]}" --peer-urls="${P[PEER_URL]}" >/dev/null
    echo "changed etcd member ${P[NAME]} added to the running cluster"
    put_file "$DROPIN" 0644 $'[Service]\nEnvironment=ETCD_INITIAL_CLUSTER_STATE=existing\n'
    systemctl daemon-reload
    changed=1
}

healthy() { ctl --endpoints="${P[CLIENT_URL]}" --command-timeout=3s endpoint health >/dev/null 2>&1; }

case "$ACTION" in
apply)
    pkg_install "${pkgs[@]}"
    backup_once "$ETCD_CONF"
    put_file "$ETCD_CONF" 0644 "${P[ETCD_ENV]}"
    changed=$CHANGED
    sync_tls_files
    [ "$tls_changed" = 0 ] || changed=1
    data="$ROOT${P[DATA_DIR]}"
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
    join_if_replaced
    if ! unit_enabled "$ETCD_SVC"; then systemctl enable -q "$ETCD_SVC"; echo "changed service:$ETCD_SVC enabled"; fi
    # --no-block: a member of a new static cluster only comes up once a quorum of its peers runs, and the
    # members are applied in parallel.
    if [ "$changed" = 1 ]; then systemctl restart --no-block "$ETCD_SVC"; echo "changed service:$ETCD_SVC restarted"
    elif ! unit_active "$ETCD_SVC"; then systemctl start --no-block "$ETCD_SVC"; echo "changed service:$ETCD_SVC started"; fi
    timeout=$(seconds_param HEALTH_TIMEOUT 180)
    deadline=$((SECONDS + timeout))
    until healthy; do
        if [ $SECONDS -ge $deadline ]; then
            echo "etcd member ${P[NAME]} not healthy at ${P[CLIENT_URL]} after ${timeout}s" >&2
            die_service "$ETCD_SVC"
        fi
        sleep 2
    done
    echo "healthy ${P[NAME]} ${P[CLIENT_URL]}"
    ctl --endpoints="${P[CLIENT_URL]}" member list 2>/dev/null | sed 's/^/member /' || true
    ;;
remove)
    service_off "$ETCD_SVC"
    restore_backup "$ETCD_CONF"
    for entry in "${TLS_FILES[@]}"; do remove_file "$PKI_DIR/${entry%% *}"; done
    rmdir "$ROOT$PKI_DIR" 2>/dev/null || true
    if [ -e "$ROOT$DROPIN" ]; then rm -f "$ROOT$DROPIN"; systemctl daemon-reload; echo "removed $DROPIN"; fi
    ;;
check)
    check_file "$ETCD_CONF" "${P[ETCD_ENV]}" 0644
    for entry in "${TLS_FILES[@]}"; do
        read -r f param m <<<"$entry"
        [ "$m" != key ] || read -r m _ <<<"$(key_mode)"
        if tls; then check_file "$PKI_DIR/$f" "${P[$param]}" "$m"; else check_absent "$PKI_DIR/$f"; fi
    done
    check_running "$ETCD_SVC"
    ;;
esac
finish
