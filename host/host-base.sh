#!/usr/bin/env bash
# HostBase: hostname and the managed /etc/hosts block (every host, FQDN, aliases).
# Params: HOSTNAME, FQDN, HOSTS_BLOCK; PURGE_SCRIPTS=1 removes the uploaded scripts on remove; TRUSTED_CA (PEM,
# registryTls): a CA the host trusts system-wide (the family's anchor file, then its trust store is rebuilt).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/step.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/step.sh"
start_script hostbase "$0" "${1:-}"
need HOSTNAME FQDN HOSTS_BLOCK
[[ ${P[HOSTNAME]} =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$ ]] || die "HOSTNAME must be a short host name, got '${P[HOSTNAME]}'"

BEGIN="# BEGIN host-topology managed block (pulumi)"
END="# END host-topology managed block"
DISABLED="#host-topology-disabled# "
HOSTS=/etc/hosts
BLOCK=${P[HOSTS_BLOCK]}
[ -z "$BLOCK" ] || [ "${BLOCK: -1}" = $'\n' ] || BLOCK+=$'\n'
export BEGIN END DISABLED BLOCK

current() { cat "$ROOT$HOSTS" 2>/dev/null || true; }
current_hostname() { hostname 2>/dev/null || cat /proc/sys/kernel/hostname; }

# The block replaces the old one where it stands (appended when there is none). Every line outside it is kept;
# loopback lines (127.0.0.1, ::1) untouched; any other line that maps one of the block's names is commented
# out so the block's addresses win. Lines disabled by an earlier apply are judged again (a name that left the
# block gets its line back). Names compare case-insensitively, as the resolver does.
desired_hosts() {
    current | awk '
        BEGIN {
            begin = ENVIRON["BEGIN"]; end = ENVIRON["END"]; dis = ENVIRON["DISABLED"]; block = ENVIRON["BLOCK"]
            n = split(block, lines, "\n")
            for (l = 1; l <= n; l++) {
                sub(/#.*/, "", lines[l]); m = split(lines[l], f, /[ \t]+/)
                for (i = 1; i <= m; i++) if (f[i] != "" && i > (f[1] == "" ? 2 : 1)) want[tolower(f[i])] = 1
            }
        }
        function emit_block() { printf "%s\n%s%s\n", begin, block, end; done = 1 }
        $0 == begin { skip = 1; if (!done) emit_block(); next }
        skip { if ($0 == end) skip = 0; next }
        index($0, dis) == 1 { $0 = substr($0, length(dis) + 1) }
        /^[[:space:]]*#/ || NF < 2 || $1 == "127.0.0.1" || $1 == "::1" { print; next }
        {
            hit = 0
            for (i = 2; i <= NF && substr($i, 1, 1) != "#"; i++) if (tolower($i) in want) hit = 1
            print (hit ? dis : "") $0
        }
        END { if (!done) emit_block() }'
}

without_block() {
    current | awk '
        BEGIN { begin = ENVIRON["BEGIN"]; end = ENVIRON["END"]; dis = ENVIRON["DISABLED"] }
        $0 == begin { skip = 1; next }
        skip { if ($0 == end) skip = 0; next }
        index($0, dis) == 1 { print substr($0, length(dis) + 1); next }
        { print }'
}

# A BEGIN without its END (a hand edit) would swallow the lines after it: stop and say so.
markers_ok() {
    local b e
    b=$(current | grep -cxF -- "$BEGIN" || true)
    e=$(current | grep -cxF -- "$END" || true)
    [ "$b" = "$e" ]
}

# The uploaded scripts: only the program's own files are deleted, then the directory if nothing else is in it.
purge_scripts() {
    local dir f
    dir=$(cd "$(dirname "$SCRIPT")" && pwd)
    # The scripts and their library, then the names they had before the layout of host/ (a host whose base is removed
    # before its scripts were put again under the new names).
    for f in host-base.sh time-sync.sh firewall-off.sh private-registry.sh etcd-member.sh "${LIB_FILES[@]/#/lib/}" \
        lib.sh hostbase.sh timesync.sh firewall.sh registry.sh etcd.sh; do
        if [ -f "$dir/$f" ]; then rm -f "$dir/$f" "$dir/$f.tmp"; fi
    done
    rmdir "$dir/lib" 2>/dev/null || true
    if rmdir "$dir" 2>/dev/null; then echo "removed $dir"; else echo "removed scripts from $dir"; fi
}

# The system trust anchor: added (TRUSTED_CA given) or removed; the trust store is rebuilt only on a change.
sync_trust() {
    local ca=${P[TRUSTED_CA]:-}
    if [ -n "$ca" ] && [ "$ACTION" = apply ]; then
        command -v "${CA_UPDATE%% *}" >/dev/null 2>&1 || pkg_install ca-certificates
        put_file "$CA_ANCHOR" 0644 "$ca"
    else
        remove_file "$CA_ANCHOR"
    fi
    if [ "$CHANGED" = 1 ]; then $CA_UPDATE >/dev/null 2>&1 || die "$CA_UPDATE failed"; echo "changed trust store"; fi
}

if [ "$ACTION" != check ] && ! markers_ok; then
    die "$HOSTS has unmatched host-topology block markers (BEGIN/END); fix the file by hand"
fi

case "$ACTION" in
apply)
    if [ "$(current_hostname)" != "${P[HOSTNAME]}" ]; then
        if ! hostnamectl set-hostname "${P[HOSTNAME]}" 2>/dev/null; then
            # No systemd-hostnamed (or no D-Bus): the file for the next boot and the kernel's name now.
            mkdir -p "$ROOT/etc"
            printf '%s\n' "${P[HOSTNAME]}" >"$ROOT/etc/hostname"
            hostname "${P[HOSTNAME]}"
        fi
        echo "changed hostname ${P[HOSTNAME]}"
    else
        echo "unchanged hostname ${P[HOSTNAME]}"
    fi
    content=$(desired_hosts; printf x)
    put_file "$HOSTS" 0644 "${content%x}"
    sync_trust
    ;;
remove)
    content=$(without_block; printf x)
    put_file "$HOSTS" 0644 "${content%x}"
    sync_trust
    if [ "$(param_or PURGE_SCRIPTS 0)" = 1 ]; then purge_scripts; fi
    ;;
check)
    now=$(current_hostname)
    [ "$now" = "${P[HOSTNAME]}" ] || echo "drift hostname $now (want ${P[HOSTNAME]})"
    markers_ok || echo "drift $HOSTS unmatched block markers"
    want=$(desired_hosts; printf x)
    file_is "$ROOT$HOSTS" "${want%x}" || echo "drift $HOSTS managed block or conflicting lines differ"
    if [ -n "${P[TRUSTED_CA]:-}" ]; then check_file "$CA_ANCHOR" "${P[TRUSTED_CA]}" 0644; else check_absent "$CA_ANCHOR"; fi
    ;;
esac
finish
