// The move to Node.js 24, @pulumi/pulumi 3.276 and type stripping, seen from a deployed stack: one deployed by the
// last main before it (its own checkout and npm packages: SDK 3.248, compiled JavaScript) is taken over by this
// checkout, whose `pulumi up` replaces nothing and runs no host step again.
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { HOSTS, REPO, engine, phase, printTimings, removeStack, sh } from "./util.ts";
import { type HostEntry, type StackConfig, deployedBy, namesWith, preview, seedChecks, up } from "./auto.ts";

/** The last main on Node.js 20 and @pulumi/pulumi 3.248, with entry.js compiling the program. */
const PREVIOUS_MAIN = "2330300";
const STACK = "e2e-runtime";
const host = (name: string, address: string, roles: string[]): HostEntry => ({ name, address, roles });
const CFG: StackConfig = {
    domain: "danran.com",
    hosts: [host("master", HOSTS.master, ["master", "etcd", "registry"]), host("node1", HOSTS.node1, ["node"]), host("node2", HOSTS.node2, ["node"])],
    sshPrivateKeyPath: ".lab/ssh/id_ed25519",
    sshKnownHostsPath: ".lab/ssh/known_hosts",
    timeServeFromMaster: true,
};

describe("end-to-end on the lab: a stack of the previous runtime upgrades in place", function () {
    this.timeout(0);
    after(() => printTimings());

    it(`deployed by ${PREVIOUS_MAIN} (Node.js 20's SDK), then up here: nothing replaced, no host step run again`, async () => {
        phase("lab reset to pristine", () => sh("lab/lab.sh reset"));
        const deployed = await phase(`up with ${PREVIOUS_MAIN}`, () => deployedBy(PREVIOUS_MAIN, STACK, CFG));
        try {
            const stack = await deployed.here();
            const r = await phase("up with this checkout", () => up(stack));
            for (const op of ["create", "replace", "create-replacement", "delete", "delete-replaced"]) {
                expect(namesWith(r.events, op), `${op}`).to.deep.equal([]);
            }
            const updated = namesWith(r.events, "update");
            expect(updated.filter((n) => /-(run|secrets)$/.test(n)), "host steps run again").to.deep.equal([]);
            console.log(`      updated: ${updated.length ? updated.join(", ") : "none"}`);
            await seedChecks(CFG);
            await phase("preview --refresh --expect-no-changes", () => preview(stack, { refresh: true, expectNoChanges: true }));
            await stack.destroy({ onOutput: () => undefined });
        } finally {
            deployed.cleanup();
            removeStack(STACK);
        }
    });

    it("a clone with only the production packages (npm ci --omit=dev) runs pulumi: no dev packages, no compile step", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "host-topology-omit-dev-"));
        try {
            sh(`git clone -q ${REPO} ${dir}/repo && ln -s ${REPO}/.lab ${dir}/repo/.lab`);
            const tree = `${dir}/repo`;
            phase("npm ci --omit=dev", () => sh("npm ci --omit=dev --no-audit --no-fund", { cwd: tree }));
            // (typescript itself comes with @pulumi/pulumi, which depends on it; the project's dev packages do not.)
            expect(fs.existsSync(path.join(tree, "node_modules/mocha")), "a dev package installed").to.equal(false);
            expect(fs.existsSync(path.join(tree, "node_modules/@pulumi/pulumi")), "@pulumi/pulumi installed").to.equal(true);
            fs.copyFileSync(path.join(REPO, "Pulumi.dev.yaml"), path.join(tree, "Pulumi.e2e-omitdev.yaml"));
            const spec = { stack: "e2e-omitdev", workDir: tree, env: { PULUMI_BACKEND_URL: `file://${dir}/state` } };
            fs.mkdirSync(`${dir}/state`);
            engine(spec, "stack init");
            const r = phase("preview in the clone", () => engine(spec, "preview"));
            expect(r.out).to.match(/\+ \d+ to create/);
            expect(fs.existsSync(path.join(tree, "bin")), "nothing compiled").to.equal(false);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
