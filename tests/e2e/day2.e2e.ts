// Day 2: changes to a running topology, each through the real engine (Automation API) on the lab, starting from a
// deployed stack and ending with the seed's checks and `preview --refresh --expect-no-changes`.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { Stack } from "@pulumi/pulumi/automation/index.js";
import { HOSTS, REPO, phase, printTimings, sh, shellQuote } from "./util.ts";
import {
    type HostEntry,
    NODE3,
    type StackConfig,
    changedLines,
    etcdEndpoints,
    etcdGet,
    etcdMembersOf,
    etcdPut,
    namesWith,
    newStack,
    onAddress,
    preview,
    seedChecks,
    up,
    withWriter,
    writeConfig,
} from "./auto.ts";

const STACK = "e2e-day2";
const host = (name: string, address: string, roles: string[]): HostEntry => ({ name, address, roles });
const DEV_HOSTS = [
    host("master", HOSTS.master, ["master", "etcd", "registry"]),
    host("node1", HOSTS.node1, ["node"]),
    host("node2", HOSTS.node2, ["node"]),
];
const BASE: StackConfig = {
    domain: "danran.com",
    hosts: DEV_HOSTS,
    sshPrivateKeyPath: ".lab/ssh/id_ed25519",
    sshKnownHostsPath: ".lab/ssh/known_hosts",
    timeServeFromMaster: true,
};

const on = onAddress;
const endpoints = etcdEndpoints;

/** The seed's checks for `cfg` on the hosts (with the key every member must answer), then `preview --refresh --expect-no-changes`. */
async function converged(stack: Stack, cfg: StackConfig): Promise<void> {
    await seedChecks(cfg, "/day2/probe");
    await phase("preview --refresh --expect-no-changes", () => preview(stack, { refresh: true, expectNoChanges: true }));
}

/** Sets the stack's config to `cfg` and runs `pulumi up`. */
async function apply(stack: Stack, cfg: StackConfig, what: string, opts: Parameters<typeof up>[1] = {}) {
    writeConfig(STACK, cfg);
    return phase(`up: ${what}`, () => up(stack, opts));
}

