// The lab tool itself (lab/lab.sh): idempotent up, recovery after a crash, reset of one host, a down that
// leaves nothing behind, and the route check that refuses to send traffic anywhere but the lab bridge.
// Leaves the lab up with pristine hosts.
import { expect } from "chai";
import * as cp from "child_process";
import { REPO, onHost, phase, sh } from "./util.ts";

const LAB = `${REPO}/.lab`;

/** host -> systemd-nspawn pid, from `lab.sh status` (HOST ADDRESS OS PID SSH ...). */
function pids(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const m of sh("lab/lab.sh status").stdout.matchAll(/^(master|node1|node2)\s+\S+\s+\S+\s+(\S+)\s+(\S+)/gm))
        out[m[1]] = `${m[2]} ssh=${m[3]}`;
    return out;
}

/** What the lab adds to this machine: namespaces, links, NAT/forward rules, overlay mounts. */
function footprint(): { netns: string[]; links: string[]; rules: string[]; mounts: string[] } {
    return {
        netns: sh("ip netns list")
            .stdout.split("\n")
            .map((l) => l.split(" ")[0])
            .filter((n) => n.startsWith("lab-")),
        links: sh("ip -o link show")
            .stdout.split("\n")
            .map((l) => l.split(": ")[1]?.split("@")[0] ?? "")
            .filter((n) => n === "labbr0" || n.startsWith("vl-")),
        rules: sh("(iptables -w -t nat -S; iptables -w -t filter -S) | grep -- '--comment host-topology-lab' || true")
            .stdout.split("\n")
            .filter(Boolean),
        mounts: sh("cat /proc/mounts")
            .stdout.split("\n")
            .filter((l) => l.split(" ")[1]?.startsWith(`${LAB}/hosts/`)),
    };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Seconds each of n logins (`lab.sh ssh HOST true`) took; after every 10th a pause of 11 s. */
async function loginTimes(host: string, n: number): Promise<number[]> {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
        // The last session ended more than 10 s ago: logind stops the user's service manager now
        // (UserStopDelaySec=10s), and this login arrives while it stops.
        if (i > 0 && i % 10 === 0) await sleep(11_000);
        // As everywhere in the suite, ssh's exit 255 (could not connect) is tried again, once; the time counted is
        // that of both attempts, so a connection that timed out (5 s) still counts as a slow login.
        const t0 = Date.now();
        for (let attempt = 1; ; attempt++) {
            const r = await new Promise<{ code: number; err: string }>((resolve) =>
                cp.execFile(
                    "lab/lab.sh",
                    ["ssh", host, "true"],
                    { cwd: REPO, timeout: 180_000 },
                    (e: cp.ExecFileException | null, _o, err) => resolve({ code: e ? ((e.code as number | undefined) ?? -1) : 0, err }),
                ),
            );
            if (r.code === 0) break;
            if (r.code !== 255 || attempt === 2)
                throw new Error(`login ${i + 1} to ${host} failed (exit ${r.code}, after ${(Date.now() - t0) / 1000}s): ${r.err}`);
            console.log(
                `      login ${i + 1} to ${host}: ssh could not connect (${((Date.now() - t0) / 1000).toFixed(2)}s): ${r.err.trim() || "no message"}; trying again`,
            );
        }
        times.push((Date.now() - t0) / 1000);
    }
    return times;
}

