// A second OS on real hosts (Debian 13, trixie, next to Debian 12) and firewalls that are really there, through
// `pulumi` on the lab. The lab boots a host on trixie with LAB_SUITE_<host>=trixie; the hosts have CAP_NET_ADMIN,
// so a firewall inside one filters that host's own network namespace.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { HOSTS, REPO, destroy, devStack, diagnostics, onHost, phase, preview, removeStack, sh, steps, up } from "./util.ts";

const STACK = "e2e-debian13";
const FILE = path.join(REPO, `Pulumi.${STACK}.yaml`);
type Host = keyof typeof HOSTS;

function stackWith(extra: string[]): void {
    devStack(STACK, extra);
}

function labWith(env: string): void {
    phase(`lab reset (${env})`, () => sh(`${env} lab/lab.sh reset`));
}

function osOf(h: Host): string {
    return onHost(h, ". /etc/os-release && echo $ID $VERSION_ID").stdout.trim();
}

/** Can `from` open a TCP connection to the master's port? (bash /dev/tcp, 3 s) */
function reaches(from: Host, port: number): boolean {
    return onHost(from, `timeout 3 bash -c '</dev/tcp/${HOSTS.master}/${port}'`, { allowFail: true }).code === 0;
}

/** The seed's checks: every name resolves everywhere, etcd is healthy, the registry answers through nginx. */
function seedChecks(hosts: Host[] = ["master", "node1", "node2"]): void {
    for (const h of hosts) {
        for (const name of ["master.danran.com", "node1.danran.com", "node2.danran.com", "registry.danran.com", "etcd1"]) {
            expect(onHost(h, `getent hosts ${name}`).stdout.trim(), `${name} on ${h}`).to.not.equal("");
        }
        expect(onHost(h, "hostname").stdout.trim()).to.equal(h);
    }
    expect(onHost("master", `ETCDCTL_API=3 etcdctl --endpoints=http://${HOSTS.master}:2379 endpoint health 2>&1`).stdout).to.match(
        /is healthy/,
    );
    for (const h of hosts.filter((x) => x !== "master")) {
        const http = onHost(
            h,
            "exec 3<>/dev/tcp/registry.danran.com/80 && printf 'GET /v2/ HTTP/1.0\\r\\nHost: registry.danran.com\\r\\n\\r\\n' >&3 && head -c 12 <&3",
        ).stdout;
        expect(http, `registry through nginx from ${h}`).to.equal("HTTP/1.1 200");
        expect(reaches(h, 2379), `etcd from ${h}`).to.equal(true);
    }
}

/** This machine's own netfilter rules (counters dropped) and links: what a firewall in a host must never change. */
function machineNetwork(): string {
    return sh(
        "{ iptables-save; ip6tables-save; } 2>/dev/null | grep -v '^#' | sed 's/\\[[0-9]*:[0-9]*\\]//'; ip -o link | awk '{print $2}'",
    ).stdout;
}

