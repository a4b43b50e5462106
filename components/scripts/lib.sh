#!/usr/bin/env bash
# The family table's names are used by the scripts that source this file.
# shellcheck disable=SC2034
# Shared library of the host scripts (sourced, never run). Protocol:
#   bash <dir>/<script>.sh apply|remove|check   with parameters on stdin (the framing: read_records).
# apply brings the host to the desired state and is idempotent; remove undoes what apply added (never data);
# check prints one `drift <item> <reason>` line per difference from the desired state and changes nothing.
# Every path is prefixed with $HOSTINFRA_ROOT (empty on hosts; a temp dir in tests).
set -euo pipefail

ROOT="${HOSTINFRA_ROOT:-}"
STATE_DIR="$ROOT/var/lib/host-topology"
OS_RELEASE="${HOSTINFRA_OS_RELEASE:-$ROOT/etc/os-release}"
declare -A P=()
CHANGED=0
SECRETS_INLINE=0

die() { printf 'host-topology: %s: %s\n' "$(hostname 2>/dev/null || echo '?')" "$*" >&2; exit 1; }
warn() { printf 'warning: %s\n' "$*"; }

PARAMS_HEADER='# host-topology parameters, format 2'
SECRET_PARAMS_HEADER='# host-topology secret parameters, format 2'
SECRETS_RAW=""

# read_records: reads parameter records from stdin into P, as components/params.ts's encodeParams writes them: a header
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

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# start_script SCRIPT ACTION: reads the parameters, checks the uploaded files are the program's, detects the OS.
start_script() {
    SCRIPT=$1
    ACTION=${2:-}
    case "$ACTION" in apply | remove | check) ;; *) die "usage: $(basename "$SCRIPT") apply|remove|check" ;; esac
    load_params
    need SCRIPT_SHA256 LIB_SHA256
    local f want got
    for f in "$SCRIPT" "${BASH_SOURCE[0]}"; do
        if [ "$f" = "$SCRIPT" ]; then want=${P[SCRIPT_SHA256]}; else want=${P[LIB_SHA256]}; fi
        got=$(sha256_of "$f")
        if [ "$got" != "$want" ]; then
            # remove must still work after the program moved on to a newer script.
            if [ "$ACTION" = remove ]; then
                warn "$f differs from the version that applied this step"
            else
                printf 'host-topology: %s on %s differs from the program'\''s version (expected %s, found %s)\n' \
                    "$f" "$(hostname 2>/dev/null || echo '?')" "$want" "$got" >&2
                exit 3
            fi
        fi
    done
    detect_family
    if [ "$ACTION" = remove ] && ! owns_slot; then
        echo "left alone: $(basename "$SCRIPT" .sh) on $(hostname 2>/dev/null || echo '?') was applied by $(slot_owner), not by this step (${P[OWNER]}): nothing removed"
        echo "ok $(basename "$SCRIPT" .sh) family=$FAMILY"
        exit 0
    fi
}

# ---- ownership ----
# What a script manages on a host (its "slot": the hosts block, the time daemon, ...) belongs to the step whose
# apply wrote it last: OWNER (the stack, project and step name) is recorded under $STATE_DIR/owners/. A remove
# from another step leaves the host alone: after a rename, Pulumi creates the steps of the new name first and
# deletes those of the old name at the end, on the same host. Without OWNER (a step applied before owners were
# recorded) or without a record (a reinstalled host), remove proceeds.
owner_file() { printf '%s/owners/%s' "$STATE_DIR" "$(basename "$SCRIPT" .sh)"; }
slot_owner() { cat "$(owner_file)" 2>/dev/null || true; }
owns_slot() {
    local recorded
    recorded=$(slot_owner)
    [ -z "${P[OWNER]:-}" ] || [ -z "$recorded" ] || [ "$recorded" = "${P[OWNER]}" ]
}
record_owner() {
    local f
    f=$(owner_file)
    case "$ACTION" in
        apply) if [ -n "${P[OWNER]:-}" ] && [ "$(slot_owner)" != "${P[OWNER]}" ]; then mkdir -p "$(dirname "$f")" && printf '%s' "${P[OWNER]}" >"$f"; fi ;;
        remove) rm -f "$f" ;;
    esac
}

# os_release_value KEY: the value in os-release, quotes removed (read, never sourced).
os_release_value() {
    awk -v k="$1=" 'index($0, k) == 1 { v = substr($0, length(k) + 1); gsub(/^["\047]|["\047]$/, "", v); print v; exit }' "$OS_RELEASE"
}