describe("end-to-end: the lab tool (lab/lab.sh)", function () {
    this.timeout(0);

    it("logins stay fast after a reset: 50 per host, across systemd's user-manager stop delay, none over 5 s", async () => {
        phase("lab reset", () => sh("lab/lab.sh reset"));
        const hosts = ["master", "node1", "node2"];
        const times = await phase("150 logins", () => Promise.all(hosts.map((h) => loginTimes(h, 50))));
        hosts.forEach((h, i) => {
            const t = [...times[i]].sort((a, b) => a - b);
            console.log(`      ${h}: ${t.length} logins, median ${t[t.length >> 1].toFixed(2)}s, max ${t[t.length - 1].toFixed(2)}s`);
        });
        for (const [i, h] of hosts.entries()) {
            expect(Math.max(...times[i]), `slowest login to ${h}`).to.be.lessThan(5);
            const stuck = onHost(h as "master", "journalctl --no-pager -o cat | grep -c 'Processes still around' || true", {
                allowFail: true,
            }).stdout.trim();
            expect(stuck, `user manager stop hung on ${h}`).to.equal("0");
        }
    });

    it("up is idempotent: a second up keeps the running hosts", () => {
        const before = pids();
        expect(
            Object.values(before).every((p) => /^\d+ ssh=yes$/.test(p)),
            JSON.stringify(before),
        ).to.equal(true);
        phase("lab up (already up)", () => sh("lab/lab.sh up"));
        expect(pids()).to.deep.equal(before);
    });

    it("recovers after a crash: systemd-nspawn killed and its pid file lost", () => {
        const pid = pids().node2.split(" ")[0];
        const name = onHost("node2", "hostname").stdout.trim(); // lab-node2 on a pristine host, node2 once applied
        sh(`kill -9 ${pid}; rm -f ${LAB}/hosts/node2/pid; sleep 1`);
        expect(sh("lab/lab.sh status").stdout).to.match(/^node2\s+\S+\s+\S+\s+-\s+-\s+(orphaned|stopped)/m);
        phase("lab up (recovery)", () => sh("lab/lab.sh up"));
        expect(pids().node2).to.match(/^\d+ ssh=yes$/);
        expect(pids().node2.split(" ")[0]).to.not.equal(pid);
        expect(onHost("node2", "hostname").stdout.trim()).to.equal(name);
        expect(footprint().netns.sort()).to.deep.equal(["lab-master", "lab-node1", "lab-node2"]);
    });

    it("start boots once more when systemd-nspawn ends while the host boots, and says so", () => {
        phase("lab stop node2", () => sh("lab/lab.sh stop node2"));
        // The first systemd-nspawn of this start is killed as soon as it runs (stop removed the pid file).
        const r = sh(
            `lab/lab.sh start node2 >${LAB}/start-test.log 2>&1 & s=$!
            for i in $(seq 1 500); do p=$(cat ${LAB}/hosts/node2/pid 2>/dev/null || true)
                [ -n "$p" ] && grep -qx systemd-nspawn /proc/$p/comm 2>/dev/null && break; sleep 0.01; done
            kill -9 "$p"; echo "killed $p"; wait $s; echo "start exited $?"; cat ${LAB}/start-test.log`,
            { allowFail: true },
        );
        const killed = /^killed (\d+)$/m.exec(r.stdout)?.[1];
        expect(r.stdout, r.stdout).to.match(/^start exited 0$/m);
        expect(r.stdout).to.match(/node2: systemd-nspawn ended while booting \(exit status 137\)/);
        expect(r.stdout).to.match(/node2: booting it once more/);
        expect(pids().node2).to.match(/^\d+ ssh=yes$/);
        expect(pids().node2.split(" ")[0]).to.not.equal(killed);
    });

    it("reset HOST gives that host a pristine disk and leaves the others alone", () => {
        onHost("node1", "echo x > /root/e2e-marker");
        onHost("master", "echo x > /root/e2e-marker");
        phase("lab reset node1", () => sh("lab/lab.sh reset node1"));
        expect(onHost("node1", "test -e /root/e2e-marker", { allowFail: true }).code).to.not.equal(0);
        expect(onHost("master", "cat /root/e2e-marker").stdout.trim()).to.equal("x");
        onHost("master", "rm -f /root/e2e-marker");
    });

    it("down removes every namespace, link, NAT/forward rule and mount it added; refuses to run over a foreign route", () => {
        const forwardBefore = sh(`cat ${LAB}/ip_forward.before`).stdout.trim();
        const up = footprint();
        expect(up.links).to.include("labbr0");
        expect(up.rules.length).to.equal(3);
        expect(up.mounts.length).to.be.greaterThan(0);
        try {
            phase("lab down", () => sh("lab/lab.sh down"));
            expect(footprint()).to.deep.equal({ netns: [], links: [], rules: [], mounts: [] });
            expect(sh("cat /proc/sys/net/ipv4/ip_forward").stdout.trim()).to.equal(forwardBefore);
            expect(sh("lab/lab.sh down").code).to.equal(0); // idempotent

            // The lab subnet routed through another device: up refuses, ssh refuses; nothing is sent.
            // (a veth pair whose other end has no address: whatever went there would reach nothing)
            sh(
                "ip link add labtest0 type veth peer name labtest1 && ip addr add 192.168.100.250/24 dev labtest0 && ip link set labtest1 up && ip link set labtest0 up",
            );
            const refusedUp = sh("lab/lab.sh up", { allowFail: true });
            expect(refusedUp.code).to.not.equal(0);
            expect(refusedUp.out).to.match(/refusing: 192\.168\.100\.0\/24 is already routed through another device/);
            const refusedSsh = sh("lab/lab.sh ssh node1 true", { allowFail: true });
            expect(refusedSsh.code).to.not.equal(0);
            expect(refusedSsh.out).to.match(/refusing to send traffic to 192\.168\.100\.3: its route does not go through labbr0/);
            expect(footprint().links).to.deep.equal([]);
        } finally {
            sh("ip link del labtest0 2>/dev/null || true");
            phase("lab up (after down)", () => sh("lab/lab.sh up"));
        }
        expect(Object.values(pids()).every((p) => /^\d+ ssh=yes$/.test(p))).to.equal(true);
    });
});
