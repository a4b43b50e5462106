#!/usr/bin/env bash
# Drift checks (the check action; sourced by step.sh, never run): print `drift <item> <reason>`; lines after it that start with `| ` are its detail (a
# unified diff), which the drift check shows as part of the reason.
# check_file PATH CONTENT [MODE] [secret]: missing, another content (the diff of the host's file against the wanted
# content follows; never for a secret file) or another mode.
check_file() {
    local path=$1 content=$2 mode=${3:-} secret=${4:-}
    if [ ! -f "$ROOT$path" ]; then echo "drift $path missing"
    elif ! file_is "$ROOT$path" "$content"; then
        if [ -n "$secret" ]; then
            echo "drift $path content differs (a secret: not shown)"
        else
            echo "drift $path content differs:"
            file_diff "$path" "$content"
        fi
    elif [ -n "$mode" ] && [ "$(stat -c %a "$ROOT$path")" != "${mode#0}" ]; then echo "drift $path mode $(stat -c %a "$ROOT$path") (want ${mode#0})"
    fi
}
# file_diff PATH CONTENT: `| `-prefixed unified diff of the host's PATH (-) against CONTENT (+), at most 200 lines.
file_diff() {
    local LC_ALL=C
    if ! command -v diff >/dev/null 2>&1; then echo "| (no diff command on the host)"; return; fi
    { diff -u --label "$1 (on the host)" --label "$1 (wanted)" -- "$ROOT$1" <(printf '%s' "$2") || true; } |
        awk 'NR <= 200 { print "| " $0 } END { if (NR > 200) print "| ... " NR - 200 " more lines" }'
}
# check_packages PKG...: each one installed.
check_packages() {
    local p
    for p in "$@"; do pkg_installed "$p" || echo "drift package:$p missing"; done
}
check_absent() { [ ! -e "$ROOT$1" ] || echo "drift $1 present"; }
check_running() {
    local u=$1 en act
    en=$(systemctl is-enabled "$1" 2>/dev/null || true)
    act=$(systemctl is-active "$1" 2>/dev/null || true)
    if { [ "$en" != enabled ] && [ "$en" != static ]; } || { [ "$act" != active ] && ! condition_skipped "$u"; }; then
        echo "drift service:$u ${en:-not-found},${act:-unknown} (want enabled,active)"
    fi
}
check_off() {
    local u=$1 en act
    unit_exists "$u" || return 0
    en=$(systemctl is-enabled "$u" 2>/dev/null || true)
    act=$(systemctl is-active "$u" 2>/dev/null || true)
    if [ "$en" = enabled ] || [ "$act" = active ]; then echo "drift service:$u $en,$act (want disabled,inactive)"; fi
}
