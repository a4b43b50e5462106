#!/usr/bin/env bash
# The local lab: the documented three hosts as Debian 12 (or 13) machines booted with systemd (systemd-nspawn), each
# in its own network namespace on a bridge, at the documented addresses, with root SSH by a key the lab
# generates and NAT so they install packages from Debian's mirror as real hosts do.
#
#   lab/lab.sh up                  build the base image once (cached), create network + hosts, boot, wait
#                                  (LAB_NODES=N: master and node1..nodeN at 192.168.100.2, .3, ...; default 2;
#                                  LAB_SUITE_<host>=trixie boots that host on Debian 13, LAB_SUITE=trixie all of
#                                  them; remembered like LAB_NODES; a host that changes release gets a new disk)
#                                  for sshd and systemd; recovers what a crash left (namespaces, links,
#                                  mounts, orphaned containers, pid files)
#   lab/lab.sh reset [HOST...]     back to pristine: stop, drop the overlay layer, boot again (seconds)
#   lab/lab.sh down                stop the hosts, remove every namespace, link, mount and NAT/forward rule
#                                  the lab added (disks and the base image are kept in .lab/)
#   lab/lab.sh status              hosts, pids, SSH, systemd state, failed units; bridge and NAT
#   lab/lab.sh ssh HOST [CMD...]   run as root on HOST (master, node1, node2); stdin is passed through
#   lab/lab.sh stop|start HOST     stop (orderly halt) or boot one host, keeping its disk
#   lab/lab.sh key                 print the private key path
#   lab/lab.sh hostkeys            print the hosts' SSH host keys as known_hosts lines (= .lab/ssh/known_hosts)
#   lab/lab.sh rekey HOST          give HOST new SSH host keys (as a reinstall would); known_hosts keeps the old
#                                  ones, so SSH clients that pin keys refuse it until `lab/lab.sh trust HOST`
#   lab/lab.sh trust HOST          write HOST's current keys into .lab/ssh/known_hosts
#
# Every host accepts the lab key for root, for `deploy` (passwordless sudo) and for `nosudo` (no sudo at all).
# Host keys are made once per host and survive `reset` (a host's identity, as a reinstall that keeps
# /etc/ssh would); the dev stack pins them through .lab/ssh/known_hosts (sshKnownHostsPath).
#
# State lives in .lab/ (LAB_DIR overrides): base/ (debootstrap; .complete holds BASE_VERSION), ssh/id_ed25519,
# ssh/known_hosts, hostkeys/<name>/etc/ssh/ssh_host_*, hosts/<name>/{upper,work,root,console.log,pid}.
# LAB_DNS overrides the resolver the hosts use.
# The containers never get CAP_SYS_TIME: a time daemon inside must not move this machine's clock. chrony runs there
# with -x (a drop-in in the base image, lab only): it tracks and serves time without setting the clock.
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LAB="${LAB_DIR:-$REPO/.lab}"
BRIDGE=labbr0
GATEWAY=192.168.100.1
BRIDGE_MAC=02:42:c0:a8:64:01 # the hosts' eth0 have 02:42:c0:a8:64:<last octet>
SUBNET=192.168.100.0/24
TAG=host-topology-lab
SUITES=(bookworm trixie) # Debian 12 (the default) and 13; LAB_SUITE_<host>=trixie (or LAB_SUITE for all) picks one
MIRROR=http://deb.debian.org/debian
SECURITY=http://deb.debian.org/debian-security
INCLUDE=systemd,systemd-sysv,dbus,libpam-systemd,openssh-server,iproute2,ca-certificates,procps,iputils-ping,netbase,sudo
BASE_VERSION=6 # bump when the base's configuration below changes (.lab/base is configured again)
KEY="$LAB/ssh/id_ed25519"
KNOWN_HOSTS="$LAB/ssh/known_hosts"
LAB_DOMAIN=danran.com
SSH_WAIT=${LAB_SSH_WAIT:-120}       # seconds for sshd to answer after boot
SYSTEMD_WAIT=${LAB_SYSTEMD_WAIT:-120} # seconds for systemd to finish booting
STOP_WAIT=${LAB_STOP_WAIT:-30}     # seconds for an orderly halt before the container is killed
MAX_NODES=200 # addresses .3 to .202

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (network namespaces, mounts, nspawn)"; }

# One mutating command at a time (up, down, reset, stop, start). The containers must not inherit the lock.
take_lock() {
    mkdir -p "$LAB"
    exec 9>"$LAB/lock"
    flock -w 900 9 || die "another lab.sh has held $LAB/lock for 15 minutes"
}

