#!/usr/bin/env bash
# PrivateRegistry: docker-distribution / docker-registry on 127.0.0.1:5000 behind nginx on :80.
# Params: REGISTRY_CONFIG, NGINX_CONF, HTPASSWD (empty: no basic auth), STORAGE_DIR. Storage is never deleted.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_script "$0" "${1:-}"
need REGISTRY_CONFIG NGINX_CONF HTPASSWD
STORAGE_DIR=${P[STORAGE_DIR]:-/var/lib/registry}
SITE=/etc/nginx/conf.d/registry.conf
HTPASSWD_FILE=/etc/nginx/.ngxpasswd

# Waits (bounded) until the registry answers HTTP on 127.0.0.1:5000/v2/.
wait_registry() {
    [ "${HOSTINFRA_SKIP_HTTP_WAIT:-0}" = 1 ] && return 0
    local i
    for i in $(seq 1 "${P[HEALTH_TIMEOUT]:-60}"); do
        if (exec 3<>/dev/tcp/127.0.0.1/5000 && printf 'GET /v2/ HTTP/1.0\r\n\r\n' >&3 && head -1 <&3 | grep -q '^HTTP/1\.[01] [24]') 2>/dev/null; then
            return 0
        fi
        sleep 1
    done
    die_service "$REG_SVC"
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

    backup_once "$SITE"
    backup_once "$HTPASSWD_FILE"
    previous=$(cat "$ROOT$SITE" 2>/dev/null; printf x)
    put_file "$SITE" 0644 "${P[NGINX_CONF]}"
    nginx_changed=$CHANGED
    if [ -n "${P[HTPASSWD]}" ]; then
        put_file "$HTPASSWD_FILE" 0640 "${P[HTPASSWD]}" "root:$NGINX_GROUP"
    else
        remove_file "$HTPASSWD_FILE"
    fi
    [ "$CHANGED" = 1 ] && nginx_changed=1
    if ! out=$(nginx -t 2>&1); then
        printf '%s' "${previous%x}" >"$ROOT$SITE"
        die "nginx rejected $SITE (previous version put back): $out"
    fi
    service_ensure nginx "$nginx_changed" reload
    ;;
remove)
    restore_backup "$SITE"
    restore_backup "$HTPASSWD_FILE"
    if unit_active nginx; then systemctl reload nginx || true; fi
    service_off "$REG_SVC"
    restore_backup "$REG_CONF"
    ;;
check)
    check_file "$REG_CONF" "${P[REGISTRY_CONFIG]}"
    check_file "$SITE" "${P[NGINX_CONF]}"
    if [ -n "${P[HTPASSWD]}" ]; then check_file "$HTPASSWD_FILE" "${P[HTPASSWD]}" 0640; else check_absent "$HTPASSWD_FILE"; fi
    check_running "$REG_SVC"
    check_running nginx
    ;;
esac
finish