describe("end-to-end on the lab: changing a running topology (Day 2)", function () {
    this.timeout(0);
    let stack: Stack;
    let cfg: StackConfig;

    before(async () => {
        phase("lab reset to pristine", () => sh("lab/lab.sh reset"));
        cfg = { ...BASE };
        stack = await newStack(STACK, cfg);
    });

    after(() => printTimings());

    it("first up on the lab's image as it boots: every configured source's lists are fetched, so nginx is the security update", async () => {
        // The image has a fresh list for bookworm main and none for the updates and security suites of its sources.list.
        const expected = on(
            HOSTS.master,
            `apt-get -o APT::Get::IndexTargets::ReleaseInfo=false indextargets --format '$(FILENAME)' 'Created-By: Packages' 'Optional: no' | sort -u`,
        )
            .stdout.trim()
            .split("\n");
        const missing = expected.filter((f) => on(HOSTS.master, `ls ${f}* >/dev/null 2>&1`, { allowFail: true }).code !== 0);
        console.log(`      configured package lists: ${expected.length}, missing before up: ${missing.length}`);
        expect(missing.length, "the lab's image lacks some configured lists (the case under test)").to.be.greaterThan(0);
        const r = await phase("up: dev topology on pristine hosts", () => up(stack));
        expect(r.changes.create ?? 0).to.be.greaterThan(20);
        const installed = on(HOSTS.master, "dpkg-query -W -f='${Version}' nginx").stdout.trim();
        const candidate = on(HOSTS.master, "apt-get update -qq && apt-cache policy nginx | awk '/Candidate:/ { print $2 }'").stdout.trim();
        console.log(`      nginx installed ${installed}, candidate after apt-get update ${candidate}`);
        expect(installed).to.equal(candidate);
        await etcdPut(endpoints(cfg), "/day2/probe", "here");
        await converged(stack, cfg);
    });

    it("a renamed host keeps its config: the old name's steps leave the host to the new ones", async () => {
        await phase("pulumi config set --path hosts[2].name worker2", () =>
            stack.setConfig("host-topology:hosts[2].name", { value: "worker2" }, true),
        );
        const r = await phase("up: node2 renamed worker2", () => up(stack));
        expect(namesWith(r.events, "delete")).to.include("node2-hosts-run");
        expect(r.out).to.match(
            /left alone: hostbase on worker2 was applied by host-topology\/e2e-day2\/worker2-hosts, not by this step \(host-topology\/e2e-day2\/node2-hosts\)/,
        );
        cfg = { ...cfg, hosts: [DEV_HOSTS[0], DEV_HOSTS[1], host("worker2", HOSTS.node2, ["node"])] };
        await converged(stack, cfg);
        // and back again
        cfg = { ...cfg, hosts: DEV_HOSTS };
        await apply(stack, cfg, "worker2 renamed node2");
        await converged(stack, cfg);
    });

    it("one host down: up --continue-on-error converges the others and fails naming it; once it is back, up converges it", async () => {
        const chronyMtime = (a: string) => on(a, "stat -c %Y /etc/chrony/chrony.conf").stdout.trim();
        phase("lab stop node2", () => sh("lab/lab.sh stop node2"));
        cfg = { ...cfg, timeServeFromMaster: false };
        try {
            const r = await apply(stack, cfg, "timeServeFromMaster off, node2 down", { continueOnError: true, allowFail: true });
            expect(r.error, "the update fails").to.be.a("string");
            expect(r.error).to.match(/node2 \(192\.168\.100\.4:22\): cannot read the host key/);
            const node1 = on(HOSTS.node1, "grep '^server ' /etc/chrony/chrony.conf").stdout;
            expect(node1, "node1 converged meanwhile").to.contain("server 0.pool.ntp.org iburst");
            expect(on(HOSTS.master, "cat /etc/chrony/chrony.conf").stdout, "the master serves no one now").to.not.match(/^allow /m);
        } finally {
            phase("lab start node2", () => sh("lab/lab.sh start node2"));
        }
        await apply(stack, cfg, "node2 back");
        await converged(stack, cfg);

        // A host with another key: every step on it is stopped before any runs; the others converge.
        phase("lab rekey node1", () => sh("lab/lab.sh rekey node1"));
        const before = chronyMtime(HOSTS.node1);
        cfg = { ...cfg, timeServeFromMaster: true };
        try {
            const r = await apply(stack, cfg, "timeServeFromMaster on, node1 re-keyed", { continueOnError: true, allowFail: true });
            expect(r.error).to.match(/node1 \(192\.168\.100\.3:22\): host key mismatch/);
            expect(chronyMtime(HOSTS.node1), "nothing ran on node1").to.equal(before);
            expect(on(HOSTS.node2, "grep '^server ' /etc/chrony/chrony.conf").stdout.trim()).to.equal(`server ${HOSTS.master} iburst`);
            expect(namesWith(r.events, "update").filter((n) => n.startsWith("node1-"))).to.satisfy((ns: string[]) =>
                ns.every((n) => n === "node1-hostkey"),
            );
        } finally {
            phase("lab trust node1", () => sh("lab/lab.sh trust node1"));
        }
        await apply(stack, cfg, "node1's new key trusted");
        await converged(stack, cfg);
    });

    it("the registry moves from the master to node1 and back; storage stays where it was", async () => {
        const hosts = [host("master", HOSTS.master, ["master", "etcd"]), host("node1", HOSTS.node1, ["node", "registry"]), DEV_HOSTS[2]];
        cfg = { ...cfg, hosts };
        await apply(stack, cfg, "registry to node1");
        const master = on(
            HOSTS.master,
            "systemctl is-enabled docker-registry || true; systemctl is-active docker-registry || true; test -e /etc/nginx/conf.d/registry.conf && echo site || echo no-site; test -d /var/lib/registry && echo storage",
        ).stdout;
        expect(master.split("\n")).to.include.members(["disabled", "inactive", "no-site", "storage"]);
        await converged(stack, cfg);
        cfg = { ...cfg, hosts: DEV_HOSTS };
        await apply(stack, cfg, "registry back to the master");
        expect(on(HOSTS.node1, "test -e /etc/nginx/conf.d/registry.conf && echo site || echo no-site").stdout.trim()).to.equal("no-site");
        await converged(stack, cfg);
    });

    it("a host added to the running stack and removed again", async () => {
        phase("lab: node3 booted (LAB_NODES=3), pristine", () => sh("LAB_NODES=3 lab/lab.sh up && lab/lab.sh reset node3"));
        try {
            cfg = { ...cfg, hosts: [...DEV_HOSTS, host("node3", NODE3, ["node"])] };
            await apply(stack, cfg, "node3 added");
            expect(on(HOSTS.master, "cat /etc/chrony/chrony.conf").stdout).to.match(/^allow 192\.168\.100\.5$/m);
            await converged(stack, cfg);
            cfg = { ...cfg, hosts: DEV_HOSTS };
            await apply(stack, cfg, "node3 removed");
            const left = on(
                NODE3,
                "grep -c 'host-topology managed block' /etc/hosts || true; systemctl is-enabled chrony || true; test -d /usr/local/lib/host-topology && echo scripts || echo no-scripts",
            ).stdout;
            expect(left.split("\n").slice(0, 3), "node3's managed config removed as destroy would").to.deep.equal([
                "0",
                "disabled",
                "no-scripts",
            ]);
            for (const a of [HOSTS.master, HOSTS.node1, HOSTS.node2])
                expect(on(a, "grep -c node3 /etc/hosts || true").stdout.trim(), `node3 gone from ${a}'s block`).to.equal("0");
            const masterConf = on(HOSTS.master, "cat /etc/chrony/chrony.conf").stdout;
            expect(
                masterConf.split("\n").filter((l) => l.startsWith("allow")),
                "the master keeps serving the rest",
            ).to.deep.equal([`allow ${HOSTS.node1}`, `allow ${HOSTS.node2}`]);
            await converged(stack, cfg);
        } finally {
            phase("lab: back to master, node1, node2", () => sh("LAB_NODES=2 lab/lab.sh up"));
        }
    });

    it("etcd grows 1 -> 3 and shrinks 3 -> 1 with its data, one member at a time, while a client writes every 100 ms", async () => {
        for (let i = 0; i < 20; i++) await etcdPut(endpoints(cfg), `/day2/before-grow/${i}`, `v${i}`);
        const three = { ...cfg, etcdMembers: [{ host: "master" }, { host: "node1" }, { host: "node2" }] };
        const grow = await withWriter(
            () => endpoints(three),
            "/day2/writes-grow",
            () => apply(stack, three, "etcd 1 -> 3"),
        );
        console.log(
            `      writes during the grow: ${grow.writes.ok} ok, ${grow.writes.failed} failed, longest gap ${grow.writes.longestGapMs} ms ${grow.writes.errors.join(" | ")}`,
        );
        cfg = three;
        for (let i = 0; i < 20; i++)
            expect(await etcdGet([endpoints(cfg)[2]], `/day2/before-grow/${i}`), "a key written before the grow, read from etcd3").to.equal(
                `v${i}`,
            );
        const joined = grow.result.out;
        expect(joined).to.match(/etcd member etcd2 added to the running cluster as a learner/);
        expect(joined).to.match(/etcd member etcd3 promoted from learner/);
        expect(joined, "etcd1 is not restarted for the new initial cluster").to.match(
            /etcd member etcd1: only ETCD_INITIAL_\* settings changed/,
        );
        await converged(stack, cfg);

        // A change that reaches every member (here: each member's environment file edited by hand, repaired by
        // up --refresh) restarts them one at a time, each healthy before the next, a leader handing over first.
        for (const m of etcdMembersOf(cfg)) on(m.address, `printf 'ETCD_HEARTBEAT_INTERVAL="150"\\n' >> /etc/default/etcd`);
        const since = Math.floor(Date.now() / 1000);
        const rolling = await withWriter(
            () => endpoints(cfg),
            "/day2/writes-rolling",
            () => phase("up --refresh: every member's config repaired", () => up(stack, { refresh: true })),
        );
        console.log(
            `      writes during the rolling restart: ${rolling.writes.ok} ok, ${rolling.writes.failed} failed, longest gap ${rolling.writes.longestGapMs} ms ${rolling.writes.errors.join(" | ")}`,
        );
        const starts = etcdMembersOf(cfg)
            .map((m) => on(m.address, "systemctl show -p ActiveEnterTimestampMonotonic --value etcd").stdout.trim())
            .map(Number);
        expect(starts[0] < starts[1] && starts[1] < starts[2], `restarted in order etcd1, etcd2, etcd3 (${starts})`).to.equal(true);
        // Each member was stopped as a follower: a leader handed leadership over (etcdctl move-leader) first.
        for (const m of etcdMembersOf(cfg)) {
            const log = on(m.address, `journalctl -u etcd --since @${since} --no-pager -o cat`).stdout;
            const stops = log.split("\n").filter((l) => l.includes("received terminated signal")).length;
            expect(stops, `${m.name} restarted once`).to.equal(1);
            expect(log, `${m.name} stopped as a follower`).to.contain("skipped leadership transfer for stopping non-leader member");
        }
        await converged(stack, cfg);

        const one = { ...cfg, etcdMembers: [{ host: "master" }] };
        const shrink = await withWriter(
            () => endpoints(one),
            "/day2/writes-shrink",
            () => apply(stack, one, "etcd 3 -> 1"),
        );
        console.log(
            `      writes during the shrink: ${shrink.writes.ok} ok, ${shrink.writes.failed} failed, longest gap ${shrink.writes.longestGapMs} ms ${shrink.writes.errors.join(" | ")}`,
        );
        cfg = one;
        expect(shrink.result.out).to.match(/etcd member etcd3 removed from the cluster/);
        expect(shrink.result.out).to.match(/etcd member etcd2 removed from the cluster/);
        for (let i = 0; i < 20; i++) expect(await etcdGet(endpoints(cfg), `/day2/before-grow/${i}`)).to.equal(`v${i}`);
        expect(
            on(HOSTS.node1, "ls -d /var/lib/etcd/etcd2.etcd.removed-*").stdout,
            "a member that left keeps its data dir under a new name",
        ).to.match(/etcd2\.etcd\.removed-/);
        await converged(stack, cfg);
        for (const w of [grow, rolling, shrink]) {
            // A leader election costs a second or two of failed writes at most; the target is none.
            expect(w.writes.longestGapMs, `longest stretch without a write: ${JSON.stringify(w.writes)}`).to.be.below(5000);
        }
    });

    it("the SSH key rotated: only connections change, nothing restarts; refresh, repair and destroy work with the new key alone", async () => {
        const oldKey = path.join(REPO, ".lab", "day2-old-key");
        fs.rmSync(oldKey, { force: true });
        fs.rmSync(`${oldKey}.pub`, { force: true });
        sh(`ssh-keygen -q -t ed25519 -N '' -C day2-old-key -f ${oldKey}`);
        const pub = fs.readFileSync(`${oldKey}.pub`, "utf8").trim();
        const hosts = cfg.hosts as HostEntry[];
        for (const h of hosts) on(h.address, `echo ${shellQuote(pub)} >> /root/.ssh/authorized_keys`);
        try {
            // A stack deployed on the old key (its drift checks hold that key in the state) ...
            await phase("destroy (the stack starts again on the old key)", () => stack.destroy({ onOutput: () => undefined }));
            cfg = { ...cfg, sshPrivateKeyPath: path.relative(REPO, oldKey) };
            stack = await newStack(STACK, cfg);
            await phase("up: deployed on the old key", () => up(stack));
            // ... then the key is rotated: the config names the new one (the lab's), and the old one is dropped.
            cfg = { ...cfg, sshPrivateKeyPath: BASE.sshPrivateKeyPath };
            const planned = await phase("preview: key rotated", () => preview(stack, { diff: true }));
            expect(
                namesWith(planned.events, "create").concat(namesWith(planned.events, "delete")),
                "nothing created or deleted",
            ).to.deep.equal([]);
            writeConfig(STACK, cfg);
            await phase("up: key rotated", () => up(stack));
            expect(await changedLines(stack), "re-runs changed nothing on the hosts").to.deep.equal([]);
        } finally {
            for (const h of hosts) on(h.address, `sed -i '/day2-old-key$/d' /root/.ssh/authorized_keys`);
        }
        for (const h of hosts) expect(on(h.address, "grep -c day2-old-key /root/.ssh/authorized_keys || true").stdout.trim()).to.equal("0");
        on(HOSTS.node1, "echo '10.9.9.9 master' >> /etc/hosts");
        const drift = await phase("preview --refresh with the new key alone", () => preview(stack, { refresh: true }));
        expect(namesWith(drift.events, "update")).to.include("node1-hosts-check");
        await phase("up --refresh with the new key alone", () => up(stack, { refresh: true }));
        await converged(stack, cfg);
        await phase("destroy with the new key alone", () => stack.destroy({ onOutput: () => undefined }));
        for (const h of hosts)
            expect(on(h.address, "grep -c 'host-topology managed block' /etc/hosts || true").stdout.trim()).to.equal("0");
    });
});
