#!/usr/bin/env bash
# The Pulumi engine this project deploys with: `pulumi` and its plugins, put in place once (a warm run only
# checks stamps and takes well under a second).
#
#   pulumi                         a `pulumi` already on PATH (outside .tools) is used; else the CLI v3.259.0 is
#                                  built from github.com/pulumi/pulumi/pkg/v3 on the Go module proxy (~5 min cold)
#   pulumi-language-nodejs         the one next to an installed CLI; else v3.259.0 from the plugin mirror
#   pulumi-language-python         the same, with its exec shim: Python programs, and gen-sdk --language python
#   pulumi-resource-pulumi-nodejs  the one next to an installed CLI; else the same launcher the CLI ships:
#                                  a stack deployed before the provider plugin (Node dynamic resources) needs it once, for its upgrade
#   pulumi-language-yaml           v1.25.0 built from github.com/pulumi/pulumi-yaml on the Go module proxy (~1 min
#                                  cold): the language host of Pulumi YAML programs (tests/fixtures/yaml/)
#   resource plugins               command v1.2.1 and random v4.21.1 (the versions package.json pins; an SDK asks
#                                  for the plugin of its own version), installed into the plugin cache with
#                                  `pulumi plugin install resource NAME VERSION --file ...` from the mirror after
#                                  its SHA256SUMS are checked
#
# The mirror is PULUMI_PLUGIN_MIRROR, by default ../shared/pulumi-plugins next to the repo when it exists. With no
# mirror, plugin acquisition is left to `pulumi` itself (a machine with internet downloads them on first use).
# A piece that cannot be had ends the script with a non-zero exit and one line saying which.
#
# Use afterwards:  export PATH="$PWD/.tools/bin:$PATH"   (scripts/env.sh does this)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
SRC="$TOOLS/src"
STAMPS="$TOOLS/stamps"
LOGS="$TOOLS/logs"
mkdir -p "$BIN" "$SRC" "$STAMPS" "$LOGS"

# ---- pins -------------------------------------------------------------------
PULUMI_VERSION="3.259.0"                        # CLI and its Node.js language host
PKG_MODULE="github.com/pulumi/pulumi/pkg/v3"
SDK_VERSION_PKG="github.com/pulumi/pulumi/sdk/v3/go/common/version"
YAML_VERSION="1.25.0"                           # pulumi-language-yaml
PROVIDERS=("command 1.2.1" "random 4.21.1")     # = @pulumi/command, @pulumi/random in package.json

if [[ -n "${PULUMI_PLUGIN_MIRROR:-}" ]]; then
  MIRROR="$PULUMI_PLUGIN_MIRROR"
  [[ -d "$MIRROR" ]] || { echo "engine.sh: PULUMI_PLUGIN_MIRROR=$MIRROR is not a directory" >&2; exit 1; }
elif [[ -d "$ROOT/../shared/pulumi-plugins" ]]; then
  MIRROR="$(cd "$ROOT/../shared/pulumi-plugins" && pwd)"
else
  MIRROR=""
fi
PLUGIN_CACHE="${PULUMI_HOME:-$HOME/.pulumi}/plugins"

export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"      # never fetch another Go toolchain
export GOFLAGS="${GOFLAGS:-} -buildvcs=false -mod=mod"
export GOFLAGS="${GOFLAGS# }"
export PULUMI_SKIP_UPDATE_CHECK=1

log() { printf '[engine] %s\n' "$*"; }
fail() { printf 'engine.sh: %s\n' "$*" >&2; exit 1; }

# stamp_ok NAME VALUE: recorded for VALUE (and, for a binary in .tools/bin, it is there)
stamp_ok() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
stamp_set() { printf '%s\n' "$2" >"$STAMPS/$1"; }

# run_logged LOGFILE CMD...: run in the background, print a heartbeat every minute.
run_logged() {
  local logf="$1"; shift
  local t0=$SECONDS pid rc
  ( "$@" ) >"$logf" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    if (( SECONDS - t0 > 0 && (SECONDS - t0) % 60 < 2 )); then
      log "  ... still running ($((SECONDS - t0))s, log: ${logf#"$ROOT"/})"
    fi
  done
  if wait "$pid"; then rc=0; else rc=$?; fi
  return "$rc"
}

# ambient NAME: a NAME on PATH that is not ours
ambient() {
  local dir IFS=: ours
  ours="$(cd "$BIN" && pwd -P)"
  for dir in $PATH; do
    [[ -z "$dir" ]] && continue
    dir="$(cd "$dir" 2>/dev/null && pwd -P)" || continue
    [[ "$dir" == "$ours" ]] && continue
    if [[ -x "$dir/$1" && ! -d "$dir/$1" ]]; then printf '%s\n' "$dir/$1"; return 0; fi
  done
  return 1
}