# The one per-family table: package manager, packages, services and paths.
detect_family() {
    [ -r "$OS_RELEASE" ] || die "cannot read $OS_RELEASE"
    local id ver
    id=$(os_release_value ID)
    ver=$(os_release_value VERSION_ID)
    case "$id:$ver" in
        centos:7* | rhel:7* | ol:7*) FAMILY=el7 ;;
        centos:8* | rhel:8* | rocky:8* | almalinux:8* | ol:8*) FAMILY=el8 ;;
        centos:9* | rhel:9* | rocky:9* | almalinux:9* | ol:9*) FAMILY=el9 ;;
        debian:12*) FAMILY=debian12 ;;
        debian:13*) FAMILY=debian13 ;;
        ubuntu:22.04) FAMILY=ubuntu2204 ;;
        ubuntu:24.04) FAMILY=ubuntu2404 ;;
        *) die "unsupported OS $id $ver (supported: EL7, EL8, EL9, Debian 12/13, Ubuntu 22.04/24.04)" ;;
    esac
    CHRONY_PKG=chrony
    case $FAMILY in
        el*)
            PM=yum
            [ "$FAMILY" = el7 ] || PM=dnf
            REG_PKG=docker-distribution REG_SVC=docker-distribution REG_USER=""
            REG_CONF=/etc/docker-distribution/registry/config.yml
            ETCD_PKGS="etcd" ETCD_SVC=etcd ETCD_CONF=/etc/etcd/etcd.conf
            CHRONY_SVC=chronyd CHRONY_CONF=/etc/chrony.conf
            NGINX_GROUP=nginx
            CA_ANCHOR=/etc/pki/ca-trust/source/anchors/host-topology-registry.crt CA_UPDATE="update-ca-trust extract"
            if [ "$FAMILY" = el7 ]; then NTP_PKG=ntp NTP_SVC=ntpd NTP_CONF=/etc/ntp.conf; else NTP_PKG="" NTP_SVC="" NTP_CONF=""; fi
            ;;
        # Debian 13 (trixie) has the same entry as Debian 12 in every column, checked against its packages:
        # docker-registry 2.8.3 (config /etc/docker/registry/config.yml, user docker-registry), etcd-server and
        # etcd-client 3.5.16 (unit etcd.service, EnvironmentFile=-/etc/default/etcd, User=etcd), chrony 4.6
        # (chrony.service, /etc/chrony/chrony.conf), ntpsec 1.2.3 (ntpsec.service, /etc/ntpsec/ntp.conf; trixie
        # has no ntp package at all), nginx 1.26 (user www-data, conf.d), ca-certificates (update-ca-certificates).
        # Only the versions differ (etcd 3.4 -> 3.5 accepts every variable the scripts write and prints member
        # list/health as 3.4 does), and units moved from /lib/systemd/system to /usr/lib/systemd/system, which the
        # scripts never name.
        debian12 | debian13 | ubuntu2204 | ubuntu2404)
            PM=apt
            REG_PKG=docker-registry REG_SVC=docker-registry REG_USER=docker-registry
            REG_CONF=/etc/docker/registry/config.yml
            ETCD_PKGS="etcd-server etcd-client" ETCD_SVC=etcd ETCD_CONF=/etc/default/etcd
            CHRONY_SVC=chrony CHRONY_CONF=/etc/chrony/chrony.conf
            NGINX_GROUP=www-data
            CA_ANCHOR=/usr/local/share/ca-certificates/host-topology-registry.crt CA_UPDATE=update-ca-certificates
            if [ "$FAMILY" = ubuntu2204 ]; then NTP_PKG=ntp NTP_SVC=ntp NTP_CONF=/etc/ntp.conf; else NTP_PKG=ntpsec NTP_SVC=ntpsec NTP_CONF=/etc/ntpsec/ntp.conf; fi
            ;;
    esac
}

pkg_installed() {
    if [ "$PM" = apt ]; then
        dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"
    else
        rpm -q "$1" >/dev/null 2>&1
    fi
}

# ---- packages ----
# Before an install the package lists are refreshed when older than PKG_LISTS_MAX_AGE seconds (default 3600,
# 0 = before every install), like Ansible's apt cache_valid_time: packages come from current lists (a security
# update published since the host last fetched its lists is the version installed). Nothing is fetched when every
# package is installed already.
PKG_LISTS_STAMP="$STATE_DIR/pkg-lists.stamp" # touched after each refresh here that fetched every source

