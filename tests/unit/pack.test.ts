// The plugin's package (npm run pack, tools/pack.sh): one version everywhere, the files a program in another
// directory needs, and a plugin that starts from the unpacked package with nothing else readable (Node.js's
// permission model: a read outside the package fails), so nothing of this checkout is used at run time.
import { expect } from "chai";
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const REPO = path.resolve(import.meta.dirname, "..", "..");
const json = (f: string) => JSON.parse(fs.readFileSync(path.join(REPO, f), "utf8"));

describe("the plugin's package (npm run pack)", function () {
    // A machine without the engine yet builds it first (tools/pack.sh runs scripts/engine.sh: about 5 minutes once).
    this.timeout(600000);
    const version: string = json("package.json").version;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "host-topology-pack-"));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("one version: package.json, the plugin's package.json, the schema and the changelog's newest entry", () => {
        expect(json("provider/package.json").version).to.equal(version);
        expect(json("provider/schema.json").version).to.equal(version);
        expect(/^## (\S+)/m.exec(fs.readFileSync(path.join(REPO, "CHANGELOG.md"), "utf8"))?.[1]).to.equal(version);
    });

    it("holds the compiled plugin, its production packages, the host scripts, the schema and the executable", () => {
        const r = cp.spawnSync("tools/pack.sh", { cwd: REPO, encoding: "utf8" });
        expect(r.status, r.stdout + r.stderr).to.equal(0);
        const tarball = path.join(REPO, "dist", `pulumi-resource-host-topology-v${version}-linux-amd64.tar.gz`);
        cp.execFileSync("tar", ["-C", dir, "-xzf", tarball]);
        for (const f of [
            "pulumi-resource-host-topology",
            "provider/main.js",
            "provider/construct.js",
            "provider/schema.json",
            "components/index.js",
        ]) {
            expect(fs.existsSync(path.join(dir, f)), f).to.equal(true);
        }
        const files = fs.readdirSync(dir, { recursive: true, encoding: "utf8" });
        expect(
            files.filter((f) => f.endsWith(".ts") && !f.startsWith("node_modules")),
            "no TypeScript left",
        ).to.deep.equal([]);
        expect(fs.readdirSync(path.join(dir, "host")).sort()).to.include.members(["etcd-member.sh", "lib", "time-sync.sh"]);
        expect(fs.readdirSync(path.join(dir, "host", "lib"))).to.include("step.sh");
        expect(fs.existsSync(path.join(dir, "node_modules", "@pulumi", "pulumi")), "@pulumi/pulumi").to.equal(true);
        expect(fs.existsSync(path.join(dir, "node_modules", "mocha")), "a dev package").to.equal(false);
        const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
        expect(pkg).to.include({ version, type: "module" });
        expect(pkg).not.to.have.property("devDependencies");
        expect(fs.statSync(path.join(dir, "pulumi-resource-host-topology")).mode & 0o111, "executable").to.not.equal(0);
        // The SDKs name the plugin of this version (gen-sdk leaves placeholders, which the pack fills in).
        const sdk = path.join(REPO, "dist", "sdk");
        expect(JSON.parse(fs.readFileSync(path.join(sdk, "python/pulumi_host_topology/pulumi-plugin.json"), "utf8"))).to.include({
            version,
        });
        expect(fs.readFileSync(path.join(sdk, "python/setup.py"), "utf8")).to.contain(`VERSION = "${version}"`);
        expect(JSON.parse(fs.readFileSync(path.join(sdk, "nodejs/package.json"), "utf8"))).to.include({ version });
    });

    it("the plugin starts from the unpacked package alone (reads outside it refused) and serves on a port", async () => {
        // The engine starts the executable and reads the port it prints; here, node itself with the permission model.
        const p = cp.spawn(process.execPath, ["--permission", `--allow-fs-read=${dir}`, path.join(dir, "provider", "main.js")], {
            cwd: os.tmpdir(),
        });
        try {
            const port = await new Promise<string>((resolve, reject) => {
                let out = "";
                let err = "";
                p.stdout.on("data", (d: Buffer) => {
                    out += d.toString();
                    if (/^\d+\n/.test(out)) resolve(out.trim());
                });
                p.stderr.on("data", (d: Buffer) => (err += d.toString()));
                p.on("exit", (code) => reject(new Error(`the plugin exited ${code}: ${err}`)));
            });
            expect(Number(port)).to.be.greaterThan(0);
        } finally {
            p.kill();
        }
    });
});
