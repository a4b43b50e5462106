// A deployed stack upgrades in place. One deployed by the last main on Node.js 20 (its own checkout and npm packages:
// SDK 3.248, compiled JavaScript, the host scripts in components/scripts/ with one lib.sh) is taken over by this
// checkout, whose `pulumi up` replaces nothing. Its host steps run again, because the scripts' names and their
// library's digest are in each step's command and stdin (CHANGELOG.md, 0.3.0), and that run changes nothing on the
// hosts: no configuration file written, no service restarted. One deployed by the last main before the checks
// recorded the library by its one digest is taken over with an update of its checks only: no host step runs.
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { REPO, engine, onHost, phase, printTimings, removeStack, sh } from "./util.ts";
import { LAB_DEV_CONFIG, type StackConfig, changedLines, deployedBy, resources, namesWith, preview, seedChecks, up } from "./auto.ts";

/** The last main on Node.js 20 and @pulumi/pulumi 3.248, with entry.js compiling the program. */
const PREVIOUS_MAIN = "2330300";
const STACK = "e2e-runtime";
/** The last main whose checks named each library file with its hash (now: the library by its one digest). */
const LAST_MAIN = "743b675";
const CHECKS_STACK = "e2e-checks";
const CFG: StackConfig = { ...LAB_DEV_CONFIG };

/** The services the topology runs: main PID and when each last became active (a restart changes both). */
const SERVICES = "chrony ntpsec etcd docker-registry nginx";
const MARK = "/run/host-topology-upgrade.mark";
const snapshotCmd = `systemctl show -p Id,MainPID,ActiveEnterTimestampMonotonic ${SERVICES} 2>/dev/null | grep -v '^$' | sort`;
/** Files written since the mark where the program's steps write: configuration, its own records (not the scripts). */
const writtenCmd =
    `find /etc /usr/local /var/lib/host-topology -xdev -type f -newer ${MARK} ! -path '/usr/local/lib/host-topology/*' ` +
    `! -path '/var/lib/host-topology/pkg-lists.stamp' 2>/dev/null | sort`;

describe("end-to-end on the lab: a stack of the previous main upgrades in place", function () {
    this.timeout(0);
    after(() => printTimings());

    it(`deployed by ${PREVIOUS_MAIN} (Node.js 20, lib.sh), then up here: nothing replaced, the host steps' new run changes nothing`, async () => {
        phase("lab reset to pristine", () => sh("lab/lab.sh reset"));
        const deployed = await phase(`up with ${PREVIOUS_MAIN}`, () => deployedBy(PREVIOUS_MAIN, STACK, CFG));
        try {
            const stack = await deployed.here();
            const names = ["master", "node1", "node2"] as const;
            const before = new Map(names.map((h) => [h, onHost(h, `touch ${MARK} && sleep 1 && ${snapshotCmd}`).stdout]));
            const r = await phase("up with this checkout", () => up(stack));
            for (const op of ["replace", "create-replacement", "delete", "delete-replaced"]) {
                expect(namesWith(r.events, op), `${op}`).to.deep.equal([]);
            }
            // Only the Topology component is new: the stack's resources move under it by their aliases.
            expect(namesWith(r.events, "create")).to.deep.equal(["topology"]);
            const updated = namesWith(r.events, "update");
            console.log(`      updated: ${updated.length ? updated.join(", ") : "none"}`);
            // Every host step ran again (its command names the script's new name) ...
            const steps = (await resources(stack)).filter((x) => x.name.endsWith("-run")).map((x) => x.name);
            expect(steps.length).to.be.greaterThan(10);
            expect(updated.filter((n) => n.endsWith("-run")).sort(), "host steps run again").to.deep.equal(steps.sort());
            // ... and changed nothing: no `changed` line, no file written, no service restarted, the scripts in place.
            expect(await changedLines(stack), "changed lines").to.deep.equal([]);
            for (const h of names) {
                expect(onHost(h, writtenCmd).stdout, `files written on ${h}`).to.equal("");
                expect(onHost(h, snapshotCmd).stdout, `services on ${h}`).to.equal(before.get(h));
                expect(onHost(h, "ls /usr/local/lib/host-topology/lib").stdout.split("\n").filter(Boolean)).to.include("step.sh");
            }
            await seedChecks(CFG);
            await phase("preview --refresh --expect-no-changes", () => preview(stack, { refresh: true, expectNoChanges: true }));
            await stack.destroy({ onOutput: () => undefined });
        } finally {
            deployed.cleanup();
            removeStack(STACK);
        }
    });

    it(`deployed by ${LAST_MAIN} (a check named each library file), then up here: only the checks update, no host step runs`, async () => {
        phase("lab reset to pristine", () => sh("lab/lab.sh reset"));
        const deployed = await phase(`up with ${LAST_MAIN}`, () => deployedBy(LAST_MAIN, CHECKS_STACK, CFG));
        try {
            const stack = await deployed.here();
            // This checkout reads the checks the old one wrote (a hash per library file): no drift, nothing missing.
            await phase("refresh here", () => stack.refresh({ onOutput: () => undefined }));
            const checks = (await resources(stack)).filter((x) => x.type === "host-topology:index:HostCheck");
            expect(checks.length).to.be.greaterThan(10);
            for (const c of checks) expect(c.outputs.drift, `${c.name} after the refresh`).to.deep.equal({});
            const r = await phase("up with this checkout", () => up(stack));
            for (const op of ["create", "replace", "create-replacement", "delete", "delete-replaced"]) {
                expect(namesWith(r.events, op), `${op}`).to.deep.equal([]);
            }
            expect(namesWith(r.events, "update"), "only the checks, no host step").to.deep.equal(checks.map((c) => c.name).sort());
            for (const c of (await resources(stack)).filter((x) => x.type === "host-topology:index:HostCheck")) {
                // The step's script and the library by its one digest.
                const files = c.outputs.files as Record<string, string>;
                expect(Object.keys(files).length, c.name).to.equal(2);
                expect(files["/usr/local/lib/host-topology/lib/"], c.name).to.match(/^[0-9a-f]{64}$/);
            }
            await phase("preview --refresh --expect-no-changes", () => preview(stack, { refresh: true, expectNoChanges: true }));
            await stack.destroy({ onOutput: () => undefined });
        } finally {
            deployed.cleanup();
            removeStack(CHECKS_STACK);
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
