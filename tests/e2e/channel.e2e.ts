// The hosts' channel (issue: pinned host keys, sudo, a bastion, current packages), through `pulumi` on the lab.
// Every stack here is the documented topology (Pulumi.dev.yaml) with one thing changed.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import {
    type EngineResult,
    HOSTS,
    REPO,
    destroy,
    devStack,
    onHost,
    phase,
    preview,
    removeStack,
    sh,
    shellQuote as shq,
    stackOutputs,
    steps,
    up,
} from "./util.ts";

const STACK = "e2e-channel";
const FILE = path.join(REPO, `Pulumi.${STACK}.yaml`);
const MASTER_ONLY = "/etc/ssh/sshd_config.d/00-e2e-only-from-master.conf";

/** A fresh stack: the dev config plus `extra` lines (`key: value` of host-topology). */
function stackWith(extra: string[], dropKnownHosts = false): void {
    devStack(STACK, extra, dropKnownHosts ? ["sshKnownHostsPath"] : []);
}

function fingerprintOf(pubFile: string): string {
    return sh(`ssh-keygen -lf ${pubFile}`).stdout.split(" ")[1];
}

/** The fingerprint of a host's ed25519 key as .lab/ssh/known_hosts pins it. */
function pinnedFingerprint(host: keyof typeof HOSTS): string {
    const line = fs
        .readFileSync(path.join(REPO, ".lab/ssh/known_hosts"), "utf8")
        .split("\n")
        .find((l) => l.startsWith(`${HOSTS[host]},`) && l.includes("ssh-ed25519"))!;
    return sh("ssh-keygen -lf -", { input: line.split(" ").slice(1).join(" ") + "\n" }).stdout.split(" ")[1];
}

const SSH = "ssh -q -i .lab/ssh/id_ed25519 -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null";

/** Runs a command as root on a node through the master (the way in while a node accepts SSH from the master only). */
function viaMaster(host: keyof typeof HOSTS, cmd: string, allowFail = false) {
    return sh(`${SSH} -o ProxyCommand=${shq(`${SSH} -W %h:%p root@${HOSTS.master}`)} root@${HOSTS[host]} ${shq(cmd)}`, { allowFail });
}

function masterEntryOn(host: keyof typeof HOSTS): string {
    return onHost(host, "getent hosts master.danran.com").stdout.split(/\s+/)[0];
}

