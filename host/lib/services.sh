#!/usr/bin/env bash
# Services: enabled and started, or stopped and disabled, with a clear error when one fails. Sourced by step.sh, never run.
unit_exists() { systemctl cat "$1" >/dev/null 2>&1; }
unit_enabled() { [ "$(systemctl is-enabled "$1" 2>/dev/null || true)" = enabled ]; }
# A static unit (no [Install] section) cannot be enabled: it counts as enabled for service_ensure.
unit_enabled_or_static() { case "$(systemctl is-enabled "$1" 2>/dev/null || true)" in enabled | static) return 0 ;; *) return 1 ;; esac; }
unit_active() { systemctl is-active -q "$1" 2>/dev/null; }
condition_skipped() { [ "$(systemctl show -p ConditionResult --value "$1" 2>/dev/null || true)" = no ]; }

die_service() {
    {
        printf 'host-topology: %s: unit %s failed to start\n' "$(hostname 2>/dev/null || echo '?')" "$1"
        systemctl status --no-pager -n 0 "$1" 2>&1 | head -5 || true
        echo "--- journalctl -u $1 (last 30 lines) ---"
        journalctl -u "$1" -n 30 --no-pager 2>&1 || true
    } >&2
    exit 1
}

# service_ensure UNIT CHANGED [reload]: enabled at boot; restarted (or reloaded) only when its config changed,
# started when inactive; then must be active within SERVICE_TIMEOUT seconds. A unit skipped by a systemd
# Condition (chrony without CAP_SYS_TIME in a container) is a warning, not a failure.
service_ensure() {
    local u=$1 changed=$2 how=${3:-restart} tries i
    if ! unit_enabled_or_static "$u"; then systemctl enable -q "$u" 2>/dev/null || systemctl enable "$u"; echo "changed service:$u enabled"; fi
    local failed=0 did=""
    if ! unit_active "$u"; then
        systemctl start "$u" || failed=1
        did=started
    elif [ "$changed" = 1 ]; then
        systemctl "$how" "$u" || failed=1
        did="${how}ed"
    fi
    tries=$(seconds_param SERVICE_TIMEOUT "${SERVICE_WAIT:-15}")
    for ((i = 0; i <= tries; i++)); do
        [ $i = 0 ] || sleep 1
        if [ $failed = 0 ] && unit_active "$u"; then
            [ -z "$did" ] || echo "changed service:$u $did"
            return 0
        fi
        # Not a change: the unit does not run here, so a start (again) changes nothing on the host.
        if condition_skipped "$u"; then
            warn "$u is enabled but skipped by a systemd Condition on this host (e.g. no CAP_SYS_TIME in a container)"
            return 0
        fi
        [ $failed = 0 ] || break # systemctl already said it failed: no point waiting
    done
    die_service "$u"
}

# service_off UNIT: stopped and disabled at boot; a missing unit is fine.
service_off() {
    local u=$1
    if ! unit_exists "$u"; then
        # A package removed while its daemon ran (apt removing a conflicting package under policy-rc.d, which refuses
        # the stop): the unit file is gone, the daemon is not.
        if unit_active "$u"; then
            systemctl stop "$u"
            echo "changed service:$u stopped (its unit is gone)"
        else
            echo "absent service:$u"
        fi
        return
    fi
    if unit_enabled "$u" || unit_active "$u"; then
        systemctl disable --now -q "$u" 2>/dev/null || systemctl disable --now "$u"
        echo "changed service:$u disabled,stopped"
    else
        echo "unchanged service:$u disabled,stopped"
    fi
}
