#!/usr/bin/env bash
# FirewallOff: the listed firewall units stopped and disabled at boot; a missing one is fine.
# remove re-enables the units that were enabled before the first apply.
# Params: UNITS (space-separated unit names).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_script "$0" "${1:-}"
need UNITS
BEFORE="$STATE_DIR/firewall.before"
read -r -a units <<<"${P[UNITS]}"

case "$ACTION" in
apply)
    if [ ! -f "$BEFORE" ]; then
        mkdir -p "$STATE_DIR"
        for u in "${units[@]}"; do
            unit_exists "$u" && echo "$u $(systemctl is-enabled "$u" 2>/dev/null || true)"
        done >"$BEFORE.tmp"
        mv "$BEFORE.tmp" "$BEFORE"
    fi
    for u in "${units[@]}"; do service_off "$u"; done
    if command -v ufw >/dev/null 2>&1 && ufw status 2>/dev/null | grep -q "Status: active"; then
        ufw disable >/dev/null
        echo "changed ufw disabled"
    fi
    ;;
remove)
    if [ -f "$BEFORE" ]; then
        while read -r u state; do
            if [ "$state" = enabled ]; then systemctl enable --now -q "$u" && echo "changed service:$u re-enabled"; fi
        done <"$BEFORE"
        rm -f "$BEFORE"
    fi
    ;;
check)
    for u in "${units[@]}"; do check_off "$u"; done
    ;;
esac
finish