describe("end-to-end: the hosts' channel (host keys, sudo, bastion, package lists)", function () {
    this.timeout(0);

    after(async () => {
        for (const h of ["node1", "node2"] as const) {
            // Undo the bastion test's sshd rule even if it failed (through the master, the only way in then).
            viaMaster(h, `rm -f ${MASTER_ONLY} && systemctl reload ssh`, true);
        }
        for (const h of ["node1", "node2"]) sh(`lab/lab.sh trust ${h}`, { allowFail: true });
        await up(STACK, { allowFail: true });
        await destroy(STACK, { allowFail: true });
        removeStack(STACK);
        sh(`rm -f ${FILE}`);
    });

    it("pinned keys: a host with another key is refused by up and preview --refresh, naming it and both fingerprints; nothing runs on it", async () => {
        phase("lab reset", () => sh("lab/lab.sh reset"));
        stackWith([]);
        await phase("up (keys pinned from .lab/ssh/known_hosts)", () => up(STACK));
        expect((await stackOutputs(STACK)).hostKeys.node1).to.equal(
            sh(`cut -d' ' -f1,2 .lab/hostkeys/node1/etc/ssh/ssh_host_ed25519_key.pub`).stdout.trim(),
        );

        const pinned = pinnedFingerprint("node1");
        sh("lab/lab.sh rekey node1");
        const presented = fingerprintOf(".lab/hostkeys/node1/etc/ssh/ssh_host_ed25519_key.pub");
        expect(presented).to.not.equal(pinned);
        // Drift that any command of the stack on node1 would repair: it stays, so nothing ran there.
        onHost("node1", "sed -i 's/^192.168.100.2 master.danran.com.*/192.168.100.99 master.danran.com master/' /etc/hosts");
        const mtime = onHost("node1", "stat -c %Y /etc/hosts").stdout.trim();

        for (const [what, run] of [
            ["up --refresh", () => up(STACK, { refresh: true, allowFail: true })],
            ["up", () => up(STACK, { allowFail: true })],
            ["preview --refresh", () => preview(STACK, { refresh: true, allowFail: true })],
        ] as [string, () => Promise<EngineResult>][]) {
            const r = await phase(`${what} with node1's key changed`, run);
            expect(r.code, `${what} must fail`).to.not.equal(0);
            const line = r.out.split("\n").find((l) => /host key mismatch/.test(l)) ?? "";
            console.log(`      ${what}: ${line.trim().slice(0, 220)}`);
            expect(line, r.out.slice(-3000)).to.contain("192.168.100.3");
            expect(line).to.contain(presented);
            expect(line).to.contain(pinned);
            // No remote command started (what the display shows as `command:remote:Command NAME creating|updating`).
            const started = steps(r.events).filter(
                (st) => !st.planning && st.type === "command:remote:Command" && ["create", "create-replacement", "update"].includes(st.op),
            );
            expect(
                started.map((st) => `${st.op} ${st.name}`),
                r.out.slice(-3000),
            ).to.deep.equal([]);
        }
        expect(onHost("node1", "stat -c %Y /etc/hosts").stdout.trim(), "node1 was not touched").to.equal(mtime);
        expect(masterEntryOn("node1")).to.equal("192.168.100.99");

        // The new key trusted (known_hosts updated): `up` takes it (a refresh alone would still compare with the key
        // in the state), then up --refresh repairs the drift.
        sh("lab/lab.sh trust node1");
        const taken = await phase("up after trusting the new key", () => up(STACK));
        expect(taken.changed, taken.out.slice(-3000)).to.include("node1-hostkey");
        await phase("up --refresh after trusting the new key", () => up(STACK, { refresh: true }));
        expect(masterEntryOn("node1")).to.equal(HOSTS.master);
        await preview(STACK, { refresh: true, expectNoChanges: true });
    });

    it("a reinstalled host (a pristine disk, a new key): once its new key is pinned, up puts its scripts back and converges it", async () => {
        phase("lab reset", () => sh("lab/lab.sh reset"));
        stackWith([]);
        await phase("up", () => up(STACK));
        phase("node1 reinstalled: disk reset, new host key, the key trusted", () =>
            sh("lab/lab.sh reset node1 && lab/lab.sh rekey node1 && lab/lab.sh trust node1"),
        );
        expect(onHost("node1", "ls /usr/local/lib/host-topology 2>/dev/null | wc -l").stdout.trim(), "no scripts on the new disk").to.equal(
            "0",
        );
        expect(
            onHost("node1", "grep -c master.danran.com /etc/hosts", { allowFail: true }).stdout.trim(),
            "no hosts block on the new disk",
        ).to.equal("0");
        const r = await phase("up after the reinstall", () => up(STACK));
        // The host's HostScripts follows its new key (another host, as far as the scripts go) and puts them before
        // its steps run again (they do: their connection changed).
        expect(r.changed, r.out.slice(-3000)).to.include.members(["node1-hostkey", "node1-scripts", "node1-hosts-run", "node1-time-run"]);
        expect(masterEntryOn("node1")).to.equal(HOSTS.master);
        expect(onHost("node1", "systemctl is-enabled chrony").stdout.trim()).to.equal("enabled");
        await preview(STACK, { refresh: true, expectNoChanges: true });
    });

    it("accept-new: keys recorded at first contact; a changed key is refused until pinned in the config", async () => {
        phase("lab reset", () => sh("lab/lab.sh reset"));
        stackWith(["sshHostKeyPolicy: accept-new"], true);
        await phase("up (accept-new, first contact)", () => up(STACK));
        const recorded = (await stackOutputs(STACK)).hostKeys;
        for (const h of ["master", "node1", "node2"]) {
            expect(recorded[h]).to.equal(sh(`cut -d' ' -f1,2 .lab/hostkeys/${h}/etc/ssh/ssh_host_ed25519_key.pub`).stdout.trim());
        }
        await preview(STACK, { refresh: true, expectNoChanges: true });

        sh("lab/lab.sh rekey node2");
        const presented = fingerprintOf(".lab/hostkeys/node2/etc/ssh/ssh_host_ed25519_key.pub");
        const r = await phase("up with node2's key changed", () => up(STACK, { allowFail: true }));
        expect(r.code).to.not.equal(0);
        expect(r.out).to.match(
            new RegExp(`node2 \\(192\\.168\\.100\\.4:22\\): host key mismatch: the host presented ${presented.replace(/[+/]/g, "\\$&")}`),
        );

        // Pinning the new key in the config replaces the recorded one.
        const newKey = sh(`cut -d' ' -f1,2 .lab/hostkeys/node2/etc/ssh/ssh_host_ed25519_key.pub`).stdout.trim();
        sh(`pulumi config set --path 'host-topology:hosts[2].hostKey' ${shq(newKey)} --stack ${STACK}`);
        expect(fs.readFileSync(FILE, "utf8")).to.contain(newKey);
        await phase("up with node2's new key pinned", () => up(STACK));
        expect((await stackOutputs(STACK)).hostKeys.node2).to.equal(newKey);
        sh("lab/lab.sh trust node2");
    });

    it("a non-root sshUser with passwordless sudo deploys the topology; one without sudo gets a clear error", async () => {
        phase("lab reset", () => sh("lab/lab.sh reset"));
        stackWith(["sshUser: nosudo"]);
        const refused = await phase("up as nosudo", () => up(STACK, { allowFail: true }));
        expect(refused.code).to.not.equal(0);
        expect(refused.out).to.match(/host-topology: lab-(master|node1|node2): user nosudo cannot run sudo without a password/);
        expect(onHost("node1", "test -e /usr/local/lib/host-topology", { allowFail: true }).code, "nothing installed").to.not.equal(0);

        stackWith(["sshUser: deploy"]);
        await phase("up as deploy (sudo)", () => up(STACK));
        for (const h of ["master", "node1", "node2"] as const) {
            expect(masterEntryOn(h)).to.equal(HOSTS.master);
            expect(onHost(h, "stat -c '%U %a' /usr/local/lib/host-topology/lib/step.sh").stdout.trim(), "scripts owned by root").to.equal(
                "root 644",
            );
        }
        expect(onHost("master", `ETCDCTL_API=3 etcdctl --endpoints=http://${HOSTS.master}:2379 endpoint health 2>&1`).stdout).to.match(
            /is healthy/,
        );
        // Drift is read and repaired through sudo too.
        onHost("master", "systemctl disable --now nginx");
        await phase("up --refresh as deploy", () => up(STACK, { refresh: true }));
        expect(onHost("master", "systemctl is-active nginx").stdout.trim()).to.equal("active");
        await preview(STACK, { refresh: true, expectNoChanges: true });
        await destroy(STACK);
        expect(onHost("master", "test -e /usr/local/lib/host-topology", { allowFail: true }).code).to.not.equal(0);
    });

    it("a bastion: nodes that accept SSH only from the master are reached through sshProxy; without it the error is clear", async () => {
        phase("lab reset", () => sh("lab/lab.sh reset"));
        try {
            await bastion();
        } finally {
            // The lab itself reaches the nodes directly: the rule goes even when an assertion failed.
            for (const h of ["node1", "node2"] as const) {
                viaMaster(h, `rm -f ${MASTER_ONLY} && systemctl reload ssh`, true);
            }
        }
    });

    async function bastion(): Promise<void> {
        for (const h of ["node1", "node2"] as const) {
            onHost(h, `printf 'AllowUsers *@${HOSTS.master}\\n' > ${MASTER_ONLY} && systemctl reload ssh`);
        }
        // This machine (192.168.100.1) is refused now; the master gets in.
        const direct = sh(
            `ssh -q -i .lab/ssh/id_ed25519 -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@${HOSTS.node1} true`,
            { allowFail: true },
        );
        expect(direct.code, "direct SSH to node1 must be refused").to.not.equal(0);

        stackWith(["sshDialErrorLimit: 2"]);
        const without = await phase("up without the proxy", () => up(STACK, { allowFail: true }));
        expect(without.code).to.not.equal(0);
        const line = without.out.split("\n").find((l) => /node[12]-scripts/.test(l) && /authentication methods failed/i.test(l)) ?? "";
        console.log(`      without the proxy: ${line.trim().slice(0, 200)}`);
        expect(line, without.out.slice(-3000)).to.not.equal("");

        stackWith([`sshProxy: {host: ${HOSTS.master}}`]);
        await phase("up through the master as bastion", () => up(STACK));
        expect(masterEntryOn("master")).to.equal(HOSTS.master);
        for (const h of ["node1", "node2"] as const)
            expect(viaMaster(h, "getent hosts master.danran.com").stdout.split(/\s+/)[0]).to.equal(HOSTS.master);
        // Refresh reads the nodes through the proxy too.
        viaMaster("node2", "sed -i 's/^192.168.100.2 master.danran.com.*/192.168.100.99 master.danran.com master/' /etc/hosts");
        const drift = await preview(STACK, { refresh: true, diff: true });
        expect(drift.changed, drift.out.slice(-3000)).to.include("node2-hosts-check");
        await phase("up --refresh through the bastion", () => up(STACK, { refresh: true }));
        await preview(STACK, { refresh: true, expectNoChanges: true });
        await destroy(STACK);
    }

    it("package lists older than packageListsMaxAge are refreshed first: the installed nginx is the current candidate", async () => {
        phase("lab reset", () => sh("lab/lab.sh reset master"));
        // A host whose lists predate the point and security updates: those lists gone, the rest two days old.
        onHost(
            "master",
            "rm -f /var/lib/apt/lists/*-updates_* /var/lib/apt/lists/*-security_* && touch -d '2 days ago' /var/lib/apt/lists/* && apt-cache policy nginx | sed -n 3p",
        );
        const stale = onHost("master", "apt-cache policy nginx | awk '/Candidate:/ {print $2}'").stdout.trim();
        stackWith([]);
        await phase("up with stale package lists", () => up(STACK));
        const installed = onHost("master", "dpkg-query -W -f '${Version}' nginx").stdout.trim();
        onHost("master", "apt-get -q update >/dev/null");
        const current = onHost("master", "apt-cache policy nginx | awk '/Candidate:/ {print $2}'").stdout.trim();
        console.log(`      nginx: candidate in the stale lists ${stale}, installed ${installed}, current candidate ${current}`);
        expect(installed).to.equal(current);
    });
});
