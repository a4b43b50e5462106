// The plugin's entry point (package.json's main; the engine starts it through the Node.js language host, as
// PulumiPlugin.yaml says). The provider runs compiled (ts-node would add about 3 s to every start), but never older
// than the checkout: when the sources it compiles from (provider/*.ts, components/*.ts, the tsconfigs) differ from
// the ones of bin/, it compiles them first (about 3 s, once per change), under a lock (the engine may start two at
// once). `node provider/entry.js --build` only builds (scripts/engine.sh, npm's postinstall).
"use strict";
const cp = require("child_process");
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const bin = path.join(__dirname, "bin");
const stampFile = path.join(bin, ".sources.sha256");

function sourcesHash() {
    const files = ["tsconfig.json", "provider/tsconfig.json"];
    for (const d of ["provider", "components"]) {
        for (const f of fs.readdirSync(path.join(root, d)).sort()) if (f.endsWith(".ts")) files.push(`${d}/${f}`);
    }
    const h = crypto.createHash("sha256");
    for (const f of files) h.update(`${f}\0`).update(fs.readFileSync(path.join(root, f))).update("\0");
    return h.digest("hex");
}

function current(want) {
    try {
        return fs.readFileSync(stampFile, "utf8") === want && fs.existsSync(path.join(bin, "provider", "main.js"));
    } catch {
        return false;
    }
}

function build() {
    const want = sourcesHash();
    if (current(want)) return;
    const lock = path.join(__dirname, ".build.lock");
    const deadline = Date.now() + 120000;
    for (;;) {
        try {
            fs.closeSync(fs.openSync(lock, "wx"));
            break;
        } catch (e) {
            if (e.code !== "EEXIST") throw e;
            // A lock older than two minutes is from a build that died.
            try {
                if (Date.now() - fs.statSync(lock).mtimeMs > 120000) fs.rmSync(lock, { force: true });
            } catch {}
            if (Date.now() > deadline) throw new Error(`host-topology provider: ${lock} is held by another build`);
            cp.execFileSync("sleep", ["0.2"]);
        }
    }
    try {
        if (current(want)) return;
        fs.rmSync(stampFile, { force: true });
        // tsc's messages go to stderr: the plugin's stdout carries its port to the engine.
        cp.execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", path.join(__dirname, "tsconfig.json")], { cwd: root, stdio: ["ignore", 2, 2] });
        fs.writeFileSync(stampFile, want);
    } finally {
        fs.rmSync(lock, { force: true });
    }
}

build();
if (process.argv[2] !== "--build") require("./bin/provider/main.js");
