// Defers three modules the Pulumi SDK's root module loads at once and a program without dynamic resources never
// uses: its Automation API, @npmcli/arborist (the closure serializer's package walk) and TypeScript (the closure
// serializer's parser). Together they are about 520 of the 790 modules `require("@pulumi/pulumi")` loads, and 0.4 to
// 0.7 s of every `pulumi preview` and `up` on this project's machines (docs/bench.md).
//
// Each one gets a stand-in in Node's module cache that loads the real module on the first use of any of its
// properties, so code that does use them (e.g. a test of the Automation API) gets the real thing, a little later. A
// module this cannot find (another SDK version) is left alone. Plain JavaScript with no import: entry.js and
// provider/entry.js load it before anything else.
"use strict";
const Module = require("module");
const path = require("path");

/** The modules deferred, as the SDK resolves them (its own files, or its dependencies). */
const DEFERRED = ["@pulumi/pulumi/automation/index.js", "@npmcli/arborist", "@pulumi/pulumi/typescript-shim.js"];

/** Puts the stand-ins in the module cache (not for a module already loaded); returns the files deferred. */
function deferSdkModules(from = process.cwd()) {
    let sdkDir;
    try {
        sdkDir = path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [from] }));
    } catch {
        return [];
    }
    const deferred = [];
    for (const id of DEFERRED) {
        let file;
        try {
            file = require.resolve(id, { paths: [sdkDir] });
        } catch {
            continue;
        }
        if (require.cache[file]) continue;
        let real;
        const load = () => {
            if (real === undefined) {
                delete require.cache[file];
                real = require(file);
            }
            return real;
        };
        // `__esModule` answers without loading: TypeScript's import helpers then use the stand-in as it is.
        const standIn = new Proxy(
            {},
            {
                get: (_t, k) => (k === "__esModule" ? true : load()[k]),
                has: (_t, k) => k === "__esModule" || k in load(),
                ownKeys: () => Reflect.ownKeys(load()),
                getOwnPropertyDescriptor: (_t, k) => {
                    const d = Object.getOwnPropertyDescriptor(load(), k);
                    return d && { ...d, configurable: true };
                },
            },
        );
        const m = new Module(file);
        m.filename = file;
        m.loaded = true;
        m.exports = standIn;
        require.cache[file] = m;
        deferred.push(file);
    }
    return deferred;
}

module.exports = { deferSdkModules, DEFERRED };
