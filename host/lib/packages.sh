#!/usr/bin/env bash
# Packages: installed checks, package lists kept fresh, installs. Sourced by step.sh, never run.
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
