#!/usr/bin/env bash
# PrivateRegistry: docker-distribution / docker-registry on 127.0.0.1:5000 behind nginx on :80.
# Params: REGISTRY_CONFIG, NGINX_CONF, HTPASSWD (empty: no basic auth), STORAGE_DIR, HEALTH_TIMEOUT (seconds);
# TLS_CERT, TLS_KEY (registryTls: nginx's certificate and key; without them such files are removed).
# The storage dir is never deleted. HTPASSWD and TLS_KEY are secrets: they are never printed.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/step.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/step.sh"
start_script registry "$0" "${1:-}"
need REGISTRY_CONFIG NGINX_CONF
[ "$ACTION" = remove ] || need HTPASSWD
STORAGE_DIR=$(param_or STORAGE_DIR /var/lib/registry)
[ -n "$STORAGE_DIR" ] || STORAGE_DIR=/var/lib/registry
[[ $STORAGE_DIR == /* ]] || die "STORAGE_DIR must be an absolute path"
SITE=/etc/nginx/conf.d/registry.conf
HTPASSWD_FILE=/etc/nginx/.ngxpasswd
TLS_CERT_FILE=/etc/nginx/tls/registry.crt
TLS_KEY_FILE=/etc/nginx/tls/registry.key
SELINUX_MARK="$STATE_DIR/registry.selinux-boolean"

# The registry's listen address (http.addr in its config; the program renders 127.0.0.1:5000).
registry_addr() {
    local a
    a=$(printf '%s\n' "${P[REGISTRY_CONFIG]}" | awk '/^[ \t]+addr:/ { v = $2; gsub(/["\047]/, "", v); print v; exit }')
    a=${a:-127.0.0.1:5000}
    case "$a" in :*) a="127.0.0.1$a" ;; 0.0.0.0:*) a="127.0.0.1:${a##*:}" ;; esac
    printf '%s' "$a"
}

# http_ok HOST PORT PATH: one bounded HTTP/1.0 request with bash's /dev/tcp (curl may be absent); true on 2xx/401.
http_ok() {
    (
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
        IFS= read -r -t 5 line <&3 || exit 1
        [[ $line =~ ^HTTP/1\.[01]\ (2[0-9][0-9]|401) ]]
    ) 2>/dev/null
}

# Waits (bounded by HEALTH_TIMEOUT) until the registry answers HTTP on /v2/.
wait_registry() {
    local addr host port timeout deadline
    addr=$(registry_addr)
    host=${addr%:*} port=${addr##*:}
    timeout=$(seconds_param HEALTH_TIMEOUT 60)
    deadline=$((SECONDS + timeout))
    until http_ok "$host" "$port" /v2/; do
        if [ $SECONDS -ge $deadline ]; then
            echo "host-topology: $REG_SVC does not answer HTTP on http://$addr/v2/ after ${timeout}s" >&2
            die_service "$REG_SVC"
        fi
        sleep 1
    done
    echo "healthy $REG_SVC http://$addr/v2/"
}

# EL with SELinux enforcing: nginx may not connect to 127.0.0.1:5000 unless httpd_can_network_connect is on.
selinux_allow_proxy() {
    command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled 2>/dev/null || return 0
    command -v getsebool >/dev/null 2>&1 || return 0
    if getsebool httpd_can_network_connect 2>/dev/null | grep -q -- '--> off'; then
        setsebool -P httpd_can_network_connect 1 || die "could not set the SELinux boolean httpd_can_network_connect"
        mkdir -p "$STATE_DIR"
        : >"$SELINUX_MARK"
        echo "changed selinux:httpd_can_network_connect on"
    fi
}

# nginx's certificate and key gone (registryTls off, or remove); CHANGED=1 if anything was there.
remove_tls() {
    local any=0
    remove_file "$TLS_CERT_FILE"; [ "$CHANGED" = 0 ] || any=1
    remove_file "$TLS_KEY_FILE"; [ "$CHANGED" = 0 ] || any=1
    rmdir "$ROOT/etc/nginx/tls" 2>/dev/null || true
    CHANGED=$any
}

case "$ACTION" in
apply)
    pkg_install "$REG_PKG" nginx
    backup_once "$REG_CONF"
    put_file "$REG_CONF" 0644 "${P[REGISTRY_CONFIG]}"
    reg_changed=$CHANGED
    if [ ! -d "$ROOT$STORAGE_DIR" ]; then mkdir -p "$ROOT$STORAGE_DIR"; echo "changed $STORAGE_DIR"; fi
    if [ -n "$REG_USER" ] && getent passwd "$REG_USER" >/dev/null; then chown "$REG_USER:" "$ROOT$STORAGE_DIR"; fi
    service_ensure "$REG_SVC" "$reg_changed"
    wait_registry

    selinux_allow_proxy
    backup_once "$SITE"
    backup_once "$HTPASSWD_FILE"
    had_site=0
    if [ -f "$ROOT$SITE" ]; then had_site=1; fi
    previous=$(cat "$ROOT$SITE" 2>/dev/null; printf x)
    put_file "$SITE" 0644 "${P[NGINX_CONF]}"
    nginx_changed=$CHANGED
    if [ -n "${P[HTPASSWD]}" ]; then
        put_file "$HTPASSWD_FILE" 0640 "${P[HTPASSWD]}" "root:$NGINX_GROUP"
    else
        remove_file "$HTPASSWD_FILE"
    fi
    [ "$CHANGED" = 1 ] && nginx_changed=1
    if [ -n "${P[TLS_CERT]:-}" ]; then
        put_file "$TLS_CERT_FILE" 0644 "${P[TLS_CERT]}"
        [ "$CHANGED" = 1 ] && nginx_changed=1
        put_file "$TLS_KEY_FILE" 0600 "${P[TLS_KEY]}"
        [ "$CHANGED" = 1 ] && nginx_changed=1
    else
        remove_tls
        [ "$CHANGED" = 1 ] && nginx_changed=1
    fi
    if ! out=$(nginx -t 2>&1); then
        if [ $had_site = 1 ]; then printf '%s' "${previous%x}" >"$ROOT$SITE"; else rm -f "$ROOT$SITE"; fi
        die "nginx rejected $SITE (previous version put back): $out"
    fi
    service_ensure nginx "$nginx_changed" reload
    ;;
remove)
    restore_backup "$SITE"
    restore_backup "$HTPASSWD_FILE"
    remove_tls
    if unit_active nginx; then systemctl reload nginx || true; fi
    service_off "$REG_SVC"
    restore_backup "$REG_CONF"
    if [ -e "$SELINUX_MARK" ]; then
        setsebool -P httpd_can_network_connect 0 && rm -f "$SELINUX_MARK" && echo "changed selinux:httpd_can_network_connect off"
    fi
    ;;
check)
    check_packages "$REG_PKG" nginx
    check_file "$REG_CONF" "${P[REGISTRY_CONFIG]}" 0644
    check_file "$SITE" "${P[NGINX_CONF]}" 0644
    if [ -n "${P[HTPASSWD]}" ]; then check_file "$HTPASSWD_FILE" "${P[HTPASSWD]}" 0640 secret; else check_absent "$HTPASSWD_FILE"; fi
    if [ -n "${P[TLS_CERT]:-}" ]; then
        check_file "$TLS_CERT_FILE" "${P[TLS_CERT]}" 0644
        check_file "$TLS_KEY_FILE" "${P[TLS_KEY]}" 0600 secret
    else
        check_absent "$TLS_CERT_FILE"
        check_absent "$TLS_KEY_FILE"
    fi
    check_running "$REG_SVC"
    check_running nginx
    ;;
esac
finish
