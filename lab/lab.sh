#!/usr/bin/env bash
# The local lab: the documented three hosts as Debian 12 machines booted with systemd (systemd-nspawn), each
# in its own network namespace on a bridge, at the documented addresses, with root SSH by a key the lab
# generates and NAT so they install packages from Debian's mirror as real hosts do.
#
#   lab/lab.sh up        build the base image once (cached), create network + hosts, boot, wait for sshd
#   lab/lab.sh reset [HOST...]  back to pristine: stop, drop the overlay layer, boot again (seconds)
#   lab/lab.sh down      stop the hosts, remove every namespace, link, mount and NAT rule the lab added
#   lab/lab.sh status    hosts, pids, SSH, systemd state; bridge and NAT
#   lab/lab.sh ssh HOST [CMD...]   run as root on HOST (master, node1, node2); stdin is passed through
#   lab/lab.sh stop|start HOST     stop (halt) or boot one host, keeping its disk
#   lab/lab.sh key       print the private key path
#
# The containers never get CAP_SYS_TIME: a time daemon inside must not move this machine's clock.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LAB="${LAB_DIR:-$REPO/.lab}"
BRIDGE=labbr0
GATEWAY=192.168.100.1
SUBNET=192.168.100.0/24
TAG=host-topology-lab
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
KEY="$LAB/ssh/id_ed25519"
declare -A ADDR=([master]=192.168.100.2 [node1]=192.168.100.3 [node2]=192.168.100.4)
NAMES=(master node1 node2)

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] error: %s\n' "$*" >&2; exit 1; }
timed() { local t0=$SECONDS; "$@"; log "$1: $((SECONDS - t0))s"; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (network namespaces, mounts, nspawn)"; }

ensure_tools() {
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
    command -v iptables >/dev/null || missing+=(iptables)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v ssh >/dev/null || missing+=(openssh-client)
    command -v ssh-keygen >/dev/null || missing+=(openssh-client)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

host_ip() { [ -n "${ADDR[$1]:-}" ] || die "unknown host '$1' (hosts: ${NAMES[*]})"; echo "${ADDR[$1]}"; }
hdir() { echo "$LAB/hosts/$1"; }

# The upstream resolver the hosts use: the machine's, unless it is a loopback stub (unreachable from a netns).
upstream_dns() {
    local ns
    ns=$(awk '/^nameserver/ {print $2; exit}' /etc/resolv.conf)
    case "$ns" in 127.*|::1|"") ns=$(resolvectl dns 2>/dev/null | awk '{for (i=2;i<=NF;i++) if ($i !~ /^127\./) {print $i; exit}}') ;; esac
    [ -n "$ns" ] || die "no usable DNS server for the lab hosts"
    echo "$ns"
}

build_base() {
    if [ -f "$LAB/base/.complete" ]; then return; fi
    mkdir -p "$LAB/ssh"
    [ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C "$TAG" -f "$KEY"
    local b="$LAB/base.tmp"
    rm -rf "$LAB/base"
    if [ ! -f "$b/.debootstrap-done" ]; then
        rm -rf "$b"
        log "debootstrap $SUITE (first time only)"
        debootstrap --variant=minbase \
            --include=systemd,systemd-sysv,dbus,libpam-systemd,openssh-server,iproute2,ca-certificates,procps,iputils-ping,netbase \
            "$SUITE" "$b" "$MIRROR" >"$LAB/debootstrap.log" 2>&1 || die "debootstrap failed: $(tail -5 "$LAB/debootstrap.log")"
        touch "$b/.debootstrap-done"
    fi
    cat >"$b/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
    rm -f "$b"/etc/ssh/ssh_host_*
    install -d -m 0700 "$b/root/.ssh"
    install -m 0600 "$KEY.pub" "$b/root/.ssh/authorized_keys"
    cat >"$b/etc/ssh/sshd_config.d/lab.conf" <<EOF
PermitRootLogin prohibit-password
UseDNS no
EOF
    echo "nameserver $(upstream_dns)" >"$b/etc/resolv.conf"
    : >"$b/etc/machine-id"
    rm -f "$b/etc/hostname"
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$b/etc/hosts"
    # A container has no console login to offer and no kernel modules to load.
    for u in getty@tty1.service console-getty.service systemd-modules-load.service; do
        ln -sf /dev/null "$b/etc/systemd/system/$u"
    done
    apt-get -o Dir="$b" clean >/dev/null 2>&1 || rm -rf "$b"/var/cache/apt/archives/*.deb
    touch "$b/.complete"
    mv "$b" "$LAB/base"
}

ensure_network() {
    local r
    r=$(ip -4 route show "$SUBNET" 2>/dev/null || true)
    if [ -n "$r" ] && ! grep -q "dev $BRIDGE" <<<"$r"; then
        die "refusing: $SUBNET is already routed elsewhere on this machine ($r)"
    fi
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
    fi
    grep -q "$GATEWAY/24" <<<"$(ip addr show dev "$BRIDGE")" || ip addr add "$GATEWAY/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    [ -f "$LAB/ip_forward.before" ] || cat /proc/sys/net/ipv4/ip_forward >"$LAB/ip_forward.before"
    echo 1 >/proc/sys/net/ipv4/ip_forward
    local out
    out=$(ip -4 route show default | awk '{print $5; exit}')
    [ -n "$out" ] || die "no default route on this machine: the hosts could not reach Debian's mirror"
    rule nat POSTROUTING -s "$SUBNET" ! -d "$SUBNET" -o "$out" -j MASQUERADE
    rule filter FORWARD -i "$BRIDGE" -s "$SUBNET" -j ACCEPT
    rule filter FORWARD -o "$BRIDGE" -d "$SUBNET" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    echo "$out" >"$LAB/nat.out"
}

# rule TABLE CHAIN SPEC...: add the tagged rule once.
rule() {
    local t=$1 c=$2
    shift 2
    iptables -t "$t" -C "$c" "$@" -m comment --comment "$TAG" 2>/dev/null ||
        iptables -t "$t" -I "$c" 1 "$@" -m comment --comment "$TAG"
}

# Deletes every rule carrying the lab's tag.
remove_rules() {
    local t line
    for t in nat filter; do
        while line=$(iptables -t "$t" -S 2>/dev/null | grep -E -- "--comment \"?$TAG\"?( |\$)" | sed -n 1p) && [ -n "$line" ]; do
            # shellcheck disable=SC2086
            eval "iptables -t $t ${line/-A /-D }"
        done
    done
}

# Refuse any traffic unless the route to the host goes through the lab bridge.
check_route() {
    local ip
    ip=$(host_ip "$1")
    grep -q "dev $BRIDGE" <<<"$(ip route get "$ip" 2>/dev/null)" ||
        die "refusing to send traffic to $ip: its route does not go through $BRIDGE ($(ip route get "$ip" 2>&1 | head -1))"
}

mount_host() {
    local n=$1 d
    d=$(hdir "$n")
    mkdir -p "$d/upper" "$d/work" "$d/root"
    if ! mountpoint -q "$d/root"; then
        mount -t overlay "lab-$n" -o "lowerdir=$LAB/base,upperdir=$d/upper,workdir=$d/work" "$d/root"
    fi
    if [ ! -f "$d/upper/.lab-created" ]; then
        echo "lab-$n" >"$d/root/etc/hostname"
        printf '127.0.1.1\tlab-%s\n' "$n" >>"$d/root/etc/hosts"
        ssh-keygen -q -A -f "$d/root"
        touch "$d/upper/.lab-created"
    fi
}

ensure_netns() {
    local n=$1 ns="lab-$1" ip
    ip=$(host_ip "$n")
    [ -e "/run/netns/$ns" ] || ip netns add "$ns"
    if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
        ip link del "vl-$n" 2>/dev/null || true
        ip link add "vl-$n" type veth peer name eth0 netns "$ns"
    fi
    ip link set "vl-$n" master "$BRIDGE" up
    ip -n "$ns" link set lo up
    grep -q "$ip/24" <<<"$(ip -n "$ns" addr show dev eth0)" || ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route replace default via "$GATEWAY"
}

running() {
    local p
    p=$(cat "$(hdir "$1")/pid" 2>/dev/null) || return 1
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null && grep -q systemd-nspawn "/proc/$p/cmdline" 2>/dev/null
}

boot_host() {
    local n=$1 d
    d=$(hdir "$n")
    running "$n" && return
    mount_host "$n"
    ensure_netns "$n"
    # No --capability: nspawn's default set has no CAP_SYS_TIME.
    setsid systemd-nspawn --boot --directory="$d/root" --machine="$n" --register=no --keep-unit \
        --network-namespace-path="/run/netns/lab-$n" --resolv-conf=off --timezone=off --link-journal=no \
        --console=passive >"$d/console.log" 2>&1 </dev/null &
    echo $! >"$d/pid"
}

lab_ssh() {
    local n=$1
    shift
    check_route "$n"
    ssh -q -i "$KEY" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o ConnectTimeout=5 -o LogLevel=ERROR "root@$(host_ip "$n")" "$@"
}

wait_ssh() {
    local n=$1 i
    for i in $(seq 1 120); do
        if lab_ssh "$n" true </dev/null 2>/dev/null; then
            lab_ssh "$n" 'timeout 60 systemctl is-system-running --wait >/dev/null 2>&1 || true' </dev/null
            return
        fi
        running "$n" || die "$n stopped while booting: $(tail -20 "$(hdir "$n")/console.log")"
        sleep 1
    done
    die "$n: sshd did not answer in 120s: $(tail -20 "$(hdir "$n")/console.log")"
}

stop_host() {
    local n=$1 d p i
    d=$(hdir "$n")
    if running "$n"; then
        p=$(cat "$d/pid")
        kill -TERM "$p" 2>/dev/null || true # nspawn: orderly shutdown of the container
        for i in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 1; done
        kill -KILL "$p" 2>/dev/null || true
    fi
    rm -f "$d/pid"
    if mountpoint -q "$d/root" 2>/dev/null; then umount "$d/root" || umount -l "$d/root"; fi
}

cmd_up() {
    need_root
    ensure_tools
    timed build_base
    timed ensure_network
    local n
    for n in "${NAMES[@]}"; do boot_host "$n"; done
    local t0=$SECONDS
    for n in "${NAMES[@]}"; do wait_ssh "$n"; done
    log "boot + ssh: $((SECONDS - t0))s"
    cmd_status
}

# reset [HOST...]: the given hosts (default all) back to pristine.
cmd_reset() {
    need_root
    local n d hosts=("$@")
    [ ${#hosts[@]} -gt 0 ] || hosts=("${NAMES[@]}")
    for n in "${hosts[@]}"; do host_ip "$n" >/dev/null; stop_host "$n" & done
    wait
    for n in "${hosts[@]}"; do
        d=$(hdir "$n")
        rm -rf "$d/upper" "$d/work"
    done
    cmd_up
}

cmd_down() {
    need_root
    local n
    for n in "${NAMES[@]}"; do stop_host "$n" & done
    wait
    for n in "${NAMES[@]}"; do
        ip netns del "lab-$n" 2>/dev/null || true
        ip link del "vl-$n" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    remove_rules
    if [ -f "$LAB/ip_forward.before" ]; then
        cat "$LAB/ip_forward.before" >/proc/sys/net/ipv4/ip_forward
        rm -f "$LAB/ip_forward.before"
    fi
    log "down: hosts stopped; namespaces, links, mounts and NAT rules removed (disks kept in $LAB/hosts)"
}

cmd_status() {
    local n st
    printf '%-7s %-14s %-8s %-6s %s\n' HOST ADDRESS PID SSH SYSTEMD
    for n in "${NAMES[@]}"; do
        if running "$n"; then
            st=$(lab_ssh "$n" 'systemctl is-system-running 2>/dev/null; true' </dev/null 2>/dev/null || true)
            printf '%-7s %-14s %-8s %-6s %s\n' "$n" "${ADDR[$n]}" "$(cat "$(hdir "$n")/pid")" "$([ -n "$st" ] && echo yes || echo no)" "${st:-?}"
        else
            printf '%-7s %-14s %-8s %-6s %s\n' "$n" "${ADDR[$n]}" - no stopped
        fi
    done
    ip link show "$BRIDGE" >/dev/null 2>&1 && echo "bridge $BRIDGE: up" || echo "bridge $BRIDGE: absent"
    echo "NAT rules: $(iptables -t nat -S 2>/dev/null | grep -cE -- "--comment \"?$TAG\"?( |\$)" || true)"
}

main() {
    local c=${1:-status}
    shift || true
    case "$c" in
        up) cmd_up ;;
        down) cmd_down ;;
        reset) cmd_reset "$@" ;;
        status) cmd_status ;;
        ssh) [ $# -ge 1 ] || die "usage: lab.sh ssh HOST [CMD...]"; local h=$1; shift; host_ip "$h" >/dev/null; lab_ssh "$h" "$@" ;;
        stop) need_root; host_ip "${1:?host}" >/dev/null; stop_host "$1" ;;
        start) need_root; host_ip "${1:?host}" >/dev/null; ensure_network; boot_host "$1"; wait_ssh "$1" ;;
        key) echo "$KEY" ;;
        *) die "usage: lab.sh up|down|reset [HOST...]|status|ssh HOST [CMD]|stop HOST|start HOST|key" ;;
    esac
}

main "$@"
