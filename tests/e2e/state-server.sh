#!/usr/bin/env bash
# A PostgreSQL server of this project's own for the team's shared Pulumi state (PULUMI_BACKEND_URL=postgres://...).
#
#   tests/e2e/state-server.sh up       install Debian's `postgresql` if missing, create the cluster on first use, start it
#                                    (a no-op when it already runs; data kept across down/up; a stale pid file from a
#                                    crash is cleared)
#   tests/e2e/state-server.sh down     stop the server, keep the data
#   tests/e2e/state-server.sh url      print the backend URL (one line; the only place the password is shown)
#                   url --no-password   the same URL without the password, for use with
#                                    PGPASSFILE=.state-server/pgpass (Pulumi's driver reads it): error messages and
#                                    ~/.pulumi/workspaces/*.json then never hold the password
#   tests/e2e/state-server.sh status   running or not, port, data dir, sizes of the state tables
#                                    (exit 0 when running, 3 when not)
#
#   export PULUMI_BACKEND_URL="$(tests/e2e/state-server.sh url)"
#   or: export PGPASSFILE="$PWD/.state-server/pgpass" PULUMI_BACKEND_URL="$(tests/e2e/state-server.sh url --no-password)"
#
# Everything lives in .state-server/ in the repo (not in git): data/ (the cluster, owned by the server's OS user),
# password and pgpass (mode 0600), port, server.log, run/ (the Unix socket, for the script's own admin connections).
# The cluster is a plain initdb/pg_ctl one: it is not registered with Debian's pg_lsclusters, and Debian's default
# cluster (15/main, port 5432) is neither used nor touched. It listens on 127.0.0.1 only; database pulumi_state,
# role pulumi (scram-sha-256 password).
#
#   STATE_SERVER_PORT   TCP port (default: the one recorded at the last `up`, else 5433)
#   STATE_SERVER_DIR    where it all lives (default: <repo>/.state-server)
#
# Run as root: the server then runs as the `postgres` user (initdb refuses root), and `up` may apt-get install.
# Run as another user (PostgreSQL already installed): the server runs as that user.
# Errors end the script with a non-zero exit and one line on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${STATE_SERVER_DIR:-$ROOT/.state-server}"
[[ "$STATE_DIR" == /* ]] || STATE_DIR="$PWD/$STATE_DIR"
DATA="$STATE_DIR/data"
PWFILE="$STATE_DIR/password"
PGPASS="$STATE_DIR/pgpass"
PORTFILE="$STATE_DIR/port"
LOGFILE="$STATE_DIR/server.log"
DEFAULT_PORT=5433
DB=pulumi_state
DB_USER=pulumi

# Our own connections must not be steered by the caller's libpq environment.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE PGSERVICEFILE PGOPTIONS PGSSLMODE

log() { printf '[state-server] %s\n' "$*"; }
warn() { printf 'state-server.sh: warning: %s\n' "$*" >&2; }
fail() { printf 'state-server.sh: %s\n' "$*" >&2; exit 1; }

# ---- where things are -------------------------------------------------------------------------------------------

# The port to use when starting: STATE_SERVER_PORT, else the recorded one, else the default.
configured_port() {
  local p="${STATE_SERVER_PORT:-}"
  if [[ -z "$p" && -r "$PORTFILE" ]]; then p="$(<"$PORTFILE")"; fi
  p="${p:-$DEFAULT_PORT}"
  if ! [[ "$p" =~ ^[0-9]{1,5}$ ]] || (( 10#$p < 1024 || 10#$p > 65535 )); then
    fail "invalid port '$p' (STATE_SERVER_PORT must be a number from 1024 to 65535)"
  fi
  echo "$((10#$p))"
}

# The Unix socket directory: run/ next to the data, unless that path is too long for a socket (108 bytes).
socket_dir() {
  local d="$STATE_DIR/run"
  if (( ${#d} > 80 )); then
    d="/tmp/.pulumi-state-server-$(printf '%s' "$STATE_DIR" | sha256sum | cut -c1-12)"
  fi
  echo "$d"
}

# The PostgreSQL binaries: those of the data's version once it exists, else the newest installed.
pg_bindir() {
  local v="" d
  if [[ -f "$DATA/PG_VERSION" ]]; then
    v="$(<"$DATA/PG_VERSION")"
    [[ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ]] \
      || fail "the data in $DATA is PostgreSQL $v but /usr/lib/postgresql/$v/bin is missing (apt-get install postgresql-$v)"
  else
    for d in /usr/lib/postgresql/*/bin/initdb; do
      [[ -x "$d" ]] || continue
      d="${d%/bin/initdb}"; d="${d##*/}"
      if [[ -z "$v" ]] || (( d > v )); then v="$d"; fi
    done
    [[ -n "$v" ]] || return 1
  fi
  echo "/usr/lib/postgresql/$v/bin"
}

# The OS user the server runs as: the data's owner once it exists; else postgres for root, else the caller.
server_user() {
  if [[ -d "$DATA" ]]; then stat -c %U "$DATA"
  elif (( EUID == 0 )); then echo postgres
  else id -un
  fi
}

# as_owner CMD...: run CMD as the server's OS user, from / (the caller's cwd may be closed to that user).
as_owner() {
  if [[ "$(id -un)" == "$OWNER" ]]; then
    (cd / && "$@")
  elif (( EUID == 0 )); then
    (cd / && runuser -u "$OWNER" -- "$@")
  else
    fail "the server runs as '$OWNER'; run this as root or as $OWNER"
  fi
}

# The pid of this data dir's postmaster if it runs, else nothing. A postmaster.pid whose pid is dead or belongs to
# another process (pid reuse after a crash) does not count.
server_pid() {
  local pid
  [[ -f "$DATA/postmaster.pid" ]] || return 0
  pid="$(head -n1 "$DATA/postmaster.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ && -d "/proc/$pid" ]] || return 0
  [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null || true)" == "$(readlink -f "$DATA")" ]] || return 0
  echo "$pid"
}

