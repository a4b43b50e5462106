#!/usr/bin/env bash
# HostBase: hostname and the managed /etc/hosts block (every host, FQDN, aliases).
# Params: HOSTNAME, FQDN, HOSTS_BLOCK; PURGE_SCRIPTS=1 removes the scripts dir on remove.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_script "$0" "${1:-}"
need HOSTNAME FQDN HOSTS_BLOCK

BEGIN="# BEGIN host-topology managed block (pulumi)"
END="# END host-topology managed block"
DISABLED="#host-topology-disabled# "
HOSTS=/etc/hosts
NAMES=$(printf '%s\n' "${P[HOSTS_BLOCK]}" | awk '{for (i = 2; i <= NF; i++) print $i}' | tr '\n' ' ')

current() { cat "$ROOT$HOSTS" 2>/dev/null || true; }

# Every line outside the block is kept; loopback (127.0.0.1, ::1) lines untouched; other lines that map one of
# the block's names are commented out so the block's addresses win.
desired_hosts() {
    current | awk -v names="$NAMES" -v begin="$BEGIN" -v end="$END" -v dis="$DISABLED" '
        BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
        $0 == begin { skip = 1; next }
        $0 == end { skip = 0; next }
        skip { next }
        /^[[:space:]]*#/ || NF < 2 { print; next }
        $1 == "127.0.0.1" || $1 == "::1" { print; next }
        { hit = 0; for (i = 2; i <= NF; i++) if ($i in want) hit = 1; print (hit ? dis : "") $0 }'
    printf '%s\n%s%s\n' "$BEGIN" "${P[HOSTS_BLOCK]}" "$END"
}

without_block() {
    current | awk -v begin="$BEGIN" -v end="$END" -v dis="$DISABLED" '
        $0 == begin { skip = 1; next }
        $0 == end { skip = 0; next }
        skip { next }
        index($0, dis) == 1 { print substr($0, length(dis) + 1); next }
        { print }'
}

case "$ACTION" in
apply)
    if [ "$(hostname)" != "${P[HOSTNAME]}" ]; then
        if ! hostnamectl set-hostname "${P[HOSTNAME]}" 2>/dev/null; then
            printf '%s\n' "${P[HOSTNAME]}" >"$ROOT/etc/hostname"
            hostname "${P[HOSTNAME]}"
        fi
        echo "changed hostname ${P[HOSTNAME]}"
    else
        echo "unchanged hostname"
    fi
    content=$(desired_hosts; printf x)
    put_file "$HOSTS" 0644 "${content%x}"
    ;;
remove)
    content=$(without_block; printf x)
    put_file "$HOSTS" 0644 "${content%x}"
    if [ "${P[PURGE_SCRIPTS]:-0}" = 1 ] && [ -z "$ROOT" ]; then
        dir=$(cd "$(dirname "$SCRIPT")" && pwd)
        case "$dir" in */host-topology) rm -rf "$dir" && echo "removed $dir" ;; esac
    fi
    ;;
check)
    [ "$(hostname)" = "${P[HOSTNAME]}" ] || echo "drift hostname $(hostname) (want ${P[HOSTNAME]})"
    want=$(desired_hosts; printf x)
    cmp -s "$ROOT$HOSTS" <(printf '%s' "${want%x}") || echo "drift $HOSTS managed block or conflicting lines differ"
    ;;
esac
finish
