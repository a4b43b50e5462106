// scripts/compile.js, which the program's and the plugin's entry points use: a build when the sources changed, none
// when they did not, and the output always from the current sources.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const { compileIfStale } = require("../scripts/compile");
const REPO = path.resolve(__dirname, "..");
const DIR = "tests/.compile-test";

describe("compileIfStale: compiled JavaScript never older than its sources", function () {
    this.timeout(60000);
    const abs = (f: string) => path.join(REPO, DIR, f);
    const opts = { tsconfig: `${DIR}/tsconfig.json`, outDir: `${DIR}/bin`, main: "a.js", sources: { files: [`${DIR}/tsconfig.json`], dirs: [DIR] } };
    before(() => {
        fs.rmSync(abs(""), { recursive: true, force: true });
        fs.mkdirSync(abs(""), { recursive: true });
        fs.writeFileSync(abs("tsconfig.json"), JSON.stringify({ compilerOptions: { outDir: "bin", rootDir: ".", module: "commonjs", target: "es2022" }, include: ["a.ts"] }));
        fs.writeFileSync(abs("a.ts"), "export const answer: number = 41;\n");
    });
    after(() => fs.rmSync(abs(""), { recursive: true, force: true }));

    it("builds when there is no output, then not again until a source changes", () => {
        const main = compileIfStale(opts);
        expect(main).to.equal(abs("bin/a.js"));
        expect(require(main).answer).to.equal(41);
        const built = fs.statSync(main).mtimeMs;
        compileIfStale(opts);
        expect(fs.statSync(main).mtimeMs, "no change: no build").to.equal(built);
        fs.writeFileSync(abs("a.ts"), "export const answer: number = 42;\n");
        compileIfStale(opts);
        delete require.cache[main];
        expect(require(main).answer).to.equal(42);
        // A removed output is built again although the sources are the same.
        fs.rmSync(main);
        compileIfStale(opts);
        expect(fs.existsSync(main)).to.equal(true);
        expect(fs.existsSync(abs("bin/.build.lock")), "the lock is released").to.equal(false);
    });
});