# The port the running server listens on (line 4 of postmaster.pid).
running_port() { sed -n 4p "$DATA/postmaster.pid"; }

# ---- steps of `up` ----------------------------------------------------------------------------------------------

ensure_postgres() {
  if BIN="$(pg_bindir)"; then return 0; fi
  (( EUID == 0 )) || fail "PostgreSQL is not installed; as root: apt-get install postgresql (or run this script as root)"
  log "installing Debian package postgresql (log: $STATE_DIR/apt.log)"
  local apt=(apt-get -o DPkg::Lock::Timeout=600 -q -y)
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install postgresql >"$STATE_DIR/apt.log" 2>&1; then
    "${apt[@]}" update >>"$STATE_DIR/apt.log" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install postgresql >>"$STATE_DIR/apt.log" 2>&1 \
      || fail "apt-get install postgresql failed: $(tail -n1 "$STATE_DIR/apt.log") (log: $STATE_DIR/apt.log)"
  fi
  BIN="$(pg_bindir)" || fail "postgresql is installed but no /usr/lib/postgresql/*/bin/initdb was found"
}

# A fresh cluster, built in data.new/ and renamed, so a crash halfway leaves no half-made data/.
init_cluster() {
  local tmp="$DATA.new" group
  log "creating the cluster in $DATA (PostgreSQL $(basename "$(dirname "$BIN")"), runs as $OWNER)"
  id -u "$OWNER" >/dev/null 2>&1 || fail "user '$OWNER' does not exist (is the postgresql package installed?)"
  rm -rf "$tmp"
  mkdir -m 0700 "$tmp"
  if (( EUID == 0 )); then group="$(id -gn "$OWNER")"; chown "$OWNER:$group" "$tmp"; fi
  as_owner test -w "$tmp" -a -x "$tmp" \
    || fail "user $OWNER cannot reach $tmp: every parent directory must be searchable by it (chmod o+x)"
  as_owner "$BIN/initdb" -D "$tmp" -E UTF8 --locale=C --auth-local=peer --auth-host=scram-sha-256 \
      >"$STATE_DIR/initdb.log" 2>&1 \
    || fail "initdb failed: $(tail -n1 "$STATE_DIR/initdb.log") (log: $STATE_DIR/initdb.log)"
  printf "\n# Port, addresses and socket: written by tests/e2e/state-server.sh at each start.\ninclude_if_exists = 'state-server.conf'\n" \
    | as_owner tee -a "$tmp/postgresql.conf" >/dev/null
  mv "$tmp" "$DATA"
}

check_port_free() {
  local port="$1" ver name cport rest
  if command -v pg_lsclusters >/dev/null 2>&1; then
    while read -r ver name cport rest; do
      [[ "$cport" == "$port" ]] \
        && fail "port $port is the port of Debian's cluster $ver/$name; set STATE_SERVER_PORT to another port"
    done < <(pg_lsclusters -h 2>/dev/null || true)
  fi
  # shellcheck disable=SC2016  # $1 is expanded by the inner bash
  if timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$port" 2>/dev/null; then
    fail "port $port on 127.0.0.1 is already in use by another process; set STATE_SERVER_PORT to a free port"
  fi
}

