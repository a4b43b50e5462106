// Bad input: every malformed configuration is rejected by `pulumi preview` with a message naming the key, and no
// host is touched (the lab's sshd logs no new session).
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { REPO, freshStack, onHost, phase, preview, removeStack, sh, steps } from "./util.ts";

const STACK = "e2e-badinput";
const FILE = path.join(REPO, `Pulumi.${STACK}.yaml`);
const NS = "host-topology";

const hosts = () => [
    { name: "master", address: "192.168.100.2", roles: ["master", "etcd", "registry"] },
    { name: "node1", address: "192.168.100.3", roles: ["node"] },
    { name: "node2", address: "192.168.100.4", roles: ["node"] },
];
const withHosts = (f: (h: Record<string, unknown>[]) => void) => {
    const h = hosts();
    f(h);
    return { hosts: h };
};

/** [what, config overrides (null deletes the key), the key the error must name] */
const CASES: [string, Record<string, unknown>, string][] = [
    ["bad IP", withHosts((h) => (h[1].address = "192.168.100.256")), "hosts[1].address"],
    ["IP with a leading zero", withHosts((h) => (h[2].address = "192.168.100.04")), "hosts[2].address"],
    ["host name with underscore", withHosts((h) => (h[1].name = "node_1")), "hosts[1].name"],
    ["duplicate host name", withHosts((h) => (h[2].name = "node1")), "hosts"],
    ["duplicate address", withHosts((h) => (h[2].address = "192.168.100.3")), "hosts"],
    ["unknown role", withHosts((h) => (h[1].roles = ["worker"])), "hosts[1].roles[0]"],
    ["roles missing", withHosts((h) => delete h[1].roles), "hosts[1].roles"],
    ["two registries", withHosts((h) => (h[1].roles = ["registry"])), "hosts"],
    ["hosts missing", { hosts: null }, "hosts"],
    ["hosts not a list", { hosts: { name: "master" } }, "hosts"],
    ["etcd member on an unknown host", { etcdMembers: [{ host: "master" }, { host: "node9" }, { host: "node1" }] }, "etcdMembers[1].host"],
    ["even etcd count", { etcdMembers: [{ host: "master" }, { host: "node1" }] }, "etcdMembers"],
    ["the notes' hhttp:// URL", { etcdMembers: [{ host: "master", clientUrl: "hhttp://192.168.100.2:2379" }] }, "etcdMembers[0].clientUrl"],
    ["peer URL without port", { etcdMembers: [{ host: "master", peerUrl: "http://etcd1" }] }, "etcdMembers[0].peerUrl"],
    ["bad domain", { domain: "danran..com" }, "domain"],
    ["SSH port of wrong type", { sshPort: "twenty-two" }, "sshPort"],
    ["SSH port out of range", { sshPort: 70000 }, "sshPort"],
    ["boolean of wrong type", { registryAuth: "yes" }, "registryAuth"],
    ["unknown time implementation", { timeImplementation: "ntpd" }, "timeImplementation"],
    ["time server with a space", { timeServers: ["pool.ntp.org", "bad server"] }, "timeServers[1]"],
    ["missing SSH key file", { sshPrivateKeyPath: ".lab/ssh/no-such-key" }, "sshPrivateKeyPath"],
    ["no SSH key at all", { sshPrivateKeyPath: null }, "sshPrivateKey"],
    ["misspelt key", { etcdMember: ["master"] }, "etcdMember"],
    ["firewall unit with shell syntax", { firewallUnits: ["firewalld", "x; rm -rf /"] }, "firewallUnits[1]"],
    ["alias colliding with another host", withHosts((h) => (h[1].aliases = ["registry"])), "hosts"],
    ["host key not base64", withHosts((h) => (h[1].hostKey = "ssh-ed25519 not-base64!")), "hosts[1].hostKey"],
    ["host key of an unknown type", withHosts((h) => (h[2].hostKey = "ssh-dss AAAAB3NzaC1kc3MAAACBAP")), "hosts[2].hostKey"],
    ["no host key pinned (strict)", { sshKnownHostsPath: null }, "hosts[0].hostKey"],
    ["unreadable known_hosts", { sshKnownHostsPath: ".lab/ssh/no-such-known-hosts" }, "sshKnownHostsPath"],
    ["unknown host key policy", { sshHostKeyPolicy: "yes" }, "sshHostKeyPolicy"],
    ["proxy not an object", { sshProxy: "master" }, "sshProxy"],
    ["proxy host with a space", { sshProxy: { host: "bad host" } }, "sshProxy.host"],
    ["proxy port 0", { sshProxy: { host: "192.168.100.2", port: 0 } }, "sshProxy.port"],
    ["proxy host key malformed", { sshProxy: { host: "192.168.100.2", hostKey: "ssh-ed25519" } }, "sshProxy.hostKey"],
    ["SSH user with shell syntax", { sshUser: "root; rm -rf /" }, "sshUser"],
    ["package list age in words", { packageListsMaxAge: "one hour" }, "packageListsMaxAge"],
    [
        "http etcd URL with etcdTls",
        { etcdTls: true, etcdMembers: [{ host: "master", clientUrl: "http://192.168.100.2:2379" }] },
        "etcdMembers[0].clientUrl",
    ],
    ["registryTls of wrong type", { registryTls: "sometimes" }, "registryTls"],
];

