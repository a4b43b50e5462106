#!/usr/bin/env bash
# Puts a real Pulumi engine into .tools/bin (git-ignored), built from pinned
# sources served by the Go module proxy, so that `pulumi up` runs offline:
#
#   pulumi                          CLI/engine   github.com/pulumi/pulumi/pkg/v3 v3.259.0
#   pulumi-language-nodejs          language host of the CLI's release commit; that module
#                                   is not served, so it falls back to the v3.68.0 one
#                                   (last release with it inside github.com/pulumi/pulumi/sdk/v3)
#   pulumi-resource-command         provider for @pulumi/command 1.2.1 } neither served as of 2026-11-25:
#   pulumi-resource-random          provider for @pulumi/random 4.21.2 } reported as MISSING, exit code 2
#   pulumi-resource-pulumi-nodejs   launcher for pulumi.dynamic providers (node_modules)
#
# A pulumi already on PATH (outside .tools) is used (symlinked) instead of being built.
# A second run only checks stamp files and takes seconds.
#
# Use afterwards:   export PATH="$PWD/.tools/bin:$PATH"
#
# Env knobs:
#   ENGINE_RETRY_REFUSED=1   ask the module proxy again for versions it refused before
#   ENGINE_ALLOW_PARTIAL=1   exit 0 even if a piece could not be had
#   ENGINE_NODE_MODULES_WAIT seconds to wait for node_modules/@pulumi/pulumi (default 900)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
SRC="$TOOLS/src"
STAMPS="$TOOLS/stamps"
LOGS="$TOOLS/logs"
mkdir -p "$BIN" "$SRC" "$STAMPS" "$LOGS"

# ---- pins -------------------------------------------------------------------
PULUMI_VERSION="3.259.0"                        # CLI + language host
PKG_MODULE="github.com/pulumi/pulumi/pkg/v3"
SDK_VERSION_PKG="github.com/pulumi/pulumi/sdk/v3/go/common/version"
LANG_MODULE="github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3"
COMMAND_VERSION="1.2.1"                         # @pulumi/command pinned by package.json
COMMAND_ROOT_MODULE="github.com/pulumi/pulumi-command"   # tag v1.2.1 -> release commit
COMMAND_MODULE="github.com/pulumi/pulumi-command/provider"
RANDOM_VERSION="4.21.2"                         # @pulumi/random locked by package-lock.json
RANDOM_MODULE="github.com/pulumi/pulumi-random/provider/v4"
NODEJS_SDK_VERSION="3.248.0"                    # @pulumi/pulumi pinned by package.json
# The @pulumi/pulumi SDK whose cmd/dynamic-provider the launcher runs.
DYNPROV_JS="$ROOT/node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js"

export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"      # never fetch another Go toolchain
export GOFLAGS="${GOFLAGS:-} -buildvcs=false -mod=mod"
export GOFLAGS="${GOFLAGS# }"

MISSING=()
NOTES=()

log() { printf '[engine] %s\n' "$*"; }