# With the server down, a postmaster.pid or socket lock left by a crash only gets in the way.
clear_stale() {
  local sock="$1" old
  if [[ -f "$DATA/postmaster.pid" ]]; then
    old="$(head -n1 "$DATA/postmaster.pid" 2>/dev/null || true)"
    log "removing the stale $DATA/postmaster.pid (pid ${old:-?} is not this server: a crash?)"
    rm -f "$DATA/postmaster.pid"
  fi
  rm -f "$sock"/.s.PGSQL.*
}

write_conf() {
  local port="$1" sock="$2"
  as_owner tee "$DATA/state-server.conf" >/dev/null <<EOF
# Written by tests/e2e/state-server.sh at each start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '${sock//\'/\'\'}'
unix_socket_permissions = 0700
EOF
}

last_log_error() {
  local line
  line="$(grep -E 'FATAL|PANIC|ERROR' "$LOGFILE" 2>/dev/null | tail -n1 || true)"
  echo "${line:-no error in the log}"
}

start_server() {
  local port="$1" sock="$2"
  if (( EUID == 0 )); then
    install -d -m 0700 -o "$OWNER" -g "$(id -gn "$OWNER")" "$sock"
    touch "$LOGFILE"; chown "$OWNER" "$LOGFILE"; chmod 0600 "$LOGFILE"
  else
    install -d -m 0700 "$sock"
    touch "$LOGFILE"; chmod 0600 "$LOGFILE"
  fi
  write_conf "$port" "$sock"
  # env -i: the long-lived postmaster keeps none of the caller's environment (PULUMI_CONFIG_PASSPHRASE, ...).
  # 9>&-: nor the lock of take_lock (it would hold it for as long as it runs).
  as_owner env -i PATH=/usr/bin:/bin LANG=C "$BIN/pg_ctl" -D "$DATA" -l "$LOGFILE" -w -t 60 start >/dev/null 2>&1 9>&- \
    || fail "the server did not start: $(last_log_error) (log: $LOGFILE)"
}

psql_admin() {
  as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U "$OWNER" "$@"
}

# Role, database and password, made or repaired at each start (cheap); the password is never on a command line.
ensure_db() {
  local pw
  if [[ ! -s "$PWFILE" ]]; then
    log "generating the password of role $DB_USER into $PWFILE"
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$PWFILE.new" && mv "$PWFILE.new" "$PWFILE")
  fi
  chmod 0600 "$PWFILE"
  pw="$(<"$PWFILE")"
  [[ "$pw" =~ ^[0-9a-f]{16,}$ ]] || fail "$PWFILE does not hold a generated password; delete it and run up again"
  (umask 077 && printf '127.0.0.1:*:%s:%s:%s\n' "$DB" "$DB_USER" "$pw" >"$PGPASS.new" && mv "$PGPASS.new" "$PGPASS")
  psql_admin -d postgres >/dev/null <<SQL || fail "could not create role $DB_USER / database $DB (log: $LOGFILE)"
SELECT 'CREATE ROLE $DB_USER LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER')\gexec
ALTER ROLE $DB_USER WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$pw';
SELECT 'CREATE DATABASE $DB OWNER $DB_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB')\gexec
REVOKE ALL ON DATABASE $DB FROM PUBLIC;
GRANT ALL ON DATABASE $DB TO $DB_USER;
SQL
  # The way Pulumi will connect: TCP, password (via the environment of this one psql, readable only by its user).
  PGPASSWORD="$pw" "$BIN/psql" -X -q -At -h 127.0.0.1 -p "$PORT" -U "$DB_USER" -d "$DB" -c 'SELECT 1' >/dev/null 2>&1 \
    || fail "the server runs but $DB_USER cannot log in to $DB over 127.0.0.1:$PORT (log: $LOGFILE)"
}

# One `up`/`down` at a time.
take_lock() {
  exec 9>>"$STATE_DIR/.lock"
  flock -w 120 9 || fail "another tests/e2e/state-server.sh up/down is still running (lock: $STATE_DIR/.lock)"
}

# ---- commands ---------------------------------------------------------------------------------------------------

