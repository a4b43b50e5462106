#!/usr/bin/env bash
# npm run pack: the provider plugin as a package of its own, for `pulumi plugin install resource host-topology
# VERSION --file TARBALL` on any machine with Node.js >= 22.18, and programs in any directory and language:
#   dist/pulumi-resource-host-topology-v<version>-linux-amd64.tar.gz, and the SDKs: dist/sdk/nodejs, dist/sdk/python
# It holds the plugin and the components it constructs, compiled to JavaScript; its production npm packages; the
# host scripts (host/); the schema; and the executable the engine starts. Nothing outside it is read at run time.
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"
cd "$REPO"
ensure_node_modules
version=$(node -p 'JSON.parse(require("fs").readFileSync("package.json", "utf8")).version')
for f in provider/package.json provider/schema.json; do
    v=$(node -p "JSON.parse(require('fs').readFileSync('$f', 'utf8')).version")
    [ "$v" = "$version" ] || { echo "pack: $f says version $v, package.json $version: one version for all" >&2; exit 1; }
done
out="$REPO/dist/pulumi-resource-host-topology-v$version-linux-amd64.tar.gz"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg="$stage/pkg"
echo "[pack] compiling the plugin, the components and the contract"
npx tsc -p tools/tsconfig.pack.json --outDir "$pkg"
cp -r host "$pkg/host"
cp provider/schema.json provider/package.json "$pkg/provider/"
echo "[pack] production npm packages"
cp package.json package-lock.json "$pkg/"
(cd "$pkg" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
# The package's own manifest: what it is and what it needs, nothing of this repo's development.
node -e '
const fs = require("fs");
const p = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
const out = { name: "pulumi-resource-host-topology", version: p.version, description: p.description, type: "module", private: true, engines: p.engines, dependencies: p.dependencies };
fs.writeFileSync(process.argv[1], JSON.stringify(out, null, 2) + "\n");
' "$pkg/package.json"
rm "$pkg/package-lock.json"
cat >"$pkg/pulumi-resource-host-topology" <<'LAUNCHER'
#!/bin/sh
# The host-topology provider plugin (started by the Pulumi engine): Node.js >= 22.18 runs it.
exec node "$(dirname "$0")/provider/main.js" "$@"
LAUNCHER
chmod +x "$pkg/pulumi-resource-host-topology"
mkdir -p "$(dirname "$out")"
tar -C "$pkg" -czf "$out" .
echo "[pack] $out ($(du -h "$out" | cut -f1))"
# The SDKs of the schema: a Python program installs dist/sdk/python (pip), a Node.js one dist/sdk/nodejs.
command -v pulumi >/dev/null || "$REPO/scripts/engine.sh" --quiet
for lang in nodejs python; do
    rm -rf "$REPO/dist/sdk/$lang"
    # --version: the SDK names the plugin of this version, which pulumi plugin install --file put in place.
    pulumi package gen-sdk provider/schema.json --language "$lang" --version "$version" --out "$REPO/dist/sdk" >/dev/null
done
# gen-sdk leaves the package versions as placeholders (a release pipeline's step): the plugin's version, so that each
# SDK asks the engine for the plugin this pack holds.
node -e '
const fs = require("fs");
const [dir, v] = process.argv.slice(1);
const edit = (f, fn) => fs.writeFileSync(f, fn(fs.readFileSync(f, "utf8")));
edit(dir + "/nodejs/package.json", (t) => t.replace("\"${VERSION}\"", JSON.stringify(v)));
edit(dir + "/python/setup.py", (t) => t.replace("VERSION = \"0.0.0\"", "VERSION = " + JSON.stringify(v)));
for (const f of [dir + "/python/pulumi_host_topology/pulumi-plugin.json", dir + "/nodejs/package.json"]) {
    const j = JSON.parse(fs.readFileSync(f, "utf8"));
    if (f.endsWith("pulumi-plugin.json")) j.version = v; else j.pulumi = { ...j.pulumi, version: v };
    fs.writeFileSync(f, JSON.stringify(j, null, 2) + "\n");
}
' "$REPO/dist/sdk" "$version"
# The Node.js SDK compiled, as a package a program installs: dist/sdk/nodejs/bin (npm install <that dir>).
(cd "$REPO/dist/sdk/nodejs" && npm install --no-audit --no-fund --loglevel=error >/dev/null && npx tsc && cp package.json bin/)
echo "[pack] $REPO/dist/sdk/nodejs/bin, $REPO/dist/sdk/python (pulumi package gen-sdk, version $version)"
