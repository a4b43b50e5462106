#!/usr/bin/env bash
# TimeSync: chrony or ntp installed, configured, enabled at boot; restarted only when its config changed.
# Params: IMPL (chrony|ntp), CONFIG (the daemon's whole config file).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/step.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/step.sh"
start_script timesync "$0" "${1:-}"
need IMPL CONFIG

case "${P[IMPL]}" in
chrony) PKG=$CHRONY_PKG SVC=$CHRONY_SVC CONF=$CHRONY_CONF OTHER=$NTP_SVC ;;
ntp)
    [ -n "$NTP_PKG" ] || die "ntp is not available on ${FAMILY^^}; use chrony (timeImplementation: chrony)"
    PKG=$NTP_PKG SVC=$NTP_SVC CONF=$NTP_CONF OTHER=$CHRONY_SVC
    ;;
*) die "IMPL must be chrony or ntp, got ${P[IMPL]}" ;;
esac

case "$ACTION" in
apply)
    pkg_install "$PKG"
    backup_once "$CONF"
    put_file "$CONF" 0644 "${P[CONFIG]}"
    changed=$CHANGED
    # The two daemons would fight over the clock: the other goes, also when installing this one removed its package
    # while it ran (ntpsec conflicts with chrony on Debian 13).
    if [ -n "$OTHER" ]; then service_off "$OTHER"; fi
    service_ensure "$SVC" "$changed"
    ;;
remove)
    restore_backup "$CONF"
    service_off "$SVC"
    ;;
check)
    check_packages "$PKG"
    check_file "$CONF" "${P[CONFIG]}" 0644
    check_running "$SVC"
    ;;
esac
finish