apt_install() {
    local i
    log "installing $* (apt may wait for another apt/dpkg to finish)"
    # apt-get update does not wait for the lists lock by itself.
    for i in $(seq 1 60); do
        apt-get -o DPkg::Lock::Timeout=600 update -qq && break
        [ "$i" -lt 60 ] || die "apt-get update failed"
        sleep 10
    done
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_tools() {
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
    command -v iptables >/dev/null || missing+=(iptables)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || missing+=(openssh-client)
    [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

# The hosts: master and node1..nodeN at 192.168.100.2, .3, ... N is LAB_NODES when given (up remembers it in
# $LAB/nodes for the commands after it), else the remembered count, else 2: the documented three hosts.
node_count() {
    local n=${LAB_NODES:-}
    if [ -z "$n" ]; then n=$(cat "$LAB/nodes" 2>/dev/null || true); fi
    [ -n "$n" ] || n=2
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "$MAX_NODES" ] ||
        die "LAB_NODES must be a number of nodes from 1 to $MAX_NODES, got '$n'"
    echo "$((10#$n))"
}
declare -A ADDR=()
declare -A BOOTED=() # host -> pid of the systemd-nspawn this lab.sh started
NAMES=()
set_hosts() {
    local i n
    n=$(node_count)
    NAMES=(master)
    ADDR=([master]=192.168.100.2)
    for i in $(seq 1 "$n"); do
        NAMES+=("node$i")
        ADDR[node$i]=192.168.100.$((2 + i))
    done
}
set_hosts

host_ip() { [ -n "${ADDR[${1:-}]:-}" ] || die "unknown host '${1:-}' (hosts: ${NAMES[*]})"; echo "${ADDR[$1]}"; }
hdir() { echo "$LAB/hosts/$1"; }

# The Debian release a host runs: LAB_SUITE_<host>, else LAB_SUITE, else what `up` remembered, else bookworm.
suite_of() {
    local var="LAB_SUITE_$1" v
    v=${!var:-${LAB_SUITE:-}}
    [ -n "$v" ] || v=$(cat "$LAB/suites/$1" 2>/dev/null || true)
    [ -n "$v" ] || v=bookworm
    [[ " ${SUITES[*]} " == *" $v "* ]] || die "$var/LAB_SUITE must be one of: ${SUITES[*]}; got '$v'"
    echo "$v"
}
# The base image of a suite: .lab/base (bookworm, as before) or .lab/base-<suite>.
base_dir() { if [ "$1" = bookworm ]; then echo "$LAB/base"; else echo "$LAB/base-$1"; fi; }
base_current() { [ "$(cat "$(base_dir "$1")/.complete" 2>/dev/null)" = "$BASE_VERSION" ]; }

# Hosts of a larger lab than the current one (a host dir beyond nodeN): stopped by up, down and reset.
extra_hosts() {
    local d n
    for d in "$LAB"/hosts/node*; do
        [ -d "$d" ] || continue
        n=${d##*/}
        [ -n "${ADDR[$n]:-}" ] || echo "$n"
    done
}

# The resolver the hosts use: the machine's, unless it is a loopback stub (unreachable from a namespace);
# then the upstream servers of systemd-resolved or of a DHCP lease.
upstream_dns() {
    local f ns
    if [ -n "${LAB_DNS:-}" ]; then echo "$LAB_DNS"; return; fi
    for f in /etc/resolv.conf /run/systemd/resolve/resolv.conf; do
        ns=$(awk '$1 == "nameserver" && $2 !~ /^127\./ && $2 != "::1" && $2 ~ /^[0-9.]+$/ {print $2; exit}' "$f" 2>/dev/null || true)
        [ -z "$ns" ] || { echo "$ns"; return; }
    done
    ns=$(resolvectl dns 2>/dev/null | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^[0-9.]+$/ && $i !~ /^127\./) {print $i; exit}}' || true)
    [ -z "$ns" ] || { echo "$ns"; return; }
    ns=$(cat /var/lib/dhcp/dhclient*.leases /var/lib/NetworkManager/*.lease 2>/dev/null |
        sed -n 's/.*domain-name-servers \([0-9.]*\).*/\1/p' | tail -1 || true)
    [ -z "$ns" ] || { echo "$ns"; return; }
    ns=$(sed -n 's/^DNS=\([0-9.]*\).*/\1/p' /run/systemd/netif/leases/* 2>/dev/null | head -1 || true)
    [ -n "$ns" ] || die "no DNS server reachable from the lab hosts (only a loopback stub here): set LAB_DNS=IP"
    echo "$ns"
}

# ---------------------------------------------------------------------------------------------- base image

# Unmounts whatever is mounted at or below DIR (a crashed debootstrap leaves proc and sys mounted in it).
umount_under() {
    local m
    awk -v d="$1" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r |
        while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}

# rm -rf that never crosses into a mounted file system.
wipe() {
    local d
    for d in "$@"; do
        umount_under "$d"
        rm -rf --one-file-system "$d"
    done
}

build_base() {
    local suite=$1 base
    base=$(base_dir "$suite")
    mkdir -p "$LAB/ssh"
    [ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C "$TAG" -f "$KEY"
    if base_current "$suite"; then
        # A regenerated key (someone removed .lab/ssh) must still let us in.
        local u
        for u in root/.ssh home/deploy/.ssh home/nosudo/.ssh; do
            cmp -s "$KEY.pub" "$base/$u/authorized_keys" || install -m 0600 "$KEY.pub" "$base/$u/authorized_keys"
        done
        return
    fi
    # A new or changed base invalidates the overlay layer of every host on it.
    local n dns b="$base.tmp"
    for n in "${NAMES[@]}"; do
        [ "$(suite_of "$n")" = "$suite" ] || continue
        stop_host "$n" kill
        wipe "$(hdir "$n")/upper" "$(hdir "$n")/work"
    done
    if [ -f "$base/.debootstrap-done" ]; then
        # A base configured by an older lab.sh: configured again below, without a new debootstrap.
        log "base image configured by an older lab.sh: configuring it again"
        wipe "$b"
        mv "$base" "$b"
    fi
    wipe "$base"
    if [ ! -f "$b/.debootstrap-done" ]; then
        wipe "$b"
        log "debootstrap $suite into $b (first time only; log in $LAB/debootstrap-$suite.log)"
        debootstrap --variant=minbase --include="$INCLUDE" "$suite" "$b" "$MIRROR" >"$LAB/debootstrap-$suite.log" 2>&1 ||
            die "debootstrap failed: $(tail -5 "$LAB/debootstrap-$suite.log")"
        touch "$b/.debootstrap-done"
    fi
    cat >"$b/etc/apt/sources.list" <<EOF
deb $MIRROR $suite main
deb $MIRROR $suite-updates main
deb $SECURITY $suite-security main
EOF
    # Each host gets its own SSH host keys (made once, kept in hostkeys/) and machine id when it is created.
    rm -f "$b"/etc/ssh/ssh_host_*
    : >"$b/etc/machine-id"
    rm -f "$b/var/lib/dbus/machine-id"
    ln -s /etc/machine-id "$b/var/lib/dbus/machine-id"
    install -d -m 0700 "$b/root/.ssh"
    install -m 0600 "$KEY.pub" "$b/root/.ssh/authorized_keys"
    # Two users besides root with the lab key: deploy may run anything through sudo without a password (a
    # stack's non-root sshUser), nosudo may not use sudo at all (the clear error for a user without it).
    [ -x "$b/usr/bin/sudo" ] || { chroot "$b" apt-get update -q && chroot "$b" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends sudo; } >"$LAB/sudo-install.log" 2>&1 ||
        die "installing sudo into the base failed: $(tail -5 "$LAB/sudo-install.log")"
    for u in deploy nosudo; do
        chroot "$b" id -u "$u" >/dev/null 2>&1 || chroot "$b" useradd -m -s /bin/bash "$u"
        install -d -m 0700 "$b/home/$u/.ssh"
        install -m 0600 "$KEY.pub" "$b/home/$u/.ssh/authorized_keys"
        chroot "$b" chown -R "$u:$u" "/home/$u/.ssh"
    done
    echo 'deploy ALL=(ALL) NOPASSWD:ALL' >"$b/etc/sudoers.d/deploy"
    chmod 0440 "$b/etc/sudoers.d/deploy"
    cat >"$b/etc/ssh/sshd_config.d/lab.conf" <<EOF
PermitRootLogin prohibit-password
UseDNS no
EOF
    dns=$(upstream_dns)
    echo "nameserver $dns" >"$b/etc/resolv.conf"
    rm -f "$b/etc/hostname" # debootstrap copies this machine's
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$b/etc/hosts"
    # A container has no console login to offer and no kernel modules to load. Nor a per-user service manager
    # (user@.service), which root's SSH sessions would start: on a cgroup v1 machine systemd in the container
    # cannot kill its cgroup ("Failed to kill control group ... Input/output error"), so stopping it 10 s after
    # the last logout hangs until its 2-minute timeout ("Processes still around after final SIGKILL") and every
    # login in that window waits for it. logind sessions work without it.
    for u in getty@tty1.service console-getty.service systemd-modules-load.service user@.service; do
        ln -sf /dev/null "$b/etc/systemd/system/$u"
    done
    # Nor a logind session per SSH login (pam_systemd): without a user manager, root's user-0.slice is created at
    # each login and removed at each logout, and on a cgroup v1 machine a login arriving as the slice goes can find
    # its cgroup gone ("session-N.scope: Couldn't move process ... to requested cgroup ...: No such file or
    # directory", "Failed with result 'resources'"), after which sshd waits for logind forever: a login that hangs
    # until ssh's ServerAlive gives up (75 s), one in a few hundred logins in the lab. SSH sessions then stay in
    # sshd.service's cgroup; nothing the host scripts do needs a session.
    # Lab only, never shipped by the program: chronyd without CAP_SYS_TIME. Its unit is skipped in a container by
    # ConditionCapability=CAP_SYS_TIME; with -x chronyd never sets the clock but still tracks its sources and serves
    # time, so the lab's nodes really sync from the master and the tests can ask chronyc what they selected.
    install -d "$b/etc/systemd/system/chrony.service.d"
    cat >"$b/etc/systemd/system/chrony.service.d/lab-no-clock-control.conf" <<'EOF'
# host-topology lab: no CAP_SYS_TIME in a container; -x: track and serve time, never set this machine's clock.
[Unit]
ConditionCapability=
[Service]
ExecStart=
ExecStart=!/usr/sbin/chronyd $DAEMON_OPTS -x
EOF
    chroot "$b" pam-auth-update --disable systemd
    ! grep -q pam_systemd "$b/etc/pam.d/common-session" || die "pam_systemd is still in the base's common-session"
    rm -f "$b"/var/cache/apt/archives/*.deb "$b"/var/cache/apt/*.bin
    echo "$BASE_VERSION" >"$b/.complete"
    mv "$b" "$base"
}

# ----------------------------------------------------------------------------------------------- network

# Refuse any traffic unless the route to the host goes through the lab bridge.
check_route() {
    local ip r
    ip=$(host_ip "$1")
    r=$(ip -4 route get "$ip" 2>&1 | head -1 || true)
    [[ " $r " == *" dev $BRIDGE "* ]] || die "refusing to send traffic to $ip: its route does not go through $BRIDGE ($r)"
}

# rule TABLE CHAIN SPEC...: add the tagged rule once.
rule() {
    local t=$1 c=$2
    shift 2
    iptables -w -t "$t" -C "$c" "$@" -m comment --comment "$TAG" 2>/dev/null ||
        iptables -w -t "$t" -I "$c" 1 "$@" -m comment --comment "$TAG"
}

# The lab's rules (tagged exactly, not a tag that merely starts the same), as `-A CHAIN ...` lines of TABLE.
tagged_rules() { iptables -w -t "$1" -S 2>/dev/null | awk -v tag="--comment $TAG " 'index($0 " ", tag)' || true; }

remove_rules() {
    local t line
    for t in nat filter; do
        while line=$(tagged_rules "$t" | sed -n 1p) && [ -n "$line" ]; do
            # The comment is a single word, so the line splits back into the same arguments.
            # shellcheck disable=SC2086
            iptables -w -t "$t" ${line/#-A /-D } || die "could not remove rule: $line"
        done
    done
}

ensure_network() {
    local r out
    r=$(ip -4 route show table all root "$SUBNET" 2>/dev/null | awk -v d="dev $BRIDGE" '!index($0 " ", d " ")' || true)
    [ -z "$r" ] || die "refusing: $SUBNET is already routed through another device on this machine: $r"
    ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
    # A fixed MAC: left to itself a bridge takes the lowest MAC of its ports, so a host's link made again (reset,
    # with its own new random MAC) could change the gateway's MAC under the other hosts, whose replies to this
    # machine then went to the old one until their neighbour entry expired (a host silent for a minute).
    [ "$(cat "/sys/class/net/$BRIDGE/address")" = "$BRIDGE_MAC" ] || ip link set "$BRIDGE" address "$BRIDGE_MAC"
    [[ "$(ip -4 addr show dev "$BRIDGE")" == *" $GATEWAY/24 "* ]] || ip addr add "$GATEWAY/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    [ -f "$LAB/ip_forward.before" ] || cat /proc/sys/net/ipv4/ip_forward >"$LAB/ip_forward.before"
    echo 1 >/proc/sys/net/ipv4/ip_forward
    out=$(ip -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
    [ -n "$out" ] || die "no default route on this machine: the hosts could not reach Debian's mirror"
    rule nat POSTROUTING -s "$SUBNET" ! -d "$SUBNET" -o "$out" -j MASQUERADE
    rule filter FORWARD -i "$BRIDGE" -s "$SUBNET" -j ACCEPT
    rule filter FORWARD -o "$BRIDGE" -d "$SUBNET" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
}

# systemd in every host takes inotify instances of this machine's (all containers run as root here): the default
# of 128 runs out at about 20 hosts ("Failed to allocate manager object: Too many open files"). Raised by 32 per
# host beyond the documented three when lower; down restores the value it found.
ensure_limits() {
    local f=/proc/sys/fs/inotify/max_user_instances want have
    want=$((128 + 32 * (${#NAMES[@]} - 3)))
    have=$(cat "$f")
    [ "$have" -lt "$want" ] || return 0
    [ -f "$LAB/inotify_instances.before" ] || echo "$have" >"$LAB/inotify_instances.before"
    echo "$want" >"$f"
    log "fs.inotify.max_user_instances raised from $have to $want for ${#NAMES[@]} hosts"
}

# The processes in a host's namespace that are not that host's (another lab's containers, strays).
foreign_pids() {
    local n=$1 p mine
    [ -e "/run/netns/lab-$n" ] || return 0
    mine=" $(host_pids "$n" | tr '\n' ' ') "
    for p in $(ip netns pids "lab-$n" 2>/dev/null || true); do
        if [[ "$mine" != *" $p "* ]]; then echo "$p"; fi
    done
}

describe_pids() {
    local p
    for p in "${@:1:3}"; do printf '%s(%s) ' "$p" "$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | cut -c1-80)"; done
    [ $# -le 3 ] || printf 'and %s more' $(($# - 3))
}

ensure_netns() {
    local n=$1 ns="lab-$1" ip f
    ip=$(host_ip "$n")
    mkdir -p /run/netns
    if ! mountpoint -q /run/netns && [ ! -f "$LAB/run-netns.mount" ]; then
        # `ip netns add` makes /run/netns a mount point: down undoes that when the lab made it.
        touch "$LAB/run-netns.mount"
    fi
    # A name left by a reboot (/run on disk) or a half-done delete: a file that is no longer a namespace.
    if [ -e "/run/netns/$ns" ] && ! mountpoint -q "/run/netns/$ns"; then
        ip netns del "$ns" 2>/dev/null || rm -f "/run/netns/$ns"
    fi
    f=$(foreign_pids "$n")
    # shellcheck disable=SC2086
    [ -z "$f" ] || die "namespace $ns is in use by processes that are not this lab's $n (another lab instance? $(hdir "$n")): $(describe_pids $f)"
    [ -e "/run/netns/$ns" ] || ip netns add "$ns"
    if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
        ip link del "vl-$n" 2>/dev/null || true
        # A fixed MAC per address: a host whose namespace is made again (reset) keeps its MAC, so no neighbour
        # cache (this machine's, the other hosts') points at a link that is gone.
        ip link add "vl-$n" type veth peer name eth0 address "$(printf '02:42:c0:a8:64:%02x' "${ip##*.}")" netns "$ns"
    fi
    ip link set "vl-$n" master "$BRIDGE" up
    ip -n "$ns" link set lo up
    [[ "$(ip -n "$ns" -4 addr show dev eth0)" == *" $ip/24 "* ]] || ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route replace default via "$GATEWAY"
}

# --------------------------------------------------------------------------------------------------- hosts

# The systemd-nspawn running this host: from the pid file, else found by its --directory (pid file lost).
nspawn_pid() {
    local d p c
    d=$(hdir "$1")
    p=$(cat "$d/pid" 2>/dev/null || true)
    for p in $p $(grep -lx systemd-nspawn /proc/[0-9]*/comm 2>/dev/null | cut -d/ -f3); do
        c=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" || true)
        if [[ " $c " == *" --directory=$d/root "* ]]; then echo "$p"; return 0; fi
    done
    return 1
}

running() { nspawn_pid "$1" >/dev/null; }

# Every process of the host: all processes in the pid namespace of those whose root is the host's overlay
# (the container's systemd and everything below it, chrooted daemons included), also when systemd-nspawn
# was killed and left the container orphaned. Never this machine's own pid namespace.
host_pids() {
    local r dev self
    r="$(hdir "$1")/root"
    mountpoint -q "$r" 2>/dev/null || return 0
    dev=$(stat -c %d "$r")
    self=$(stat -L -c %i "/proc/$$/ns/pid")
    {
        stat -L -c 'root %d %n' /proc/[0-9]*/root 2>/dev/null || true
        stat -L -c 'pidns %i %n' /proc/[0-9]*/ns/pid 2>/dev/null || true
    } | awk -v dev="$dev" -v self="$self" '
        { split($3, a, "/"); p = a[3] }
        $1 == "root" { if ($2 == dev) anchor[p] = 1; next }
        { ns[p] = $2; if (p in anchor && $2 != self) mine[$2] = 1 }
        END { for (p in ns) if (ns[p] in mine) print p }'
}

# The container is in the namespace named lab-<host> (not in one deleted under it).
in_its_netns() {
    local p
    p=$(host_pids "$1")
    p=${p%%$'\n'*}
    [ -n "$p" ] && [ -e "/run/netns/lab-$1" ] &&
        [ "$(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null)" = "$(stat -L -c %i "/run/netns/lab-$1")" ]
}

mount_host() {
    local n=$1 d dns
    d=$(hdir "$n")
    mkdir -p "$d/upper" "$d/work" "$d/root"
    suite_of "$n" >"$d/suite"
    mountpoint -q "$d/root" || mount -t overlay "lab-$n" -o "lowerdir=$(base_dir "$(suite_of "$n")"),upperdir=$d/upper,workdir=$d/work" "$d/root"
    if [ ! -f "$d/upper/.lab-created" ]; then
        # First boot of a pristine host: its own name, host keys and resolver (the machine id comes from
        # systemd on first boot).
        echo "lab-$n" >"$d/root/etc/hostname"
        printf '127.0.1.1\tlab-%s\n' "$n" >>"$d/root/etc/hosts"
        dns=$(upstream_dns)
        echo "nameserver $dns" >"$d/root/etc/resolv.conf"
        touch "$d/upper/.lab-created"
    fi
    install_host_keys "$n"
}

# The host's SSH host keys: made once, kept in hostkeys/<name>, put in the host's /etc/ssh at every boot.
install_host_keys() {
    local n=$1 k="$LAB/hostkeys/$1" f
    if [ ! -f "$k/etc/ssh/ssh_host_ed25519_key" ]; then
        mkdir -p "$k/etc/ssh"
        ssh-keygen -q -A -f "$k" >/dev/null
        trust_host "$n"
    fi
    for f in "$k"/etc/ssh/ssh_host_*; do
        cmp -s "$f" "$(hdir "$n")/root/etc/ssh/${f##*/}" || install -m "$(case $f in *.pub) echo 0644 ;; *) echo 0600 ;; esac)" "$f" "$(hdir "$n")/root/etc/ssh/"
    done
}

# known_hosts lines of a host: its address, FQDN and name, each of its host keys.
host_key_lines() {
    local n=$1 f
    for f in "$LAB/hostkeys/$n"/etc/ssh/ssh_host_*_key.pub; do
        printf '%s,%s.%s,%s %s\n' "$(host_ip "$n")" "$n" "$LAB_DOMAIN" "$n" "$(cut -d' ' -f1,2 "$f")"
    done
}

# trust_host HOST: known_hosts gets HOST's current keys in place of any it had.
trust_host() {
    local n=$1 ip tmp
    ip=$(host_ip "$n")
    mkdir -p "$(dirname "$KNOWN_HOSTS")"
    tmp=$(mktemp "$KNOWN_HOSTS.XXXXXX")
    { grep -v "^$ip," "$KNOWN_HOSTS" 2>/dev/null || true; host_key_lines "$n"; } >"$tmp"
    chmod 0644 "$tmp"
    mv "$tmp" "$KNOWN_HOSTS"
}

# rekey HOST: new host keys for HOST (running: sshd restarted with them); known_hosts is left as it was.
cmd_rekey() {
    local n=$1 k="$LAB/hostkeys/$1"
    host_ip "$n" >/dev/null
    rm -rf "$k"
    mkdir -p "$k/etc/ssh"
    ssh-keygen -q -A -f "$k" >/dev/null
    if running "$n"; then
        install_host_keys "$n"
        lab_ssh "$n" 'systemctl restart ssh' </dev/null
    fi
    log "$n: new host keys ($(ssh-keygen -lf "$k/etc/ssh/ssh_host_ed25519_key.pub" | cut -d' ' -f2)); $KNOWN_HOSTS still has the old ones (lab/lab.sh trust $n)"
}

# stop_host HOST [halt|kill]: halt = orderly shutdown (bounded), kill = at once (the disk is dropped after).
# Also clears what a crash left: orphaned container processes, a stale pid file, the overlay mount.
stop_host() {
    local n=$1 mode=${2:-halt} d p i pids
    d=$(hdir "$n")
    if p=$(nspawn_pid "$n") && [ "$mode" = halt ]; then
        kill -TERM "$p" 2>/dev/null || true # systemd-nspawn asks the container's systemd to halt
        for i in $(seq 1 $((STOP_WAIT * 5))); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.2
        done
    fi
    for i in $(seq 1 50); do
        pids=$(host_pids "$n")
        [ -n "$pids" ] || break
        # Killing the container's pid 1 ends its whole pid namespace; systemd-nspawn then exits.
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        sleep 0.1
    done
    if p=$(nspawn_pid "$n"); then
        for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    fi
    rm -f "$d/pid"
    if mountpoint -q "$d/root" 2>/dev/null; then umount "$d/root" 2>/dev/null || umount -l "$d/root"; fi
}

boot_host() {
    local n=$1 d p
    d=$(hdir "$n")
    if p=$(nspawn_pid "$n"); then
        echo "$p" >"$d/pid" # a lost pid file comes back
        if in_its_netns "$n"; then
            ensure_netns "$n" # links back on the bridge if it was recreated
            return 0
        fi
        log "$n: its network namespace was removed under it: restarting it"
    fi
    stop_host "$n" kill # leftovers of a crash (no-op otherwise)
    mount_host "$n"
    ensure_netns "$n"
    # CAP_NET_ADMIN: a firewall inside a host filters its own network namespace (lab-<host>), never this
    # machine's (the suite compares this machine's ruleset and links before and after). CAP_SYS_TIME is not in
    # nspawn's default set and is dropped explicitly too; no .nspawn settings file may add it (--settings=no).
    setsid systemd-nspawn --boot --directory="$d/root" --machine="$n" --register=no --keep-unit \
        --network-namespace-path="/run/netns/lab-$n" --resolv-conf=off --timezone=off --link-journal=no \
        --settings=no --capability=CAP_NET_ADMIN --drop-capability=CAP_SYS_TIME --console=passive \
        >"$d/console.log" 2>&1 </dev/null 9>&- &
    p=$!
    BOOTED[$n]=$p
    echo "$p" >"$d/pid"
    # Until the background child has exec'd, it is a fork of this shell: its cmdline is lab.sh's, so `running`
    # does not know it yet, and a wait_ssh that asked in that instant took the host for stopped (CI saw
    # "node2 stopped while booting" with an empty console log). Wait for the exec, or for the child's end.
    for _ in $(seq 1 100); do
        running "$n" && break
        kill -0 "$p" 2>/dev/null || break
        sleep 0.05
    done
}

ssh_opts() {
    SSH_OPTS=(-q -i "$KEY" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
        -o ConnectTimeout=5 -o LogLevel=ERROR -o ServerAliveInterval=15 -o ServerAliveCountMax=4)
}

# lab_ssh HOST [CMD...]; LAB_SSH_TTY=1 asks for a terminal (an interactive shell).
lab_ssh() {
    local n=$1 ip
    shift
    ip=$(host_ip "$n")
    check_route "$n"
    ssh_opts
    [ "${LAB_SSH_TTY:-0}" != 1 ] || SSH_OPTS+=(-t)
    # shellcheck disable=SC2029 # the command runs on the host, as ssh does
    ssh "${SSH_OPTS[@]}" "root@$ip" "$@"
}

console_tail() { tail -n 25 "$(hdir "$1")/console.log" 2>/dev/null | sed 's/^/    /'; }

# Exit status of this shell's systemd-nspawn for a host that stopped (booted by this lab.sh), else "unknown".
nspawn_status() {
    local p st=unknown
    p=${BOOTED[$1]:-}
    if [ -n "$p" ] && ! kill -0 "$p" 2>/dev/null; then wait "$p" 2>/dev/null && st=0 || st=$?; fi
    echo "$st"
}

wait_ssh() {
    local n=$1 t0=$SECONDS boots=1
    while ! lab_ssh "$n" true </dev/null 2>/dev/null; do
        if ! running "$n"; then
            sleep 0.5
            running "$n" || {
                local st
                st=$(nspawn_status "$n")
                # One more boot, said in the log: the suite's next tests need the host, and the log keeps the evidence.
                [ "$boots" -ge 2 ] || {
                    log "$n: systemd-nspawn ended while booting (exit status $st); console log tail:
$(console_tail "$n")
[lab] $n: booting it once more"
                    boots=2
                    boot_host "$n"
                    continue
                }
                die "$n stopped while booting, twice (systemd-nspawn exit status $st); console log tail:
$(console_tail "$n")"
            }
        fi
        [ $((SECONDS - t0)) -lt "$SSH_WAIT" ] || die "$n: sshd did not answer in ${SSH_WAIT}s; console log tail:
$(console_tail "$n")"
        sleep 0.5
    done
}

wait_systemd() {
    local n=$1 st
    st=$(lab_ssh "$n" "timeout $SYSTEMD_WAIT systemctl is-system-running --wait 2>/dev/null; true" </dev/null || true)
    case "$st" in
        running) ;;
        degraded) log "$n: systemd degraded; failed units: $(failed_units "$n")" ;;
        *) die "$n: systemd did not finish booting in ${SYSTEMD_WAIT}s (state '${st:-?}'); jobs:
$(lab_ssh "$n" 'systemctl list-jobs --no-legend' </dev/null 2>&1 | sed 's/^/    /')" ;;
    esac
}

