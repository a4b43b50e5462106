#!/usr/bin/env bash
# HostBase's packages: every package the host's components need, installed in one transaction before any of them
# runs (one package-lists refresh, one dpkg run, instead of one per component, and no two installs on one host at
# once). The host's HostScripts runs it after putting the scripts. Each component still installs what it needs
# (a no-op once this has run), so a component works without it too. Packages are never removed.
# Params: PACKAGES (space-separated names of the family table: chrony, ntp, registry, etcd).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/step.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/step.sh"
start_script packages "$0" "${1:-}"
need PACKAGES

pkgs=()
for name in ${P[PACKAGES]}; do
    case "$name" in
    chrony) pkgs+=("$CHRONY_PKG") ;;
    # None on EL8/9: the TimeSync step says so.
    ntp) [ -z "$NTP_PKG" ] || pkgs+=("$NTP_PKG") ;;
    registry) pkgs+=("$REG_PKG" nginx) ;;
    etcd) read -r -a more <<<"$ETCD_PKGS" && pkgs+=("${more[@]}") ;;
    *) die "unknown package set $name (known: chrony, ntp, registry, etcd)" ;;
    esac
done

# A host stopped in the middle of an install (a reboot, power lost, a killed run) leaves dpkg's journal behind, and
# apt refuses every install until `dpkg --configure -a` has finished that run. No service starts meanwhile (as in
# pkg_install): they start when their steps have configured them.
finish_interrupted_dpkg() {
    [ "$PM" = apt ] && [ -n "$(ls -A "$ROOT/var/lib/dpkg/updates" 2>/dev/null)" ] || return 0
    echo "finishing an interrupted dpkg run (dpkg --configure -a)"
    local policy="$ROOT/usr/sbin/policy-rc.d" own=0 rc=0
    if [ ! -e "$policy" ]; then
        mkdir -p "$(dirname "$policy")"
        printf '#!/bin/sh\n# host-topology: no service starts during package installation\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        own=1
    fi
    DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --configure -a >/dev/null 2>&1 || rc=$?
    [ $own = 0 ] || rm -f "$policy"
    [ $rc = 0 ] || die "dpkg --configure -a failed (exit $rc): finish the interrupted package run on the host"
    echo "changed packages: an interrupted dpkg run finished"
}

# apt: the lists refresh fetches no Translation files (Acquire::Languages "none"): they hold the packages' long
# descriptions in other words, nothing an install needs, and on Debian they are a large part of what apt-get update
# downloads and parses (bookworm main: 32 MB of Translation-en beside 50 MB of Packages; 0.4 s less of a host's
# CPU for each refresh). For this script's apt runs only, through APT_CONFIG, which apt reads before its own
# configuration: a host whose configuration sets Acquire::Languages keeps its setting. apt drops translations it
# has from earlier refreshes: `apt show` gives the short description until the next full `apt update`.
no_translations() {
    [ "$PM" = apt ] && [ -z "${APT_CONFIG:-}" ] || return 0
    APT_CONFIG=$(mktemp "${TMPDIR:-/tmp}/host-topology-apt.XXXXXX")
    # shellcheck disable=SC2064 # the file's name now
    trap "rm -f '$APT_CONFIG'" EXIT
    echo 'Acquire::Languages "none";' >"$APT_CONFIG"
    export APT_CONFIG
}

# apt: lists older than PKG_LISTS_MAX_AGE are refreshed before pkg_install runs. Its question of which configured
# sources have no list yet (apt-get indextargets) makes apt build its cache from the lists first, about 0.4 s of a
# host's CPU, and the refresh that follows builds it again; asked after the refresh, it finds the cache current.
# Nothing is fetched when every package is installed; no lists at all, or PKG_LISTS_MAX_AGE=0: pkg_install
# refreshes without asking. Here rather than in lib/packages.sh's pkg_lists_time: the library's digest is in every
# step's stdin, so changing it runs every step of every deployed stack again at its next up.
refresh_stale_lists() {
    local p want=0 max t
    [ "$PM" = apt ] || return 0
    for p in "$@"; do pkg_installed "$p" || want=1; done
    max=$(seconds_param PKG_LISTS_MAX_AGE 3600)
    [ $want = 1 ] && [ "$max" != 0 ] || return 0
    # The lists' age alone: pkg_lists_time without the sources question (redefined in this subshell only).
    t=$(apt_lists_missing() { echo 0; }; pkg_lists_time)
    t=${t%%$'\n'*}
    if [ "$t" != 0 ] && [ $(($(date +%s) - t)) -gt "$max" ]; then
        pkg_lists_refresh "older than ${max}s" || die "$PKG_ERR"
    fi
}

case "$ACTION" in
apply)
    no_translations
    finish_interrupted_dpkg
    # Not in an && list: set -e holds inside the functions (a bad PKG_LISTS_MAX_AGE ends the script at once).
    if [ ${#pkgs[@]} -gt 0 ]; then
        refresh_stale_lists "${pkgs[@]}"
        pkg_install "${pkgs[@]}"
    fi
    ;;
remove) ;;
check) [ ${#pkgs[@]} -eq 0 ] || check_packages "${pkgs[@]}" ;;
esac
finish
