// The program's entry point (Pulumi.yaml's `main`): `pulumi` runs the compiled program, bin/index.js, which this
// compiles from index.ts and components/ first when they changed (scripts/compile.js; about 3 s, once per change;
// also at `npm install`). `node entry.js --build` only builds.
"use strict";
const { compileIfStale } = require("./scripts/compile");

const main = compileIfStale({
    tsconfig: "tsconfig.program.json",
    outDir: "bin",
    main: "index.js",
    sources: { files: ["index.ts", "tsconfig.json", "tsconfig.program.json"], dirs: ["components", "provider"] },
});
if (process.argv[2] !== "--build") {
    // The SDK's Automation API, @npmcli/arborist and TypeScript load only if used (scripts/lazyModules.js).
    require("./scripts/lazyModules").deferSdkModules(__dirname);
    module.exports = require(main);
}