failed_units() { lab_ssh "$1" 'systemctl list-units --failed --plain --no-legend | cut -d" " -f1 | paste -sd" "' </dev/null 2>/dev/null || true; }

# ------------------------------------------------------------------------------------------------ commands

cmd_up() {
    local n t0 t
    t0=$(now)
    need_root
    ensure_tools
    local s used=()
    for n in "${NAMES[@]}"; do used+=("$(suite_of "$n")"); done
    t=$(now)
    for s in $(printf '%s\n' "${used[@]}" | sort -u); do build_base "$s"; done
    log "phase base image: $(since "$t")"
    ensure_limits
    t=$(now); ensure_network; log "phase network: $(since "$t")"
    echo "$((${#NAMES[@]} - 1))" >"$LAB/nodes"
    mkdir -p "$LAB/suites"
    for n in "${NAMES[@]}"; do
        s=$(suite_of "$n")
        # Another release for a host is another disk: its old layer goes.
        if [ -f "$(hdir "$n")/suite" ] && [ "$(cat "$(hdir "$n")/suite")" != "$s" ]; then
            log "$n: $(cat "$(hdir "$n")/suite") -> $s: a new disk"
            stop_host "$n" kill
            wipe "$(hdir "$n")/upper" "$(hdir "$n")/work"
            drop_netns "$n"
        fi
        echo "$s" >"$LAB/suites/$n"
    done
    for n in $(extra_hosts); do remove_host "$n"; done
    t=$(now)
    for n in "${NAMES[@]}"; do boot_host "$n"; done
    log "phase boot (mounts, namespaces, nspawn): $(since "$t")"
    t=$(now)
    for n in "${NAMES[@]}"; do wait_ssh "$n"; done
    log "phase ssh wait: $(since "$t")"
    t=$(now)
    for n in "${NAMES[@]}"; do wait_systemd "$n"; done
    log "phase systemd wait: $(since "$t")"
    for n in "${NAMES[@]}"; do grep -q "^$(host_ip "$n")," "$KNOWN_HOSTS" 2>/dev/null || trust_host "$n"; done
    log "up: ${#NAMES[@]} hosts in $(since "$t0")"
}