# stamp_ok NAME VALUE: the binary exists and was made for VALUE
stamp_ok() { [[ -x "$BIN/$1" && -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
stamp_set() { printf '%s\n' "$2" >"$STAMPS/$1"; }

# A refusal by the module proxy is final: remember it so warm runs do not ask again.
refused() { [[ -f "$STAMPS/$1.refused" && "${ENGINE_RETRY_REFUSED:-0}" != 1 ]]; }

# run_logged LOGFILE CMD...: run in the background, print a heartbeat every minute.
run_logged() {
  local logf="$1"; shift
  local t0=$SECONDS pid rc
  ( "$@" ) >"$logf" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    if (( SECONDS - t0 > 0 && (SECONDS - t0) % 60 < 2 )); then
      log "  ... still running ($((SECONDS - t0))s, log: ${logf#$ROOT/})"
    fi
  done
  if wait "$pid"; then rc=0; else rc=$?; fi
  return "$rc"
}

# ambient NAME: a NAME on PATH that is not ours
ambient() {
  local name="$1" dir IFS=:
  for dir in $PATH; do
    [[ -z "$dir" ]] && continue
    dir="$(cd "$dir" 2>/dev/null && pwd -P)" || continue
    [[ "$dir" == "$(cd "$BIN" && pwd -P)" ]] && continue
    if [[ -x "$dir/$1" && ! -d "$dir/$1" ]]; then printf '%s\n' "$dir/$1"; return 0; fi
  done
  return 1
}

# mod_json MODULE@VERSION: `go mod download -json` from a scratch module
mod_json() {
  local d="$SRC/scratch"
  mkdir -p "$d"
  [[ -f "$d/go.mod" ]] || printf 'module engine/scratch\n\ngo 1.25\n' >"$d/go.mod"
  (cd "$d" && go mod download -json "$1")
}

# pseudo_of MODULE@TAG BASE: the pseudo-version BASE-<commit time>-<commit> of the commit TAG points at
# (for an untagged module of the same repository)
pseudo_of() {
  local info hash time
  info="$(mod_json "$1")"
  hash="$(jq -r '.Origin.Hash // empty' <<<"$info")"
  time="$(jq -r '.Time // empty' "$(jq -r '.Info // "/dev/null"' <<<"$info")" 2>/dev/null || true)"
  [[ -n "$hash" && -n "$time" ]] || { echo "engine.sh: no commit for $1 from the module proxy" >&2; exit 1; }
  printf '%s-%s-%s\n' "$2" "$(date -u -d "$time" +%Y%m%d%H%M%S)" "${hash:0:12}"
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

require_tools() {
  command -v go >/dev/null || { echo "engine.sh: go is required (Go toolchain)" >&2; exit 1; }
  command -v jq >/dev/null || { echo "[engine] installing jq"; apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq jq >/dev/null; } || { echo "engine.sh: jq is required (apt-get install jq)" >&2; exit 1; }
  command -v node >/dev/null || { echo "engine.sh: node is required" >&2; exit 1; }
}

# ---- 1. pulumi CLI ------------------------------------------------------------
install_cli() {
  local amb
  if amb="$(ambient pulumi)"; then
    if stamp_ok pulumi "ambient:$amb"; then log "pulumi: ambient $amb (already linked)"; return; fi
    ln -sfn "$amb" "$BIN/pulumi"; stamp_set pulumi "ambient:$amb"
    log "pulumi: using ambient $amb"; return
  fi
  local want="built:v$PULUMI_VERSION"
  if stamp_ok pulumi "$want"; then log "pulumi: v$PULUMI_VERSION already built"; return; fi

  log "pulumi: building $PKG_MODULE v$PULUMI_VERSION (cold: ~4 min on 2 cores)"
  local d="$SRC/pulumi-cli" pkgdir
  rm -rf "$d"; mkdir -p "$d"
  pkgdir="$(mod_json "$PKG_MODULE@v$PULUMI_VERSION" | jq -r '.Dir // empty')"
  [[ -n "$pkgdir" ]] || { echo "engine.sh: cannot download $PKG_MODULE@v$PULUMI_VERSION" >&2; exit 1; }
  (
    cd "$d"
    printf 'module engine/pulumi-cli\n\ngo %s\n' "$(go mod edit -json "$pkgdir/go.mod" | jq -r .Go)" >go.mod
    go mod edit -require="$PKG_MODULE@v$PULUMI_VERSION"
    # pkg's own go.mod has `replace sdk/v3 => ../sdk` (same release) plus module
    # replaces; `go install pkg@version` refuses replaces, a wrapper module keeps them.
    copy_replaces "$pkgdir/go.mod"
  )
  if ! run_logged "$LOGS/pulumi-cli.log" bash -c "cd '$d' \
      && go get '$PKG_MODULE/cmd/pulumi@v$PULUMI_VERSION' \
      && go build -trimpath -ldflags '-s -w -X $SDK_VERSION_PKG.Version=v$PULUMI_VERSION' \
           -o '$BIN/pulumi.new' '$PKG_MODULE/cmd/pulumi'"; then
    tail -n 30 "$LOGS/pulumi-cli.log" >&2
    echo "engine.sh: building pulumi failed (log: $LOGS/pulumi-cli.log)" >&2; exit 1
  fi
  mv -f "$BIN/pulumi.new" "$BIN/pulumi"; stamp_set pulumi "$want"
  log "pulumi: built"
}

# ---- 2. pulumi-language-nodejs --------------------------------------------------
install_language_nodejs() {
  local amb name=pulumi-language-nodejs
  if [[ "$(cat "$STAMPS/pulumi" 2>/dev/null)" == ambient:* ]] && amb="$(ambient $name)"; then
    if ! stamp_ok $name "ambient:$amb"; then ln -sfn "$amb" "$BIN/$name"; stamp_set $name "ambient:$amb"; fi
    log "$name: using ambient $amb"; return
  fi
  local want="built:v$PULUMI_VERSION"
  if stamp_ok $name "$want"; then log "$name: v$PULUMI_VERSION already built"; return; fi
  if refused $name; then
    log "$name: proxy refused v$PULUMI_VERSION before: $(head -n1 "$STAMPS/$name.refused")"
    install_language_nodejs_fallback; return
  fi

  # The module has no tags: use the pseudo-version of pkg/v3 v3.259.0's release commit.
  local pseudo d="$SRC/language-nodejs" out
  pseudo="$(pseudo_of "$PKG_MODULE@v$PULUMI_VERSION" v3.0.0)"
  log "$name: building $LANG_MODULE@$pseudo (release commit of v$PULUMI_VERSION)"
  if ! out="$(mod_json "$LANG_MODULE@$pseudo" 2>&1)" || jq -e '.Error' <<<"$out" >/dev/null 2>&1; then
    printf '%s\n' "go mod download $LANG_MODULE@$pseudo: $(jq -r '.Error // empty' <<<"$out" 2>/dev/null || printf '%s' "$out")" \
      >"$STAMPS/$name.refused"
    log "$name: NOT AVAILABLE: $(cat "$STAMPS/$name.refused")"
    install_language_nodejs_fallback; return
  fi
  rm -rf "$d"; mkdir -p "$d"
  (
    cd "$d"
    printf 'module engine/language-nodejs\n\ngo 1.25\n' >go.mod
    go mod edit -require="$LANG_MODULE@$pseudo" -require="$PKG_MODULE@v$PULUMI_VERSION"
    copy_replaces "$(jq -r .GoMod <<<"$out")"
    # its go.mod requires pkg/v3 at a placeholder version (replaced by ../../../pkg upstream)
    go mod edit -replace="$PKG_MODULE@v3.0.0-00010101000000-000000000000=$PKG_MODULE@v$PULUMI_VERSION"
  )
  if ! run_logged "$LOGS/$name.log" bash -c "cd '$d' \
      && go get '$LANG_MODULE@$pseudo' \
      && go build -trimpath -ldflags '-s -w -X $SDK_VERSION_PKG.Version=v$PULUMI_VERSION' \
           -o '$BIN/$name.new' '$LANG_MODULE'"; then
    tail -n 30 "$LOGS/$name.log" >&2
    echo "engine.sh: building $name failed (log: $LOGS/$name.log)" >&2; exit 1
  fi
  mv -f "$BIN/$name.new" "$BIN/$name"; stamp_set $name "$want"
  log "$name: built"
}

# Fallback when the pinned language host is not served: the newest release whose
# language host still lived inside the github.com/pulumi/pulumi/sdk/v3 module
# (later releases moved it into its own, untagged module). It is the real Pulumi
# language host, only older than the CLI; ENGINE_LANGUAGE_FALLBACK=0 turns this off.
LANG_FALLBACK_VERSION="3.68.0"
LANG_FALLBACK_MODULE="github.com/pulumi/pulumi/sdk/v3"
LANG_FALLBACK_PKG="github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs"
install_language_nodejs_fallback() {
  local name=pulumi-language-nodejs want="built:v$LANG_FALLBACK_VERSION (fallback: v$PULUMI_VERSION is not served)"
  if [[ "${ENGINE_LANGUAGE_FALLBACK:-1}" == 0 ]]; then MISSING+=("$name v$PULUMI_VERSION"); return; fi
  NOTES+=("$name is v$LANG_FALLBACK_VERSION (from $LANG_FALLBACK_MODULE), not v$PULUMI_VERSION: the pinned one is not served")
  if stamp_ok $name "$want"; then log "$name: fallback v$LANG_FALLBACK_VERSION already built"; return; fi
  log "$name: building fallback $LANG_FALLBACK_PKG@v$LANG_FALLBACK_VERSION"
  local d="$SRC/language-nodejs-fallback" sdkmod
  sdkmod="$(mod_json "$LANG_FALLBACK_MODULE@v$LANG_FALLBACK_VERSION" | jq -r '.GoMod // empty')"
  [[ -n "$sdkmod" ]] || { echo "engine.sh: cannot download $LANG_FALLBACK_MODULE@v$LANG_FALLBACK_VERSION" >&2; exit 1; }
  rm -rf "$d"; mkdir -p "$d"
  (
    cd "$d"
    printf 'module engine/language-nodejs-fallback\n\ngo 1.18\n' >go.mod
    go mod edit -require="$LANG_FALLBACK_MODULE@v$LANG_FALLBACK_VERSION"
    copy_replaces "$sdkmod"
  )
  if ! run_logged "$LOGS/$name.log" bash -c "cd '$d' \
      && go get '$LANG_FALLBACK_PKG@v$LANG_FALLBACK_VERSION' \
      && go build -trimpath -ldflags '-s -w -X $SDK_VERSION_PKG.Version=v$LANG_FALLBACK_VERSION' \
           -o '$BIN/$name.new' '$LANG_FALLBACK_PKG'"; then
    tail -n 30 "$LOGS/$name.log" >&2
    echo "engine.sh: building $name failed (log: $LOGS/$name.log)" >&2; exit 1
  fi
  mv -f "$BIN/$name.new" "$BIN/$name"; stamp_set $name "$want"
  log "$name: built (fallback v$LANG_FALLBACK_VERSION)"
}

# ---- 3. provider plugins: pulumi-resource-command, pulumi-resource-random ------------------
# go_provider NAME MODULE VERSION VERSION_VAR PLAIN_VERSION: builds MODULE/cmd/NAME at VERSION (a tag, or
# "pseudo:MODULE@TAG:BASE" for pseudo_of, resolved only when a build is due) from a wrapper module that keeps
# MODULE's replaces; VERSION_VAR=PLAIN_VERSION via -ldflags.
# A refusal by the proxy is remembered (stamp) and reported as MISSING.
go_provider() {
  local name="$1" module="$2" version="$3" version_var="$4" plain="$5" amb out d="$SRC/$1"
  if amb="$(ambient "$name")"; then
    if ! stamp_ok "$name" "ambient:$amb"; then ln -sfn "$amb" "$BIN/$name"; stamp_set "$name" "ambient:$amb"; fi
    log "$name: using ambient $amb (version not checked)"; return
  fi
  local want="built:v$plain"
  if stamp_ok "$name" "$want"; then log "$name: v$plain already built"; return; fi
  if refused "$name"; then
    log "$name: proxy refused it before: $(head -n1 "$STAMPS/$name.refused")"
    MISSING+=("$name v$plain"); return
  fi
  if [[ $version == pseudo:* ]]; then
    version="${version#pseudo:}"
    version="$(pseudo_of "${version%:*}" "${version##*:}")"
  fi
  log "$name: building $module@$version"
  if ! out="$(mod_json "$module@$version" 2>&1)" || jq -e '.Error' <<<"$out" >/dev/null 2>&1; then
    printf '%s\n' "go mod download $module@$version: $(jq -r '.Error // empty' <<<"$out" 2>/dev/null || printf '%s' "$out")" \
      >"$STAMPS/$name.refused"
    log "$name: NOT AVAILABLE: $(cat "$STAMPS/$name.refused")"
    MISSING+=("$name v$plain"); return
  fi
  rm -rf "$d"; mkdir -p "$d"
  (
    cd "$d"
    printf 'module engine/%s\n\ngo %s\n' "$name" "$(go mod edit -json "$(jq -r .GoMod <<<"$out")" | jq -r '.Go // "1.25"')" >go.mod
    go mod edit -require="$module@$version"
    copy_replaces "$(jq -r .GoMod <<<"$out")"
  )
  if ! run_logged "$LOGS/$name.log" bash -c "cd '$d' \
      && go get '$module/cmd/$name@$version' \
      && go build -trimpath -ldflags '-s -w -X $version_var=$plain' -o '$BIN/$name.new' '$module/cmd/$name'"; then
    tail -n 30 "$LOGS/$name.log" >&2
    echo "engine.sh: building $name failed (log: $LOGS/$name.log)" >&2; exit 1
  fi
  mv -f "$BIN/$name.new" "$BIN/$name"; stamp_set "$name" "$want"
  log "$name: built"
}

install_command_provider() {
  # pulumi-command tags only vX and sdk/vX: its provider module is had by the pseudo-version of the commit
  # that tag v1.2.1 points at.
  go_provider pulumi-resource-command "$COMMAND_MODULE" "pseudo:$COMMAND_ROOT_MODULE@v$COMMAND_VERSION:v0.0.0" \
    "$COMMAND_MODULE/pkg/version.Version" "$COMMAND_VERSION"
}

install_random_provider() {
  go_provider pulumi-resource-random "$RANDOM_MODULE" "v$RANDOM_VERSION" "$RANDOM_MODULE/version.Version" "$RANDOM_VERSION"
}

# ---- 4. pulumi-resource-pulumi-nodejs (dynamic providers) -------------------------
install_dynamic_launcher() {
  local name=pulumi-resource-pulumi-nodejs waited=0 limit="${ENGINE_NODE_MODULES_WAIT:-900}"
  while [[ ! -f "$DYNPROV_JS" ]]; do
    if (( waited >= limit )); then
      echo "engine.sh: $DYNPROV_JS not found after ${limit}s (run npm ci first)" >&2; exit 1
    fi
    (( waited % 30 == 0 )) && log "$name: waiting for node_modules/@pulumi/pulumi ..."
    sleep 5; waited=$((waited + 5))
  done
  local have
  have="$(jq -r .version "$ROOT/node_modules/@pulumi/pulumi/package.json")"
  [[ "$have" == "$NODEJS_SDK_VERSION" ]] \
    || NOTES+=("node_modules/@pulumi/pulumi is $have, package.json pins $NODEJS_SDK_VERSION")
  local body
  body="$(cat <<EOF
#!/bin/sh
# Generated by scripts/engine.sh: the engine's pulumi-nodejs provider, which serves
# pulumi.dynamic resources, runs @pulumi/pulumi's dynamic-provider from node_modules.
exec node "$DYNPROV_JS" "\$@"
EOF
)"
  if [[ -x "$BIN/$name" && "$(cat "$BIN/$name")" == "$body" ]]; then
    log "$name: launcher up to date"; return
  fi
  printf '%s\n' "$body" >"$BIN/$name.new"; chmod +x "$BIN/$name.new"; mv -f "$BIN/$name.new" "$BIN/$name"
  stamp_set $name "launcher:@pulumi/pulumi@$have"
  log "$name: launcher written"
}

# ---- main ---------------------------------------------------------------------------
require_tools
T0=$SECONDS
install_dynamic_launcher
install_cli
install_language_nodejs
install_command_provider
install_random_provider

export PATH="$BIN:$PATH"
# built_from BIN MODULE: the module version recorded in a Go binary's build info
built_from() { go version -m "$1" 2>/dev/null | awk -v m="$2" '$1=="mod"||$1=="dep" { if ($2==m) { print $2" "$3; exit } }'; }
echo
echo "== Pulumi engine in ${BIN#$ROOT/} ($((SECONDS - T0))s) =="
printf '%-30s %s\n' "pulumi version" "$(PULUMI_SKIP_UPDATE_CHECK=1 pulumi version 2>&1)"
for p in pulumi-language-nodejs pulumi-resource-command pulumi-resource-random pulumi-resource-pulumi-nodejs; do
  if [[ ! -x "$BIN/$p" ]]; then printf '%-30s %s\n' "$p" "MISSING"; continue; fi
  case "$p" in
    pulumi-language-nodejs)
      v="$(built_from "$BIN/$p" "$LANG_MODULE")"; [[ -n "$v" ]] || v="$(built_from "$BIN/$p" "$LANG_FALLBACK_MODULE")" ;;
    pulumi-resource-command|pulumi-resource-random)
      v="$(built_from "$BIN/$p" "$([[ $p == *command ]] && echo "$COMMAND_MODULE" || echo "$RANDOM_MODULE")") version=$("$BIN/$p" -version 2>&1 | head -n1 || true)" ;;
    *) v="exec node ${DYNPROV_JS#$ROOT/} (@pulumi/pulumi $(jq -r .version "$ROOT/node_modules/@pulumi/pulumi/package.json"))" ;;
  esac
  printf '%-30s %s  [%s]\n' "$p" "${v:-?}" "$(cat "$STAMPS/$p" 2>/dev/null || echo '?')"
done
for n in "${NOTES[@]+"${NOTES[@]}"}"; do echo "note: $n"; done
for f in "$STAMPS"/*.refused; do [[ -f "$f" ]] && echo "refused by the Go module proxy: $(cat "$f")"; done
echo
echo "Use:  export PATH=\"\$PWD/.tools/bin:\$PATH\"   (from the repo root)"
echo "      export PULUMI_SKIP_UPDATE_CHECK=1       (no update check over the network)"
echo "      export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true  (a missing plugin fails at once, no download tries)"
echo "Plugins are taken from PATH (.tools/bin); keep PULUMI_IGNORE_AMBIENT_PLUGINS unset."
if (( ${#MISSING[@]} )); then
  echo
  echo "MISSING (not served by the package registries):"
  for m in "${MISSING[@]}"; do echo "  - $m"; done
  [[ "${ENGINE_ALLOW_PARTIAL:-0}" == 1 ]] || exit 2
fi