# mirror_sum NAME-PREFIX: the checksum SHA256SUMS lists for its tarball (cheap: what a warm run compares with the stamp)
mirror_sum() { awk -v n="$1-linux-amd64.tar.gz" '$2 == n || $2 == "*" n {print $1}' "$MIRROR/SHA256SUMS" 2>/dev/null; }

# mirror_file NAME-PREFIX: the mirror's tarball for it, its checksum verified against SHA256SUMS
mirror_file() {
  local f="$MIRROR/$1-linux-amd64.tar.gz" want have
  [[ -f "$f" ]] || fail "$(basename "$f") is not in the plugin mirror $MIRROR"
  want="$(mirror_sum "$1")"
  [[ -n "$want" ]] || fail "$(basename "$f") is not listed in $MIRROR/SHA256SUMS"
  have="$(sha256sum "$f" | cut -d' ' -f1)"
  [[ "$have" == "$want" ]] || fail "$(basename "$f"): sha256 $have does not match SHA256SUMS ($want)"
  printf '%s\n' "$f"
}

# mod_json MODULE@VERSION: `go mod download -json` from a scratch module
mod_json() {
  local d="$SRC/scratch"
  mkdir -p "$d"
  [[ -f "$d/go.mod" ]] || printf 'module engine/scratch\n\ngo 1.25\n' >"$d/go.mod"
  (cd "$d" && go mod download -json "$1")
}

