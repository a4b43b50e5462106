// Compiles TypeScript to a bin/ directory when its sources changed, for the program (entry.js) and the provider plugin
// (provider/entry.js): both run compiled JavaScript (type-checking ts-node would add seconds to every `pulumi` run),
// but never older than the checkout. The sources' hash (every .ts of the given directories, and the tsconfigs) is
// kept next to the output; a build takes about 3 s, once per change, under a lock (the engine may start two at once).
// `npm test` type-checks; these builds only emit (noCheck).
"use strict";
const cp = require("child_process");
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const ROOT = path.resolve(__dirname, "..");

function sourcesHash(sources) {
    const files = [...sources.files];
    for (const d of sources.dirs) {
        for (const f of fs.readdirSync(path.join(ROOT, d)).sort()) if (f.endsWith(".ts")) files.push(`${d}/${f}`);
    }
    const h = crypto.createHash("sha256");
    for (const f of files) h.update(`${f}\0`).update(fs.readFileSync(path.join(ROOT, f))).update("\0");
    return h.digest("hex");
}

/**
 * Makes `outDir` (relative to the repo) the output of `tsc -p tsconfig` for the current sources: {files, dirs}
 * relative to the repo; `main` is the output file that must exist. Returns the absolute path of `main`.
 */
function compileIfStale({ tsconfig, outDir, main, sources }) {
    const bin = path.join(ROOT, outDir);
    const stampFile = path.join(bin, ".sources.sha256");
    const mainFile = path.join(bin, main);
    const want = sourcesHash(sources);
    const current = () => {
        try {
            return fs.readFileSync(stampFile, "utf8") === want && fs.existsSync(mainFile);
        } catch {
            return false;
        }
    };
    if (current()) return mainFile;
    fs.mkdirSync(bin, { recursive: true });
    const lock = path.join(bin, ".build.lock");
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
            if (Date.now() > deadline) throw new Error(`host-topology: ${lock} is held by another build`);
            cp.execFileSync("sleep", ["0.2"]);
        }
    }
    try {
        if (current()) return mainFile;
        fs.rmSync(stampFile, { force: true });
        // tsc's messages go to stderr: a plugin's stdout carries its port to the engine.
        cp.execFileSync(process.execPath, [require.resolve("typescript/bin/tsc", { paths: [ROOT] }), "-p", path.join(ROOT, tsconfig)], { cwd: ROOT, stdio: ["ignore", 2, 2] });
        fs.writeFileSync(stampFile, want);
    } finally {
        fs.rmSync(lock, { force: true });
    }
    return mainFile;
}

module.exports = { compileIfStale };
