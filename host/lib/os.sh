#!/usr/bin/env bash
# The OS family and its one table of package manager, packages, services and paths (sourced by step.sh, never
# run). The family table's names are used by the scripts that source the library.
# shellcheck disable=SC2034
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
