// scripts/lazyModules.js: the SDK's root module without its Automation API, @npmcli/arborist and TypeScript loaded,
// and each of them whole on first use. Every case runs in a Node.js process of its own (a fresh module cache).
import { expect } from "chai";
import * as cp from "child_process";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..");

/** Runs `body` in a fresh node (in the project directory) after `prelude`; returns what it printed as JSON. */
function fresh(prelude: string, body: string): any {
    const out = cp.execFileSync(process.execPath, ["-e", `${prelude}\n(async () => { console.log(JSON.stringify(await (async () => { ${body} })())); })()`], { cwd: ROOT, encoding: "utf8" });
    return JSON.parse(out.trim().split("\n").pop()!);
}

const DEFER = `require("./scripts/lazyModules").deferSdkModules(process.cwd());`;
/** Which of the heavy modules' own files are in the module cache. */
const LOADED = `const loaded = () => ({ automation: !!require.cache[require.resolve("@pulumi/pulumi/automation/localWorkspace.js")], arborist: Object.keys(require.cache).some((f) => f.includes("/@npmcli/arborist/lib/arborist/")), typescript: Object.keys(require.cache).some((f) => /\\/typescript(@[0-9.]+)?\\/(lib\\/)?typescript\\.js$/.test(f)) });`;

describe("deferred SDK modules (scripts/lazyModules.js)", function () {
    this.timeout(60000);

    it("without it, the SDK's root module loads all three (what it saves)", () => {
        const r = fresh(LOADED, `require("@pulumi/pulumi"); require("@pulumi/command"); return { ...loaded(), modules: Object.keys(require.cache).length };`);
        expect(r).to.include({ automation: true, arborist: true, typescript: true });
        console.log(`      without: ${r.modules} modules`);
    });

    it("with it, the root module, @pulumi/command and @pulumi/random load none of them", () => {
        const r = fresh(`${DEFER}\n${LOADED}`, `require("@pulumi/pulumi"); require("@pulumi/command"); require("@pulumi/random"); return { ...loaded(), modules: Object.keys(require.cache).length };`);
        expect(r).to.include({ automation: false, arborist: false, typescript: false });
        console.log(`      with: ${r.modules} modules`);
    });

    it("each loads whole on first use: the Automation API, the closure serializer (TypeScript), arborist", () => {
        const r = fresh(
            `${DEFER}\n${LOADED}`,
            `const pulumi = require("@pulumi/pulumi");
             const ws = typeof pulumi.automation.LocalWorkspace.create;
             const fn = await pulumi.runtime.serializeFunction(() => 6 * 7);
             const arboristClass = typeof require(require.resolve("@npmcli/arborist", { paths: [require("path").dirname(require.resolve("@pulumi/pulumi"))] })).Arborist;
             return { ws, text: fn.text.includes("6 * 7"), arboristClass, keys: Object.keys(pulumi.automation).includes("LocalWorkspace"), ...loaded() };`,
        );
        expect(r).to.deep.equal({ ws: "function", text: true, arboristClass: "function", keys: true, automation: true, arborist: true, typescript: true });
    });

    it("a module already loaded is left as it is; the second call defers nothing", () => {
        const r = fresh(``, `require("@pulumi/pulumi"); const { deferSdkModules } = require("./scripts/lazyModules"); return deferSdkModules(process.cwd()).length;`);
        expect(r).to.equal(0);
        const twice = fresh(``, `const { deferSdkModules } = require("./scripts/lazyModules"); return [deferSdkModules(process.cwd()).length, deferSdkModules(process.cwd()).length];`);
        expect(twice).to.deep.equal([3, 0]);
    });
});