# A host beyond the current count: stopped, out of the network; its disk is kept.
remove_host() {
    local n=$1
    log "$n: not in this lab of ${#NAMES[@]} hosts: stopping it"
    stop_host "$n" kill
    drop_netns "$n"
}

# A stopped host's network namespace goes with its disk: what ran inside (a firewall's nftables ruleset, links,
# sysctls) lives in the namespace, not on the disk, and a pristine host must not inherit it. up makes a new one.
drop_netns() {
    local n=$1
    [ -n "$(foreign_pids "$n")" ] && return 0
    ip netns del "lab-$n" 2>/dev/null || rm -f "/run/netns/lab-$n"
    ip link del "vl-$n" 2>/dev/null || true
}

# reset [HOST...]: the given hosts (default all) back to pristine: killed at once (their disk is dropped),
# overlay layer wiped, booted again.
cmd_reset() {
    need_root
    local n t0 hosts=("$@")
    t0=$(now)
    [ ${#hosts[@]} -gt 0 ] || hosts=("${NAMES[@]}")
    for n in "${hosts[@]}"; do host_ip "$n" >/dev/null; done
    for n in "${hosts[@]}"; do stop_host "$n" kill & done
    wait
    for n in "${hosts[@]}"; do
        wipe "$(hdir "$n")/upper" "$(hdir "$n")/work"
        drop_netns "$n"
    done
    log "phase stop + wipe: $(since "$t0")"
    cmd_up
    log "reset ${hosts[*]}: $(since "$t0")"
}

cmd_down() {
    need_root
    local n f inuse=() all
    mapfile -t all < <(printf '%s\n' "${NAMES[@]}"; extra_hosts)
    for n in "${all[@]}"; do stop_host "$n" halt & done
    wait
    for n in "${all[@]}"; do
        f=$(foreign_pids "$n")
        if [ -n "$f" ]; then
            # shellcheck disable=SC2086
            log "namespace lab-$n is still used by processes that are not this lab's; left in place: $(describe_pids $f)"
            inuse+=("$n")
            continue
        fi
        ip netns del "lab-$n" 2>/dev/null || rm -f "/run/netns/lab-$n"
        ip link del "vl-$n" 2>/dev/null || true
    done
    if [ ${#inuse[@]} -gt 0 ]; then
        die "down incomplete: another lab instance uses ${inuse[*]}; bridge, NAT rules and ip_forward left as they are"
    fi
    ip link del "$BRIDGE" 2>/dev/null || true
    remove_rules
    if [ -f "$LAB/inotify_instances.before" ]; then
        cat "$LAB/inotify_instances.before" >/proc/sys/fs/inotify/max_user_instances
        rm -f "$LAB/inotify_instances.before"
    fi
    if [ -f "$LAB/ip_forward.before" ]; then
        cat "$LAB/ip_forward.before" >/proc/sys/net/ipv4/ip_forward
        rm -f "$LAB/ip_forward.before"
    fi
    if [ -f "$LAB/run-netns.mount" ]; then
        if mountpoint -q /run/netns && [ -z "$(ls -A /run/netns)" ]; then umount /run/netns; fi
        rm -f "$LAB/run-netns.mount"
    fi
    log "down: hosts stopped; namespaces, links, mounts and NAT/forward rules removed (disks kept in $LAB/hosts)"
}

# Resident memory of all of a host's processes, in MiB.
host_mem() {
    local p kb=0 v
    for p in $(host_pids "$1"); do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
        kb=$((kb + ${v:-0}))
    done
    echo "$((kb / 1024))M"
}

cmd_status() {
    local n p ip st ssh fu r total=0 m os
    printf '%-7s %-14s %-10s %-8s %-4s %-10s %-6s %s\n' HOST ADDRESS OS PID SSH SYSTEMD MEM FAILED-UNITS
    for n in "${NAMES[@]}"; do
        ip=${ADDR[$n]}
        os=$(awk -F= '{gsub(/"/, "", $2)} $1 == "ID" {id = $2} $1 == "VERSION_ID" {v = $2} END {if (id) print id "-" v}' "$(hdir "$n")/root/etc/os-release" 2>/dev/null || true)
        [ -n "$os" ] || os="($(suite_of "$n"))"
        if p=$(nspawn_pid "$n"); then
            r=$(ip -4 route get "$ip" 2>&1 | head -1 || true)
            if [[ " $r " != *" dev $BRIDGE "* ]]; then
                ssh="-"; st="(no route via $BRIDGE: $r)"; fu=""
            elif st=$(lab_ssh "$n" 'systemctl is-system-running 2>/dev/null; true' </dev/null 2>/dev/null) && [ -n "$st" ]; then
                ssh=yes; fu=$(failed_units "$n")
            else
                ssh=no; st="?"; fu=""
            fi
            m=$(host_mem "$n"); total=$((total + ${m%M}))
            printf '%-7s %-14s %-10s %-8s %-4s %-10s %-6s %s\n' "$n" "$ip" "$os" "$p" "$ssh" "$st" "$m" "${fu:--}"
        elif [ -n "$(host_pids "$n")" ]; then
            printf '%-7s %-14s %-10s %-8s %-4s %-10s %-6s %s\n' "$n" "$ip" "$os" - - "orphaned (systemd-nspawn gone; up restarts it)" - -
        else
            printf '%-7s %-14s %-10s %-8s %-4s %-10s %-6s %s\n' "$n" "$ip" "$os" - - stopped - -
        fi
    done
    echo "memory: ${total}M resident in all hosts (${#NAMES[@]} hosts; MEM counts each host's processes)"
    if ip link show "$BRIDGE" >/dev/null 2>&1; then
        echo "bridge $BRIDGE: present ($(ip -4 -br addr show dev "$BRIDGE" | awk '{print $2, $3}'))"
    else
        echo "bridge $BRIDGE: absent"
    fi
    echo "namespaces: $(ip netns list 2>/dev/null | awk '/^lab-/ {print $1}' | paste -sd' ' || true)"
    echo "NAT/forward rules ($TAG): nat $(tagged_rules nat | wc -l), filter $(tagged_rules filter | wc -l); ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
    echo "overlay mounts: $(awk -v p="$LAB/hosts/" 'index($2, p) == 1 {print $2}' /proc/mounts | paste -sd' ' || true)"
}

main() {
    local c=${1:-status} h
    shift || true
    case "$c" in
        up) take_lock; cmd_up ;;
        down) take_lock; cmd_down ;;
        reset) take_lock; cmd_reset "$@" ;;
        status) cmd_status ;;
        ssh)
            [ $# -ge 1 ] || die "usage: lab.sh ssh HOST [CMD...]"
            h=$1; shift; host_ip "$h" >/dev/null
            if [ $# -eq 0 ] && [ -t 0 ]; then LAB_SSH_TTY=1 lab_ssh "$h"; else lab_ssh "$h" "$@"; fi ;;
        stop) need_root; host_ip "${1:-}" >/dev/null; take_lock; stop_host "$1" halt ;;
        start)
            need_root; host_ip "${1:-}" >/dev/null; take_lock
            # Never rebuilds the base here: that would wipe the other hosts too.
            base_current "$(suite_of "$1")" || die "no current base image for $(suite_of "$1"): run lab/lab.sh up first"
            ensure_network; boot_host "$1"; wait_ssh "$1"; wait_systemd "$1" ;;
        key) echo "$KEY" ;;
        hostkeys) cat "$KNOWN_HOSTS" ;;
        rekey) need_root; take_lock; cmd_rekey "${1:-}" ;;
        trust) host_ip "${1:-}" >/dev/null; take_lock; trust_host "$1"; host_key_lines "$1" ;;
        *) die "usage: lab.sh up|down|reset [HOST...]|status|ssh HOST [CMD...]|stop HOST|start HOST|key|hostkeys|rekey HOST|trust HOST" ;;
    esac
}

main "$@"
