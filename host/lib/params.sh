#!/usr/bin/env bash
# The parameters of a step (its stdin) and its secret parameters: the framing, and readers of values. Sourced by step.sh, never run.
PARAMS_HEADER='# host-topology parameters, format 2'
SECRET_PARAMS_HEADER='# host-topology secret parameters, format 2'
SECRETS_RAW=""

# read_records: reads parameter records from stdin into P, as contract/params.ts's encodeParams writes them: a header
# line, then `KEY=value` (a value without a newline) or `KEY<<DELIM [-n]`, the value's lines and the line DELIM
# (-n: the value's last newline is not part of it). A secret header may follow the plain records (a drift check
# sends the step's secret parameters after them): its records are kept verbatim in SECRETS_RAW too.
read_records() {
    local LC_ALL=C line k delim nonl v found section=plain
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
        "$PARAMS_HEADER") section=plain; continue ;;
        "$SECRET_PARAMS_HEADER") section=secret; SECRETS_RAW+="$line"$'\n'; continue ;;
        esac
        [ -n "$line" ] || continue
        [ "$section" = plain ] || SECRETS_RAW+="$line"$'\n'
        if [[ $line =~ ^([A-Z][A-Z0-9_]*)=(.*)$ ]]; then
            P[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
        elif [[ $line =~ ^([A-Z][A-Z0-9_]*)\<\<([A-Za-z0-9_]+)( -n)?$ ]]; then
            k=${BASH_REMATCH[1]} delim=${BASH_REMATCH[2]} nonl=${BASH_REMATCH[3]} v="" found=0
            while IFS= read -r line || [ -n "$line" ]; do
                [ "$section" = plain ] || SECRETS_RAW+="$line"$'\n'
                if [ "$line" = "$delim" ]; then found=1; break; fi
                v+="$line"$'\n'
            done
            [ "$found" = 1 ] || die "parameter $k: its closing line $delim is missing"
            [ -z "$nonl" ] || v=${v%$'\n'}
            P[$k]=$v
        else
            die "bad parameter line (expected KEY=value or KEY<<DELIM): ${line:0:40}"
        fi
    done
}

# read_base64_records: the framing of the versions before format 2, `KEY=<base64>` lines: a step applied by one of
# them is still removed with the parameters it was applied with.
read_base64_records() {
    local line=$1 k v
    while [ -n "$line" ] || IFS= read -r line || [ -n "$line" ]; do
        k=${line%%=*}
        v=${line#*=}
        line=""
        [ -z "$k" ] && continue
        [[ $k =~ ^[A-Z][A-Z0-9_]*$ ]] || die "bad parameter line (expected KEY=<base64>)"
        # The trailing x keeps trailing newlines that command substitution would strip.
        v=$(printf '%s' "$v" | base64 -d && printf x) || die "parameter $k is not valid base64"
        P[$k]=${v%x}
    done
}

# load_params: the step's parameters from stdin; with SECRETS_FILE, its secret parameters from that file (root only,
# written by the step's secrets command), unless they came on stdin (a drift check or repair). Either way they must
# be the ones whose digest the plain parameters carry.
load_params() {
    local first=""
    while [ -z "$first" ] && { IFS= read -r first || [ -n "$first" ]; }; do :; done
    case "$first" in
    "$PARAMS_HEADER") read_records ;;
    "") ;;
    *) read_base64_records "$first" ;;
    esac
    SECRETS_INLINE=0
    [ -n "${P[SECRETS_FILE]:-}" ] || return 0
    if [ -n "$SECRETS_RAW" ]; then
        SECRETS_INLINE=1
    elif [ -r "$ROOT${P[SECRETS_FILE]}" ]; then
        read_records <"$ROOT${P[SECRETS_FILE]}"
    else
        secrets_unusable "its secret parameters are missing on the host (${P[SECRETS_FILE]})"
        return 0
    fi
    [ "${P[SECRETS_OF]:-}" = "${P[SECRETS_DIGEST]:-}" ] ||
        secrets_unusable "its secret parameters on the host (${P[SECRETS_FILE]}) are not the ones this step applies (another digest)"
}
# With the secret parameters on stdin (a drift check or repair): the file that keeps them on the host is checked, or
# put back.
secrets_file_step() {
    case "$ACTION" in
    apply) (umask 077 && mkdir -p "$(dirname "$ROOT${P[SECRETS_FILE]}")") && put_file "${P[SECRETS_FILE]}" 0600 "$SECRETS_RAW" ;;
    check) check_file "${P[SECRETS_FILE]}" "$SECRETS_RAW" 0600 secret ;;
    esac
}
# A remove needs no secret: it goes on.
secrets_unusable() {
    if [ "$ACTION" = remove ]; then warn "$1"; else die "$1: run pulumi up --refresh, which puts them back"; fi
}

# need KEY...: dies naming the first missing parameter.
need() {
    local k
    for k in "$@"; do [ -n "${P[$k]+set}" ] || die "missing parameter $k"; done
}

# param KEY: prints the value (dies when missing); param_or KEY DEFAULT: the value, or DEFAULT when missing.
param() { need "$1"; printf '%s' "${P[$1]}"; }
param_or() { if [ -n "${P[$1]+set}" ]; then printf '%s' "${P[$1]}"; else printf '%s' "$2"; fi; }
# seconds_param KEY DEFAULT: a whole number of seconds (never evaluated as an expression).
seconds_param() {
    local v
    v=$(param_or "$1" "$2")
    [[ $v =~ ^[0-9]{1,6}$ ]] || die "parameter $1 must be a whole number of seconds"
    printf '%s' "$((10#$v))"
}