cmd_up() {
  local pid want
  mkdir -p "$STATE_DIR"
  chmod 0755 "$STATE_DIR"
  take_lock
  pid="$(server_pid)"
  if [[ -n "$pid" ]]; then
    PORT="$(running_port)"
    want="$(configured_port)"
    [[ -z "${STATE_SERVER_PORT:-}" || "$want" == "$PORT" ]] \
      || fail "the server already runs on port $PORT; run 'tests/e2e/state-server.sh down' first to move it to $want"
    log "already running (pid $pid, 127.0.0.1:$PORT, data $DATA)"
    return 0
  fi
  PORT="$(configured_port)"
  OWNER="$(server_user)"
  ensure_postgres
  [[ -f "$DATA/PG_VERSION" ]] || init_cluster
  OWNER="$(server_user)"
  SOCK="$(socket_dir)"
  check_port_free "$PORT"
  clear_stale "$SOCK"
  start_server "$PORT" "$SOCK"
  echo "$PORT" >"$PORTFILE"
  ensure_db
  log "running (pid $(server_pid), 127.0.0.1:$PORT, database $DB, data $DATA)"
}

cmd_down() {
  local pid
  if [[ ! -f "$DATA/PG_VERSION" ]]; then log "not set up (no $DATA); nothing to stop"; return 0; fi
  take_lock
  pid="$(server_pid)"
  if [[ -z "$pid" ]]; then log "not running (data kept in $DATA)"; return 0; fi
  OWNER="$(server_user)"
  BIN="$(pg_bindir)" || fail "no PostgreSQL binaries found to stop the server with"
  as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 \
    || fail "pg_ctl stop failed for pid $pid: $(last_log_error) (log: $LOGFILE)"
  log "stopped (pid $pid; data kept in $DATA)"
}

cmd_url() {
  local pid port pw creds
  [[ "${1:-}" == "" || "${1:-}" == "--no-password" ]] || fail "usage: tests/e2e/state-server.sh url [--no-password]"
  [[ -s "$PWFILE" ]] || fail "no password yet ($PWFILE); run 'tests/e2e/state-server.sh up' first"
  [[ -r "$PWFILE" ]] || fail "cannot read $PWFILE (mode 0600): run this as its owner or root"
  pw="$(<"$PWFILE")"
  pid="$(server_pid)"
  if [[ -n "$pid" ]]; then port="$(running_port)"
  else
    port="$(configured_port)"
    warn "the server is not running (tests/e2e/state-server.sh up)"
  fi
  creds="$DB_USER:$pw"
  [[ "${1:-}" != "--no-password" ]] || creds="$DB_USER"
  printf 'postgres://%s@127.0.0.1:%s/%s?sslmode=disable\n' "$creds" "$port" "$DB"
}

cmd_status() {
  local pid size
  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    echo "state server: not set up (no $DATA; run tests/e2e/state-server.sh up)"
    return 3
  fi
  size="$(du -sh "$DATA" 2>/dev/null | cut -f1 || true)"
  pid="$(server_pid)"
  if [[ -z "$pid" ]]; then
    if [[ -f "$DATA/postmaster.pid" ]]; then
      echo "state server: stopped (stale postmaster.pid from a crash: the next up clears it)"
    else
      echo "state server: stopped"
    fi
    echo "port:     $(configured_port) (when started)"
    echo "data:     $DATA ($size)"
    return 3
  fi
  PORT="$(running_port)"
  OWNER="$(server_user)"
  BIN="$(pg_bindir)"
  SOCK="$(socket_dir)"
  echo "state server: running (pid $pid, PostgreSQL $(<"$DATA/PG_VERSION"), as $OWNER)"
  echo "port:     127.0.0.1:$PORT"
  echo "data:     $DATA ($size)"
  echo "database: $DB ($(psql_admin -d postgres -At -c "SELECT pg_size_pretty(pg_database_size('$DB'))" 2>/dev/null || echo '?'))"
  echo "tables:"
  psql_admin -d "$DB" -At -c "
    SELECT format('  %-32s %8s rows  %s', n.nspname || '.' || c.relname,
                  (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname),
                                                       false, true, '')))[1]::text,
                  pg_size_pretty(pg_total_relation_size(c.oid)))
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg_toast%'
     ORDER BY 1" 2>/dev/null | { grep . || echo "  (none yet: Pulumi creates them on first use)"; } || true
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  url) cmd_url "${2:-}" ;;
  status) cmd_status ;;
  *) fail "usage: tests/e2e/state-server.sh up|down|url|status" ;;
esac
