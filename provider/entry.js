// The plugin's entry point (package.json's main; the engine starts it through the Node.js language host, as
// PulumiPlugin.yaml says, or launcher/ does). It runs the compiled plugin, bin/provider/main.js, which
// scripts/compile.js compiles from provider/ and components/ first when they changed (about 3 s, once per change).
// `node provider/entry.js --build` only builds (scripts/engine.sh, npm's postinstall).
"use strict";
const path = require("path");
const { compileIfStale } = require("../scripts/compile");

const main = compileIfStale({
    tsconfig: "provider/tsconfig.json",
    outDir: "provider/bin",
    main: "provider/main.js",
    sources: { files: ["tsconfig.json", "provider/tsconfig.json"], dirs: ["provider", "components"] },
});
if (process.argv[2] !== "--build") {
    // construct loads the SDK's root module (a YAML program): without its Automation API, @npmcli/arborist and
    // TypeScript unless used (scripts/lazyModules.js).
    require("../scripts/lazyModules").deferSdkModules(path.join(__dirname, ".."));
    require(main);
}