describe("end-to-end: Debian 13 hosts and real firewalls", function () {
    this.timeout(0);

    after(async () => {
        await destroy(STACK, { allowFail: true });
        removeStack(STACK);
        sh(`rm -f ${FILE}`);
        // The rest of the suite runs on Debian 12.
        phase("lab back to Debian 12", () => sh("LAB_SUITE=bookworm lab/lab.sh reset"));
    });

    it("the dev stack with node2 on Debian 13 reaches the topology; ntp (ntpsec) on Debian 13 too", async () => {
        labWith("LAB_SUITE=bookworm LAB_SUITE_node2=trixie");
        expect(sh("lab/lab.sh status").stdout).to.match(/node2\s+192\.168\.100\.4\s+debian-13\s/);
        expect([osOf("master"), osOf("node1"), osOf("node2")]).to.deep.equal(["debian 12", "debian 12", "debian 13"]);
        stackWith([]);
        const r = await phase("up (node2 on Debian 13)", () => up(STACK));
        // node2-hosts-run was created and its script said family=debian13 (the display's `node2-hosts-run created ... family=debian13`).
        expect(
            steps(r.events)
                .filter((st) => st.name === "node2-hosts-run" && !st.planning)
                .map((st) => st.op),
            r.out.slice(-3000),
        ).to.include("create");
        expect(diagnostics(r.events, "node2-hosts-run").join("\n"), r.out.slice(-3000)).to.match(/family=debian13/);
        seedChecks();
        expect(onHost("node2", "dpkg-query -W -f '${Version}' chrony").stdout).to.match(/^4\.6/);
        await preview(STACK, { refresh: true, expectNoChanges: true });

        // (stack init appended the stack's encryptionsalt: the key goes under config:)
        fs.writeFileSync(FILE, fs.readFileSync(FILE, "utf8").replace(/^config:\n/m, "config:\n  host-topology:timeImplementation: ntp\n"));
        await phase("up with timeImplementation ntp", () => up(STACK));
        expect(onHost("node2", "dpkg-query -W -f '${Status}' ntpsec").stdout).to.equal("install ok installed");
        expect(onHost("node2", "systemctl is-enabled ntpsec").stdout.trim()).to.equal("enabled");
        expect(onHost("node2", `grep -E '^server ' /etc/ntpsec/ntp.conf`).stdout).to.contain(HOSTS.master);
        // ntpsec conflicts with chrony on Debian 13: apt removed it (its conffiles stay), so no second daemon runs.
        expect(onHost("node2", "dpkg-query -W -f '${Status}' chrony", { allowFail: true }).stdout).to.not.equal("install ok installed");
        expect(onHost("node2", "systemctl is-active chrony", { allowFail: true }).stdout.trim()).to.not.equal("active");
        await preview(STACK, { refresh: true, expectNoChanges: true });
        await destroy(STACK);
    });

    it("firewalls that are there (ufw on the master blocking 80 and 2379, firewalld on node2): off after up, drift repaired, restored by destroy; this machine's rules untouched", async () => {
        labWith("LAB_SUITE=bookworm LAB_SUITE_node2=trixie");
        const before = machineNetwork();
        phase("install and enable ufw (master) and firewalld (node2)", () => {
            onHost(
                "master",
                "DEBIAN_FRONTEND=noninteractive apt-get -q install -y ufw >/dev/null && ufw allow 22/tcp >/dev/null && ufw deny 80/tcp >/dev/null && ufw deny 2379/tcp >/dev/null && ufw --force enable",
            );
            onHost(
                "node2",
                "DEBIAN_FRONTEND=noninteractive apt-get -q install -y firewalld >/dev/null && systemctl enable --now firewalld && firewall-cmd --state",
            );
        });
        expect(onHost("master", "ufw status").stdout).to.match(/Status: active[\s\S]*80\/tcp\s+DENY/);
        expect(onHost("node2", "systemctl is-active firewalld").stdout.trim()).to.equal("active");
        stackWith([]);
        await phase("up with the firewalls on", () => up(STACK));
        expect(onHost("master", "ufw status").stdout).to.match(/Status: inactive/);
        for (const [h, unit] of [
            ["master", "ufw"],
            ["node2", "firewalld"],
        ] as const) {
            expect(
                onHost(h, `systemctl is-enabled ${unit}; systemctl is-active ${unit}`, { allowFail: true }).stdout.split("\n").slice(0, 2),
                `${unit} on ${h}`,
            ).to.deep.equal(["disabled", "inactive"]);
        }
        seedChecks();

        // Drift: ufw switched on again by hand blocks etcd; refresh shows it, up --refresh switches it off.
        onHost("master", "ufw --force enable >/dev/null");
        expect(reaches("node1", 2379), "ufw blocks etcd again").to.equal(false);
        const drifted = await preview(STACK, { refresh: true, diff: true });
        expect(drifted.changed, drifted.out.slice(-3000)).to.include("master-firewall-check");
        await phase("up --refresh stops the firewall again", () => up(STACK, { refresh: true }));
        expect(onHost("master", "ufw status").stdout).to.match(/Status: inactive/);
        expect(reaches("node1", 2379)).to.equal(true);

        await phase("destroy restores the firewalls", () => destroy(STACK));
        expect(onHost("master", "ufw status").stdout).to.match(/Status: active[\s\S]*80\/tcp\s+DENY/);
        expect(
            onHost("node2", "systemctl is-enabled firewalld; systemctl is-active firewalld").stdout.split("\n").slice(0, 2),
        ).to.deep.equal(["enabled", "active"]);
        expect(machineNetwork(), "this machine's ruleset and links").to.equal(before);
    });

    it("all hosts on Debian 13: a three-member etcd 3.5 cluster and the seed's checks", async () => {
        labWith("LAB_SUITE=trixie");
        expect([osOf("master"), osOf("node1"), osOf("node2")]).to.deep.equal(["debian 13", "debian 13", "debian 13"]);
        stackWith(["etcdMembers: [{host: master}, {host: node1}, {host: node2}]"]);
        await phase("up (3 members, Debian 13)", () => up(STACK));
        const members = onHost("master", `ETCDCTL_API=3 etcdctl --endpoints=http://${HOSTS.master}:2379 member list -w simple`)
            .stdout.trim()
            .split("\n");
        expect(members).to.have.length(3);
        expect(members.every((l) => /, started, /.test(l))).to.equal(true);
        const health = onHost(
            "master",
            `ETCDCTL_API=3 etcdctl --endpoints=http://${HOSTS.master}:2379,http://${HOSTS.node1}:2379,http://${HOSTS.node2}:2379 endpoint status -w simple`,
        ).stdout;
        expect(health.match(/, 3\.5\.\d+, /g) ?? []).to.have.length(3);
        seedChecks();
        await preview(STACK, { refresh: true, expectNoChanges: true });
        await destroy(STACK);
    });
});
