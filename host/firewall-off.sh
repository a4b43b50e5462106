#!/usr/bin/env bash
# FirewallOff: the listed firewall units stopped and disabled at boot; a missing one is fine. An active ufw
# (Ubuntu) is disabled too. remove turns back on what was on before the first apply.
# Params: UNITS (space-separated unit names).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/step.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/step.sh"
start_script firewall "$0" "${1:-}"
need UNITS
BEFORE="$STATE_DIR/firewall.before"
read -r -a units <<<"${P[UNITS]}" || true
# ${units[@]+...}: an empty list under set -u on bash 4.2 (EL7)
for u in ${units[@]+"${units[@]}"}; do [[ $u =~ ^[A-Za-z0-9@._-]+$ ]] || die "bad unit name in UNITS: $u"; done

ufw_active() { command -v ufw >/dev/null 2>&1 && ufw status 2>/dev/null | grep -q "Status: active"; }

case "$ACTION" in
apply)
    # The state before the first apply: `<unit> <is-enabled>` per existing unit, `ufw-command active`.
    if [ ! -f "$BEFORE" ]; then
        mkdir -p "$STATE_DIR"
        {
            for u in ${units[@]+"${units[@]}"}; do
                if unit_exists "$u"; then echo "$u $(systemctl is-enabled "$u" 2>/dev/null || true)"; fi
            done
            if ufw_active; then echo "ufw-command active"; fi
        } >"$BEFORE.tmp"
        mv "$BEFORE.tmp" "$BEFORE"
    fi
    for u in ${units[@]+"${units[@]}"}; do service_off "$u"; done
    if ufw_active; then
        ufw disable >/dev/null
        echo "changed ufw disabled"
    fi
    ;;
remove)
    if [ -f "$BEFORE" ]; then
        while read -r u state; do
            if [ "$u" = ufw-command ]; then
                if [ "$state" = active ] && command -v ufw >/dev/null 2>&1; then
                    ufw --force enable >/dev/null && echo "changed ufw enabled"
                fi
            elif [ "$state" = enabled ] && unit_exists "$u"; then
                systemctl enable --now -q "$u" && echo "changed service:$u re-enabled"
            fi
        done <"$BEFORE"
        rm -f "$BEFORE"
    fi
    ;;
check)
    for u in ${units[@]+"${units[@]}"}; do check_off "$u"; done
    if ufw_active; then echo "drift ufw active"; fi
    ;;
esac
finish
