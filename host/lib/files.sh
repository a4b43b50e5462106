#!/usr/bin/env bash
# Files: compared, written atomically, removed, backed up once and restored. Sourced by step.sh, never run.
# file_is FILE CONTENT: the (text) file holds exactly CONTENT (no cmp: diffutils may be absent on EL).
file_is() {
    local cur
    cur=$(cat -- "$1" 2>/dev/null && printf x) || return 1
    [ "${cur%x}" = "$2" ]
}

# put_file PATH MODE CONTENT [OWNER:GROUP]: atomic write, only when content or mode differ. Sets CHANGED.
# The temp file is private from the start (the content may be a secret such as an htpasswd file).
put_file() {
    local path=$1 mode=$2 content=$3 owner=${4:-} t="$ROOT$1"
    if [ -f "$t" ] && file_is "$t" "$content" && [ "$(stat -c %a "$t")" = "${mode#0}" ]; then
        [ -z "$owner" ] || chown "$owner" "$t"
        CHANGED=0
        echo "unchanged $path"
        return
    fi
    mkdir -p "$(dirname "$t")"
    (umask 077 && printf '%s' "$content" >"$t.host-topology.tmp")
    [ -z "$owner" ] || chown "$owner" "$t.host-topology.tmp"
    chmod "$mode" "$t.host-topology.tmp"
    # A bind-mounted target (a container's /etc/hosts) cannot be replaced by rename: write it in place.
    if ! mv -f "$t.host-topology.tmp" "$t" 2>/dev/null; then
        cat "$t.host-topology.tmp" >"$t" && chmod "$mode" "$t" && rm -f "$t.host-topology.tmp"
    fi
    CHANGED=1
    echo "changed $path"
}

# remove_file PATH: deletes a file the program owns. Sets CHANGED.
remove_file() {
    CHANGED=0
    if [ -e "$ROOT$1" ]; then rm -f "$ROOT$1"; CHANGED=1; echo "removed $1"; fi
}

# backup_once PATH: keeps the original (or that there was none) before the first overwrite.
backup_once() {
    local b="$STATE_DIR/backup$1"
    [ -e "$b" ] || [ -e "$b.absent" ] || {
        mkdir -p "$(dirname "$b")"
        if [ -e "$ROOT$1" ]; then cp -a "$ROOT$1" "$b"; else : >"$b.absent"; fi
    }
}

# restore_backup PATH: puts the original back (or removes the file if there was none).
restore_backup() {
    local b="$STATE_DIR/backup$1"
    if [ -e "$b" ]; then
        cp -a "$b" "$ROOT$1" && rm -f "$b" && echo "restored $1"
    elif [ -e "$b.absent" ]; then
        rm -f "$ROOT$1" "$b.absent" && echo "removed $1"
    fi
}