# newest_mtime FILE...: the newest modification time (epoch seconds) among the FILEs that exist; 0 when none. A
# time in the future (a clock that was wrong, here or on a mirror) is no evidence of freshness and is skipped.
newest_mtime() {
    local now t newest=0
    now=$(date +%s)
    while read -r t; do
        if [[ $t =~ ^[0-9]+$ ]] && [ "$t" -le "$now" ] && [ "$t" -gt "$newest" ]; then newest=$t; fi
    done < <(if [ $# -gt 0 ]; then stat -c %Y -- "$@" 2>/dev/null || true; fi)
    echo "$newest"
}

# apt_lists_missing: how many configured sources (a suite of a repository) lack the list of one of their package
# indexes: a suite or component in sources.list that no apt-get update has fetched since, whose packages (the
# security updates of a -security suite) are then no candidates at all. The index files are apt's own answer, for
# every configured source (ReleaseInfo=false: by default apt names only those it has a Release file for, and only
# files that exist); each may be there plain or compressed (Acquire::GzipIndexes). One the repository does not
# ship (not in the suite's Release file: another architecture, a component it lacks) never gets a list and is not
# counted. Fails when apt cannot tell (no `apt-get indextargets` before apt 1.1).
apt_lists_missing() {
    local out file key src rel s have
    local -A nolist=()
    # shellcheck disable=SC2016 # $(...) is apt's format, not the shell's
    out=$(apt-get -q -o APT::Get::IndexTargets::ReleaseInfo=false indextargets \
        --format $'$(FILENAME)\t$(METAKEY)\t$(REPO_URI) $(RELEASE)' 'Created-By: Packages' 'Optional: no' 2>/dev/null) || return 1
    while IFS=$'\t' read -r file key src; do
        if [ -z "$file" ] || [ -z "$key" ]; then continue; fi
        file="$ROOT$file" # apt prints the host's paths (/var/lib/apt/lists/...)
        have=0
        for s in "" .lz4 .zst .gz .xz .bz2 .lzma; do if [ -e "$file$s" ]; then have=1; break; fi; done
        if [ $have = 0 ]; then
            rel=${file%"${key//\//_}"} # the suite's prefix in the lists: + InRelease or Release
            for s in InRelease Release; do
                if [ "$rel" = "$file" ] || [ ! -f "$rel$s" ]; then continue; fi
                awk -v k="$key" '{ n = $NF; sub(/\.(lz4|zst|gz|xz|bz2|lzma)$/, "", n) } n == k { f = 1; exit } END { exit !f }' "$rel$s" || have=1
                break
            done
        fi
        [ $have = 1 ] || nolist[${src:-$file}]=1
    done <<<"$out"
    echo "${#nolist[@]}"
}

# pkg_repos: the ids of the enabled dnf/yum repositories, sorted, one a line; fails when the package manager cannot
# tell. The rows follow the `repo id ...` header (LC_ALL=C: not translated); yum 3 marks an id with ! (expired) or
# * (metalink), appends its /$releasever/$basearch and ends with a `repolist: N` total.
pkg_repos() {
    local out
    if [ "$PM" = dnf ]; then
        out=$(LC_ALL=C dnf -q repolist --enabled 2>/dev/null) || return 1
    else
        out=$(LC_ALL=C yum -q repolist enabled 2>/dev/null) || return 1
    fi
    awk '/^repo id/ { on = 1; next } !on || /^[[:space:]]/ || /^repolist:/ || NF == 0 { next }
        { id = $1; sub(/^[!*]+/, "", id); sub(/\/.*/, "", id); if (id != "") print id }' <<<"$out" | LC_ALL=C sort -u
}

# pkg_lists_time: when the package lists were last known to be fetched (epoch seconds); 0 = unknown or no lists,
# then, when known, why on a second line (pkg_install's reason for the refresh).
pkg_lists_time() {
    local f=() d="$ROOT/var/lib/apt/lists" n repos added
    if [ "$PM" = apt ]; then
        # No package index at all (a fresh image, lists deleted to save space): refresh whatever a stamp says.
        if ! compgen -G "$d/*_Packages" >/dev/null && ! compgen -G "$d/*_Packages.*" >/dev/null; then echo 0; return; fi
        # Some configured source without a list: however fresh the others, its packages are missing.
        if n=$(apt_lists_missing) && [ "$n" != 0 ]; then printf '0\nno list yet for %s configured source(s)\n' "$n"; return; fi
        # apt gives each list file the mirror's Last-Modified time, not the time of the download, and leaves it as it
        # is when the mirror answers "not modified". So the newest mtime among the (In)Release and Packages files
        # (.lz4/.gz with Acquire::GzipIndexes) is never later than the update that fetched it: lists someone else
        # refreshed recently count as fresh, stale lists never look fresh. After an update that found nothing new
        # it is older than that update, hence our stamp counts too. Not counted: /var/lib/apt/periodic/
        # update-success-stamp (Ubuntu's Post-Invoke-Success hook), which apt touches even when some sources
        # failed to download (it only needs one that did not).
        mapfile -t f < <(compgen -G "$d/*_InRelease" || true; compgen -G "$d/*_Release" || true
            compgen -G "$d/*_Packages" || true; compgen -G "$d/*_Packages.*" || true)
    fi
    # dnf and yum: the cached metadata keeps the repositories' own times, and how each decides expiry differs
    # (yum 3's cachecookie, dnf 4's solv files rewritten only on a change): only our stamp counts there, so lists
    # refreshed by someone else are fetched once more (a cheap check when nothing changed). The stamp records the
    # repositories enabled at that refresh: one enabled since (EPEL, CRB, a vendor's) has metadata of unknown age,
    # so the lists count as stale; one disabled since changes nothing. When the package manager cannot list them,
    # only the stamp's age counts.
    if [ "$PM" != apt ] && [ -f "$PKG_LISTS_STAMP" ] && repos=$(pkg_repos) && [ -n "$repos" ]; then
        if [ ! -s "$PKG_LISTS_STAMP" ]; then printf '0\nenabled repositories not recorded at the last refresh\n'; return; fi
        added=$(LC_ALL=C comm -23 <(printf '%s\n' "$repos") <(LC_ALL=C sort -u "$PKG_LISTS_STAMP") | tr '\n' ' ')
        if [ -n "$added" ]; then printf '0\nrepositories enabled since the last refresh: %s\n' "${added% }"; return; fi
    fi
    f+=("$PKG_LISTS_STAMP")
    newest_mtime "${f[@]}"
}

# pkg_lists_refresh WHY: fetches the package lists, then prints `refreshed package lists (WHY)` (not a `changed`
# line: the lists are no managed state). Any source that could not be fetched is a failure: returns 1 with the
# package manager's error in PKG_ERR (the caller cleans up, then dies).
pkg_lists_refresh() {
    local why=$1 out rc=0 errs what="$PM makecache"
    PKG_ERR=""
    if [ "$PM" = apt ]; then
        local wait=${APT_LOCK_TIMEOUT:-600} waited=0
        [[ $wait =~ ^[0-9]{1,6}$ ]] || wait=600
        # apt-get update exits 0 when a source fails for a "transient" reason (unreachable mirror, DNS failure) and
        # installs from the old lists: APT::Update::Error-Mode=any (apt >= 2.1.16: Ubuntu 22.04 has 2.4, Debian 12
        # 2.6, Ubuntu 24.04 2.7, Debian 13 3.0) makes that an error; its W:/E: "Failed to fetch" and "Some index
        # files failed" lines are checked as well, should an apt ignore the option.
        local cmd=(apt-get -o "DPkg::Lock::Timeout=$wait" -q -o APT::Update::Error-Mode=any update)
        what="apt-get update"
        while :; do
            rc=0
            out=$("${cmd[@]}" 2>&1) || rc=$?
            # DPkg::Lock::Timeout does not cover the lists' lock: wait for another update (apt-daily at boot) as long.
            if [ $rc != 0 ] && [ $waited -lt "$wait" ] &&
                grep -qE 'Could not get lock [^ ]*/lists/lock|Unable to lock directory [^ ]*/lists' <<<"$out"; then
                sleep 5
                waited=$((waited + 5))
                continue
            fi
            break
        done
        if [ $rc = 0 ] && grep -qE '^(W|E): (Failed to fetch|Some index files failed)' <<<"$out"; then rc=1; fi
        errs=$(grep -E '^(E|W|Err):|^  ' <<<"$out" | tail -n 12 || true)
    else
        # dnf: --refresh marks the metadata expired first; yum 3 has no such option: clean expire-cache does it.
        # Both exit non-zero when a repository cannot be fetched (unless it is skip_if_unavailable, as configured).
        if [ "$PM" = dnf ]; then
            out=$(dnf -q makecache --refresh 2>&1) || rc=$?
        else
            out=$(yum -q clean expire-cache 2>&1 && yum -q makecache fast 2>&1) || rc=$?
        fi
        errs=""
    fi
    if [ $rc != 0 ]; then
        [ -n "$errs" ] || errs=$(tail -n 15 <<<"$out")
        PKG_ERR="could not refresh the package lists with $what: $errs"
        return 1
    fi
    # dnf/yum: the stamp records the repositories fetched (pkg_lists_time compares them); none when unknown.
    local repos=""
    if [ "$PM" != apt ]; then repos=$(pkg_repos) || repos=""; fi
    if mkdir -p "$STATE_DIR"; then
        if [ "$PM" != apt ]; then printf '%s' "${repos:+$repos$'\n'}" >"$PKG_LISTS_STAMP" || true; fi
        touch "$PKG_LISTS_STAMP" || true
    fi
    echo "refreshed package lists ($why)"
}

pkg_install() {
    local p missing=() out max t now why="none yet, or of unknown age"
    max=$(seconds_param PKG_LISTS_MAX_AGE 3600)
    for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing ${missing[*]}"
    t=$(pkg_lists_time)
    if [[ $t == *$'\n'* ]]; then why=${t#*$'\n'}; t=${t%%$'\n'*}; fi
    now=$(date +%s)
    if [ "$t" = 0 ]; then
        pkg_lists_refresh "$why" || die "$PKG_ERR"
    elif [ $((now - t)) -gt "$max" ] || [ "$max" = 0 ]; then
        pkg_lists_refresh "older than ${max}s" || die "$PKG_ERR"
    fi
    if [ "$PM" = apt ]; then
        local apt=(apt-get -o "DPkg::Lock::Timeout=${APT_LOCK_TIMEOUT:-600}" -q)
        # Services start when this script has configured them, not with the package defaults at install time
        # (docker-registry would listen on every interface, etcd would bootstrap a default member).
        local policy="$ROOT/usr/sbin/policy-rc.d" own_policy=0
        if [ ! -e "$policy" ]; then
            mkdir -p "$(dirname "$policy")"
            printf '#!/bin/sh\n# host-topology: no service starts during package installation\nexit 101\n' >"$policy"
            chmod 0755 "$policy"
            own_policy=1
        fi
        if ! out=$(DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing[@]}" 2>&1); then
            pkg_lists_refresh "apt-get install failed, trying again" || {
                [ $own_policy = 0 ] || rm -f "$policy"
                die "$PKG_ERR"
            }
            out=$(DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing[@]}" 2>&1) || {
                [ $own_policy = 0 ] || rm -f "$policy"
                die "could not install ${missing[*]} with apt-get: $(tail -n 15 <<<"$out")"
            }
        fi
        [ $own_policy = 0 ] || rm -f "$policy"
    else
        # yum exits 0 when only some of the packages exist: what counts is whether they are installed after.
        out=$("$PM" -y install "${missing[@]}" 2>&1) || true
        if ! pkgs_installed "${missing[@]}" && ! pkg_installed epel-release &&
            grep -qiE 'no package .* available|no match for argument|unable to find a match' <<<"$out"; then
            # nginx (EL7), docker-distribution and etcd (EL8/9) come from EPEL on CentOS/Rocky/Alma.
            if "$PM" -y install epel-release >/dev/null 2>&1 && pkg_installed epel-release; then
                echo "changed packages epel-release"
                out=$("$PM" -y install "${missing[@]}" 2>&1) || true
            fi
        fi
        pkgs_installed "${missing[@]}" || die "could not install ${missing[*]} with $PM: $(tail -n 15 <<<"$out")"
    fi
    echo "changed packages ${missing[*]}"
}

pkgs_installed() {
    local p
    for p in "$@"; do pkg_installed "$p" || return 1; done
}

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

# Drift checks (check action): print `drift <item> <reason>`; lines after it that start with `| ` are its detail (a
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

# finish: the last line of every script; records (apply) or drops (remove) the step's ownership of its slot.
finish() {
    [ "$SECRETS_INLINE" = 1 ] && secrets_file_step
    record_owner
    echo "ok $(basename "$SCRIPT" .sh) family=$FAMILY"
}