const HOSTS3 = ["master", "node1", "node2"] as const;

/** Each host's journal cursor now. */
function cursors(): string[] {
    return HOSTS3.map((h) => /^-- cursor: (.*)$/m.exec(onHost(h, "journalctl -n 0 --show-cursor --no-pager").stdout)![1]);
}

/** SSH logins per host since the cursors (the session that asks is counted at most once). */
function loginsSince(c: string[]): number[] {
    return HOSTS3.map((h, i) =>
        Number(
            onHost(h, `journalctl -u ssh --after-cursor='${c[i]}' --no-pager -o cat | grep -c 'Accepted publickey' || true`, {
                allowFail: true,
            }).stdout.trim() || 0,
        ),
    );
}

describe("end-to-end: bad input is rejected at preview, before any host is touched", function () {
    this.timeout(0);
    let salt = "";
    const report: string[] = [];
    const rejectPreview = () => preview(STACK, { allowFail: true });

    before(() => {
        fs.writeFileSync(FILE, "config: {}\n");
        freshStack(STACK);
        salt = fs.existsSync(FILE) ? (/^encryptionsalt: .*$/m.exec(fs.readFileSync(FILE, "utf8"))?.[0] ?? "") : "";
    });
    after(() => {
        removeStack(STACK);
        sh(`rm -f ${FILE}`);
        console.log(`\n  Bad-input report (${report.length} configurations, pulumi preview):\n${report.join("\n")}`);
    });

    it(`rejects ${CASES.length} malformed configurations, naming the key, with no SSH session`, async () => {
        expect(CASES.length).to.be.at.least(20);
        const since = cursors();
        await phase(`${CASES.length} bad previews`, async () => {
            for (const [what, overrides, key] of CASES) {
                const cfg: Record<string, unknown> = {
                    [`${NS}:hosts`]: hosts(),
                    [`${NS}:sshPrivateKeyPath`]: ".lab/ssh/id_ed25519",
                    [`${NS}:sshKnownHostsPath`]: ".lab/ssh/known_hosts",
                };
                for (const [k, v] of Object.entries(overrides)) {
                    if (v === null) delete cfg[`${NS}:${k}`];
                    else cfg[`${NS}:${k}`] = v;
                }
                fs.writeFileSync(FILE, `${salt}\nconfig: ${JSON.stringify(cfg)}\n`);
                const t0 = Date.now();
                const r = await rejectPreview();
                const ms = Date.now() - t0;
                // The program's own error lists `- <key path>: <reason>`; the engine's check of the typed project
                // config (Pulumi.yaml) names the key as 'key' or host-topology:key.
                const line =
                    r.out.split("\n").find((l) => l.includes(`- ${key}:`) || l.includes(`${NS}:${key}`) || l.includes(`'${key}'`)) ?? "";
                report.push(`    ${String(ms).padStart(6)} ms  exit ${r.code}  ${what}: ${line.trim()}`);
                expect(r.code, `${what}: preview must fail\n${r.out.slice(-1500)}`).to.not.equal(0);
                expect(line, `${what}: the error must name ${key}\n${r.out.slice(-1500)}`).to.not.equal("");
                // No remote command started (what the display shows as `command:remote:Command NAME creating`).
                const started = steps(r.events).filter(
                    (st) => !st.planning && st.type === "command:remote:Command" && ["create", "create-replacement"].includes(st.op),
                );
                expect(
                    started.map((st) => st.name),
                    what,
                ).to.deep.equal([]);
            }
        });
        // The asking session may itself be logged already; a preview that connected would log dozens per host.
        for (const n of loginsSince(since)) expect(n, "no host may be touched").to.be.at.most(1);
    });
});
