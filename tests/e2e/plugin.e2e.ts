// The provider plugin replaces the dynamic resources in place: a stack deployed by the last main with dynamic
// HostCheck, HostKey and Pki (64c1b6f) is upgraded with this code through the real engine on the lab. The uploads
// of that main (a CopyToRemote per step) give way to one HostScripts per host on the way. A stack of the last main
// with a readiness Command per host (b706328) loses those three: its HostScripts reads the OS instead.
import { expect } from "chai";
import { type HostName, type Json, engine, onHost, phase, printTimings, sh } from "./util.ts";
import { LAB_DEV_CONFIG, deployedBy, namesWith, preview, up } from "./auto.ts";

const STACK = "e2e-plugin-upgrade";
/** The last main with the Node dynamic resources. */
const DYNAMIC_MAIN = "64c1b6f";
/** The last main with a readiness Command (`<host>-ready`) beside each HostScripts. */
const READY_MAIN = "b706328";
const CFG = { ...LAB_DEV_CONFIG, etcdTls: true };

const exported = () => engine(STACK, "stack export").stdout;
const providerCode = (state: string) => (state.match(/"__provider"/g) ?? []).length;

describe("end-to-end on the lab: the provider plugin replaces the dynamic resources in place", function () {
    this.timeout(0);
    const cleanups: (() => void)[] = [];
    after(() => {
        for (const c of cleanups) c();
        printTimings();
    });
    // What a host step would touch: the scripts the host had, the files the steps write, the services they
    // restart. The scripts are those of the old mains, under their old names: the upgrade puts the new ones (host/,
    // CHANGELOG.md 0.3.0) beside them and leaves the old files as they were.
    const touched = () =>
        (["master", "node1", "node2"] as HostName[]).map((h) => {
            // Each step runs once more (its script's name and the library's digest changed), changing no file and
            // restarting nothing.
            const scripts = ["hostbase.sh", "firewall.sh", ...(h === "master" ? ["registry.sh", "etcd.sh"] : [])];
            const units = ["chrony", ...(h === "master" ? ["etcd", "nginx", "docker-registry"] : [])];
            return onHost(
                h,
                `cd /usr/local/lib/host-topology && stat -c '%n %Y' ${scripts.join(" ")} /etc/hosts /etc/chrony/chrony.conf && systemctl show -p ActiveEnterTimestampMonotonic ${units.join(" ")}`,
            ).stdout;
        });

    it(`a stack deployed with the dynamic resources (${DYNAMIC_MAIN}): one up updates them, replaces nothing, changes nothing on the hosts; no provider code left`, async () => {
        phase("lab reset to pristine", () => sh("lab/lab.sh reset"));
        const deployed = await phase(`up with ${DYNAMIC_MAIN} (dynamic resources, etcdTls)`, () => deployedBy(DYNAMIC_MAIN, STACK, CFG));
        cleanups.push(deployed.cleanup);
        const before = exported();
        expect(providerCode(before), "the dynamic resources keep their code in the state").to.be.greaterThan(0);
        const touchedBefore = touched();
        const stack = await deployed.here();
        const r = await phase("up with the provider plugin", () => up(stack));
        const after = exported();
        console.log(
            `      upgrade: ${JSON.stringify(r.changes)}; state ${(before.length / 1024).toFixed(0)} KB -> ${(after.length / 1024).toFixed(0)} KB`,
        );
        expect(namesWith(r.events, "replace")).to.deep.equal([]);
        // The plugin's default provider comes, the dynamic resources' one goes (both named `default`); each host's
        // HostScripts comes (it finds every script in place and puts none), the uploads and the readiness Commands go
        // (no-ops on the hosts).
        // (and the Topology component, which the stack's resources move under by their aliases: CHANGELOG.md 0.3.0)
        expect(namesWith(r.events, "create").sort()).to.deep.equal([
            "default",
            "master-scripts",
            "node1-scripts",
            "node2-scripts",
            "topology",
        ]);
        const deleted = namesWith(r.events, "delete");
        expect(deleted.filter((n) => !/-(upload|lib|ready)$/.test(n))).to.deep.equal(["default"]);
        expect(deleted).to.include.members(["master-lib", "node1-hosts-upload", "master-etcd1-upload", "node2-ready"]);
        const updated = namesWith(r.events, "update");
        // Only the plugin's resources change, and the host steps (the library's digest is in each step's stdin).
        expect(updated.filter((n) => !/-(check|hostkey|run)$/.test(n) && n !== "etcd-pki" && n !== "default")).to.deep.equal([]);
        expect(updated).to.include.members(["etcd-pki", "master-hostkey", "node1-time-check"]);
        expect(touched(), "scripts, files and services on the hosts untouched").to.deep.equal(touchedBefore);
        expect(providerCode(after)).to.equal(0);
        expect(after).not.to.contain("pulumi-nodejs:dynamic");
        expect(after).not.to.match(/BEGIN (EC )?PRIVATE KEY/);
        await phase("up --refresh", () => up(stack, { refresh: true }));
        expect(providerCode(exported()), "after up --refresh").to.equal(0);
        await phase("preview --refresh --expect-no-changes", () => preview(stack, { refresh: true, expectNoChanges: true }));
        await phase("destroy", () => stack.destroy({ onOutput: () => undefined }));
    });

    it(`a stack deployed by ${READY_MAIN} (a readiness Command per host): one up drops the three, its HostScripts read the OS, its HostChecks name the key file, nothing changes on the hosts`, async () => {
        const deployed = await phase(`up with ${READY_MAIN}`, () => deployedBy(READY_MAIN, STACK, CFG));
        cleanups.push(deployed.cleanup);
        const osOf = async (s: { outputs(): Promise<Record<string, { value: Json }>> }) =>
            (await s.outputs()).inventory.value.map((h: { name: string; os: string }) => `${h.name} ${h.os}`);
        const osBefore = await osOf(deployed.old);
        expect(osBefore).to.deep.equal(["master debian 12", "node1 debian 12", "node2 debian 12"]);
        const touchedBefore = touched();
        const stack = await deployed.here();
        const r = await phase("up with this code", () => up(stack));
        console.log(`      upgrade: ${JSON.stringify(r.changes)}`);
        expect(namesWith(r.events, "replace")).to.deep.equal([]);
        expect(namesWith(r.events, "create"), "only the Topology component").to.deep.equal(["topology"]);
        expect(namesWith(r.events, "delete").sort()).to.deep.equal(["master-ready", "node1-ready", "node2-ready"]);
        // The HostScripts: each reads its host's OS (the state of that main has none), and puts no script. The
        // HostChecks: their connection names the key file now instead of holding the key (a check, no repair).
        const updated = namesWith(r.events, "update").sort();
        expect(updated.filter((n) => !n.endsWith("-check") && !n.endsWith("-run"))).to.deep.equal([
            "master-scripts",
            "node1-scripts",
            "node2-scripts",
        ]);
        expect(updated.filter((n) => n.endsWith("-check"))).to.have.length(11);
        expect(touched(), "scripts, files and services on the hosts untouched").to.deep.equal(touchedBefore);
        expect(await osOf(stack), "the inventory's os output kept").to.deep.equal(osBefore);
        await phase("preview --expect-no-changes", () => preview(stack, { expectNoChanges: true }));
        await phase("destroy", () => stack.destroy({ onOutput: () => undefined }));
    });
});