# copy_replaces GOMOD_FILE: copy module (not directory) replace directives into ./go.mod
copy_replaces() {
  local r
  while IFS= read -r r; do
    [[ -n "$r" ]] && go mod edit -replace="$r"
  done < <(go mod edit -json "$1" | jq -r '.Replace // [] | .[]
      | select(.New.Version != null)
      | "\(.Old.Path)\(if .Old.Version then "@"+.Old.Version else "" end)=\(.New.Path)@\(.New.Version)"')
}

# ---- 1. the CLI -------------------------------------------------------------------
install_cli() {
  local amb
  if amb="$(ambient pulumi)"; then
    if ! stamp_ok pulumi "ambient:$amb" || [[ ! -e "$BIN/pulumi" ]]; then
      ln -sfn "$amb" "$BIN/pulumi"; stamp_set pulumi "ambient:$amb"
    fi
    return
  fi
  local want="built:v$PULUMI_VERSION"
  if [[ -x "$BIN/pulumi" ]] && stamp_ok pulumi "$want"; then return; fi

  command -v go >/dev/null || fail "no pulumi on PATH and no Go toolchain to build it: install the Pulumi CLI (https://www.pulumi.com/docs/install/) or Go"
  command -v jq >/dev/null || { log "installing jq"; apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq jq >/dev/null; } || fail "jq is required to build the CLI"
  log "pulumi: building $PKG_MODULE v$PULUMI_VERSION from the Go module proxy (cold: ~5 min on 2 cores)"
  local d="$SRC/pulumi-cli" pkgdir
  rm -rf "$d"; mkdir -p "$d"
  pkgdir="$(mod_json "$PKG_MODULE@v$PULUMI_VERSION" | jq -r '.Dir // empty')"
  [[ -n "$pkgdir" ]] || fail "cannot download $PKG_MODULE@v$PULUMI_VERSION from the Go module proxy"
  (
    cd "$d"
    printf 'module engine/pulumi-cli\n\ngo %s\n' "$(go mod edit -json "$pkgdir/go.mod" | jq -r .Go)" >go.mod
    go mod edit -require="$PKG_MODULE@v$PULUMI_VERSION"
    # pkg's own go.mod has `replace sdk/v3 => ../sdk` (same release) plus module replaces; `go install
    # pkg@version` refuses replaces, a wrapper module keeps them.
    copy_replaces "$pkgdir/go.mod"
  )
  if ! run_logged "$LOGS/pulumi-cli.log" bash -c "cd '$d' \
      && go get '$PKG_MODULE/cmd/pulumi@v$PULUMI_VERSION' \
      && go build -trimpath -ldflags '-s -w -X $SDK_VERSION_PKG.Version=v$PULUMI_VERSION' \
           -o '$BIN/pulumi.new' '$PKG_MODULE/cmd/pulumi'"; then
    tail -n 30 "$LOGS/pulumi-cli.log" >&2
    fail "building pulumi failed (log: $LOGS/pulumi-cli.log)"
  fi
  mv -f "$BIN/pulumi.new" "$BIN/pulumi"; stamp_set pulumi "$want"
  log "pulumi: built"
}

# ---- 2. the Node.js and Python language hosts --------------------------------------------
# install_language_host LANG [FILE...]: pulumi-language-LANG (and the archive's other FILEs, e.g. Python's exec shim)
# next to pulumi.
install_language_host() {
  local lang=$1 name=pulumi-language-$1 amb f
  shift
  local files=("$name" "$@")
  if [[ "$(cat "$STAMPS/pulumi")" == ambient:* ]] && amb="$(ambient $name)"; then
    if ! stamp_ok $name "ambient:$amb" || [[ ! -e "$BIN/$name" ]]; then
      for f in "${files[@]}"; do ln -sfn "$(dirname "$amb")/$f" "$BIN/$f"; done
      stamp_set $name "ambient:$amb"
    fi
    return
  fi
  [[ -n "$MIRROR" ]] || fail "no $name: install the Pulumi CLI (it ships with it) or set PULUMI_PLUGIN_MIRROR"
  local prefix="$name-v$PULUMI_VERSION" want
  want="mirror:$(mirror_sum "$prefix")"
  if [[ -x "$BIN/$name" ]] && stamp_ok $name "$want"; then return; fi
  local tgz
  tgz="$(mirror_file "$prefix")"
  for f in "${files[@]}"; do rm -f "$BIN/$f"; done
  tar -xzf "$tgz" -C "$BIN" "${files[@]}" || fail "cannot unpack $tgz"
  stamp_set $name "$want"
  log "$name: v$PULUMI_VERSION from the mirror ($lang programs)"
}

# ---- 3. the dynamic-provider launcher -----------------------------------------------------
# The CLI's release archive ships this script; a CLI built from source does not have it. It runs the
# dynamic-provider of the program's own @pulumi/pulumi (the engine starts plugins in the program's directory).
install_dynamic_launcher() {
  local name=pulumi-resource-pulumi-nodejs amb body
  if [[ "$(cat "$STAMPS/pulumi")" == ambient:* ]] && amb="$(ambient $name)"; then
    if ! stamp_ok $name "ambient:$amb" || [[ ! -e "$BIN/$name" ]]; then ln -sfn "$amb" "$BIN/$name"; stamp_set $name "ambient:$amb"; fi
    return
  fi
  body='#!/bin/sh
exec node ./node_modules/@pulumi/pulumi/cmd/dynamic-provider "$@"'
  if [[ -x "$BIN/$name" && ! -L "$BIN/$name" && "$(cat "$BIN/$name")" == "$body" ]]; then return; fi
  rm -f "$BIN/$name"
  printf '%s\n' "$body" >"$BIN/$name.new"; chmod +x "$BIN/$name.new"; mv -f "$BIN/$name.new" "$BIN/$name"
  stamp_set $name "launcher"
}

# ---- 3b. the YAML language host -----------------------------------------------------------
install_yaml_language_host() {
  local name=pulumi-language-yaml want="built:v$YAML_VERSION"
  if [[ -x "$BIN/$name" ]] && stamp_ok $name "$want"; then return; fi
  command -v go >/dev/null || fail "no Go toolchain to build $name v$YAML_VERSION (Pulumi YAML programs need it)"
  log "$name: building v$YAML_VERSION from the Go module proxy (cold: ~1 min on 2 cores)"
  rm -f "$BIN/$name"
  if ! run_logged "$LOGS/$name.log" env GOBIN="$BIN" go install "github.com/pulumi/pulumi-yaml/cmd/$name@v$YAML_VERSION"; then
    tail -n 30 "$LOGS/$name.log" >&2
    fail "building $name failed (log: $LOGS/$name.log)"
  fi
  stamp_set $name "$want"
  log "$name: built"
}

# ---- 4. resource plugins ---------------------------------------------------------------------
install_providers() {
  local p name version prefix want tgz
  if [[ -z "$MIRROR" ]]; then
    log "no plugin mirror: pulumi downloads the command and random plugins itself on first use"
    return
  fi
  for p in "${PROVIDERS[@]}"; do
    read -r name version <<<"$p"
    prefix="pulumi-resource-$name-v$version"
    want="$(mirror_sum "$prefix") $PLUGIN_CACHE"
    if [[ -x "$PLUGIN_CACHE/resource-$name-v$version/pulumi-resource-$name" && ! -e "$PLUGIN_CACHE/resource-$name-v$version.partial" ]] \
        && stamp_ok "plugin-$name" "$want"; then
      continue
    fi
    tgz="$(mirror_file "$prefix")"
    "$BIN/pulumi" plugin install resource "$name" "v$version" --file "$tgz" --reinstall >"$LOGS/plugin-$name.log" 2>&1 \
      || fail "pulumi plugin install resource $name v$version --file $tgz failed: $(tail -n 1 "$LOGS/plugin-$name.log")"
    stamp_set "plugin-$name" "$want"
    log "plugin resource $name v$version installed from the mirror into $PLUGIN_CACHE"
  done
}

# ---- main ------------------------------------------------------------------------------------
T0=$SECONDS
install_cli
install_language_host nodejs
install_language_host python pulumi-language-python-exec
install_dynamic_launcher
install_yaml_language_host
install_providers
if [[ "${1:-}" == --quiet ]]; then exit 0; fi
echo "[engine] ready in $((SECONDS - T0))s: $("$BIN/pulumi" version) ($(readlink -f "$BIN/pulumi")); plugins: ${MIRROR:-downloaded by pulumi}"
