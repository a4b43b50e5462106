// End-to-end: the real Pulumi engine against the local lab (three Debian 12 hosts booted with systemd-nspawn).
// On a pristine lab: `pulumi up` the dev stack, then prove the result with real clients from the hosts.
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
    HOSTS,
    buildImage,
    type HostName,
    type Json,
    REPO,
    destroy,
    exportedState,
    freshStack,
    onHost,
    phase,
    preview,
    printTimings,
    removeStack,
    sh,
    stackOutputs,
    up,
} from "./util.ts";
import { timeServed } from "./auto.ts";

const STACK = "dev";
const ALL: HostName[] = ["master", "node1", "node2"];
const NAMES: Record<string, string> = {
    "master.danran.com": HOSTS.master,
    master: HOSTS.master,
    etcd1: HOSTS.master,
    registry: HOSTS.master,
    "registry.danran.com": HOSTS.master,
    "node1.danran.com": HOSTS.node1,
    node1: HOSTS.node1,
    "node2.danran.com": HOSTS.node2,
    node2: HOSTS.node2,
};
const ETCD = `--endpoints=http://${HOSTS.master}:2379`;

function unitState(host: HostName, unit: string): string {
    const enabled = onHost(host, `systemctl is-enabled ${unit} 2>/dev/null || true`, { allowFail: true }).out.trim() || "not-found";
    const active = onHost(host, `systemctl is-active ${unit} 2>/dev/null || true`, { allowFail: true }).out.trim();
    return `${enabled}/${active}`;
}

describe("end-to-end on the lab: the dev stack (documented topology)", function () {
    this.timeout(0);
    let layerDigest = "";
    let pushedLayer = "";

    before(() => {
        phase("lab reset to pristine", () => sh("lab/lab.sh reset"));
        console.log(
            `      deploying with: ${sh("pulumi version").stdout.trim()} (${sh('readlink -f "$(command -v pulumi)"').stdout.trim()})`,
        );
        // A pristine lab: forget what an earlier run applied (its hosts were reset).
        phase("stack init", () => freshStack(STACK));
        // Test clients on the nodes, and an enabled firewall unit that the program must turn off.
        phase("test clients on node1/node2 (apt)", () => {
            for (const n of ["node1", "node2"] as const) {
                onHost(
                    n,
                    "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends skopeo etcd-client ufw >/dev/null",
                );
            }
            onHost("node2", "systemctl enable ufw");
        });
    });

    after(() => printTimings());

    it("pulumi preview needs no host access and pulumi up -s dev reaches the topology", async () => {
        const cursor = /^-- cursor: (.*)$/m.exec(onHost("master", "journalctl -n 0 --show-cursor --no-pager").stdout)![1];
        await phase("pulumi preview (fresh stack)", () => preview(STACK));
        const logins = onHost(
            "master",
            `journalctl -u ssh --after-cursor='${cursor}' --no-pager -o cat | grep -c 'Accepted publickey' || true`,
            { allowFail: true },
        );
        // The asking session may itself be logged already; a preview that connected would add more.
        expect(Number(logins.stdout.trim()), "preview must not connect to hosts").to.be.at.most(1);
        const first = await phase("pulumi up (pristine hosts)", () => up(STACK));
        expect(first.changes.create ?? 0).to.be.greaterThan(20);
        const outputs = await stackOutputs(STACK);
        expect(outputs.etcdClientEndpoints).to.deep.equal(["http://192.168.100.2:2379"]);
        expect(outputs.registryEndpoint).to.equal("http://registry.danran.com");
        expect(outputs.inventory.map((h: Json) => [h.name, h.address, h.os])).to.deep.equal([
            ["master", "192.168.100.2", "debian 12"],
            ["node1", "192.168.100.3", "debian 12"],
            ["node2", "192.168.100.4", "debian 12"],
        ]);
    });

    it("every host resolves every name and alias, and has its hostname", () => {
        phase("check names", () => {
            for (const h of ALL) {
                for (const [name, ip] of Object.entries(NAMES)) {
                    const got = onHost(h, `getent hosts ${name}`).out.trim().split(/\s+/)[0];
                    expect(got, `${name} on ${h}`).to.equal(ip);
                }
                expect(onHost(h, "hostname").out.trim()).to.equal(h);
                expect(onHost(h, "getent hosts localhost").out).to.match(/127\.0\.0\.1|::1/);
            }
        });
    });

    it("from node1: etcdctl sees etcd1 as the leader and the endpoint healthy", () => {
        phase("check etcd from node1", () => {
            const members = onHost("node1", `ETCDCTL_API=3 etcdctl ${ETCD} member list -w json`).stdout;
            const list = JSON.parse(members).members;
            expect(list.map((m: Json) => [m.name, m.peerURLs, m.clientURLs])).to.deep.equal([
                ["etcd1", ["http://etcd1:2380"], ["http://192.168.100.2:2379"]],
            ]);
            const status = JSON.parse(onHost("node1", `ETCDCTL_API=3 etcdctl ${ETCD} endpoint status -w json`).stdout)[0].Status;
            expect(status.leader).to.equal(status.header.member_id);
            expect(onHost("node1", `ETCDCTL_API=3 etcdctl ${ETCD} endpoint health`).out).to.match(/is healthy/);
            onHost("node1", `ETCDCTL_API=3 etcdctl ${ETCD} put /e2e/before-destroy kept`);
            expect(onHost("master", "ss -ltn").out).to.match(/192\.168\.100\.2:2380/);
        });
    });

    it("from node1: skopeo pushes a 200 MB layer to registry.danran.com:80 and pulls it back identical", () => {
        phase("registry push/pull 200 MB", () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oci-"));
            layerDigest = buildImage(dir, 200);
            sh(
                `tar -C ${dir} -cf - . | lab/lab.sh ssh node1 'rm -rf /root/img /root/pulled && mkdir -p /root/img && tar -C /root/img -xf -'`,
            );
            fs.rmSync(dir, { recursive: true, force: true });
            onHost("node1", "skopeo copy --quiet --dest-tls-verify=false oci:/root/img:v1 docker://registry.danran.com:80/e2e/big:v1");
            // skopeo compresses the layer on its way into a registry: compare the uncompressed content.
            const inspect = JSON.parse(
                onHost("node1", "skopeo inspect --tls-verify=false docker://registry.danran.com:80/e2e/big:v1").stdout,
            );
            expect(inspect.Layers).to.have.length(1);
            pushedLayer = inspect.Layers[0].replace("sha256:", "");
            onHost("node1", "skopeo copy --quiet --src-tls-verify=false docker://registry.danran.com:80/e2e/big:v1 oci:/root/pulled:v1");
            const blob = `/root/pulled/blobs/sha256/${pushedLayer}`;
            expect(onHost("node1", `sha256sum ${blob} | cut -d' ' -f1`).stdout.trim()).to.equal(pushedLayer);
            const content = onHost("node1", `(gzip -dc ${blob} 2>/dev/null || cat ${blob}) | sha256sum | cut -d' ' -f1`).stdout.trim();
            expect(content, "the pulled layer's content is the pushed 200 MB layer").to.equal(layerDigest);
            const size = Number(onHost("node1", `(gzip -dc ${blob} 2>/dev/null || cat ${blob}) | wc -c`).stdout.trim());
            expect(size).to.be.greaterThan(200 * 1024 * 1024);
            onHost("node1", "rm -rf /root/img /root/pulled");
        });
    });

    it("the registry itself listens on 127.0.0.1:5000 only: unreachable from a node", () => {
        const r = onHost("node1", `timeout 5 bash -c 'echo > /dev/tcp/${HOSTS.master}/5000'`, { allowFail: true });
        expect(r.code).to.not.equal(0);
        expect(onHost("master", "ss -ltn").out).to.match(/127\.0\.0\.1:5000/);
        expect(onHost("node1", `timeout 5 bash -c 'echo > /dev/tcp/${HOSTS.master}/80'`).code).to.equal(0);
    });

    it("firewalld/iptables/ufw are inactive and disabled on every host", () => {
        for (const h of ALL) {
            for (const u of ["firewalld", "iptables", "ufw"]) {
                const st = unitState(h, u);
                expect(st, `${u} on ${h}`).to.match(/^(not-found|disabled)\/(inactive|unknown)$/);
            }
        }
        expect(unitState("node2", "ufw")).to.equal("disabled/inactive");
    });

    it("time sync: chrony installed, configured (nodes use the master), enabled, and the nodes really sync from the master", async () => {
        for (const h of ALL) {
            expect(onHost(h, "dpkg-query -W -f='${Status}' chrony").out).to.equal("install ok installed");
            expect(onHost(h, "systemctl is-enabled chrony").out.trim()).to.equal("enabled");
            const conf = onHost(h, "cat /etc/chrony/chrony.conf").out;
            if (h === "master") {
                expect(conf).to.match(/^allow 192\.168\.100\.3$/m);
                expect(conf).to.match(/^local stratum 10$/m);
            } else {
                expect(conf.split("\n").filter((l) => l.startsWith("server"))).to.deep.equal(["server 192.168.100.2 iburst"]);
            }
            // chrony cannot steer the clock in a container (no CAP_SYS_TIME, by design): the lab runs it with -x (a
            // drop-in of the lab's own, which tracks and serves time without setting the clock).
            const capBnd = onHost(h, "grep CapBnd /proc/1/status").out.trim().split(/\s+/)[1];
            expect((BigInt(`0x${capBnd}`) >> 25n) & 1n, "CAP_SYS_TIME must not be given to lab hosts").to.equal(0n);
            expect(onHost(h, "systemctl show -p ExecStart --value chrony").out, "chronyd -x (the lab's drop-in)").to.match(/chronyd .*-x/);
        }
        await timeServed({
            hosts: (["master", "node1", "node2"] as const).map((n) => ({
                name: n,
                address: HOSTS[n],
                roles: n === "master" ? ["master"] : ["node"],
            })),
        });
    });

    it("a second pulumi up changes nothing and preview --expect-no-changes passes", async () => {
        await phase("second pulumi up", async () => {
            const second = await up(STACK, { expectNoChanges: true });
            expect(second.changes.same ?? 0).to.be.greaterThan(20);
            expect(second.out, "no warnings on a plain up").to.not.match(/warning/i);
        });
        const pre = await phase("preview --expect-no-changes", () => preview(STACK, { expectNoChanges: true }));
        expect(pre.out, "no warnings on a plain preview").to.not.match(/warning/i);
    });

    it("destroy removes the managed config, keeps etcd data and registry storage; a new up brings the data back", async () => {
        await phase("pulumi destroy", () => destroy(STACK));
        expect(onHost("master", "grep -c 'host-topology managed block' /etc/hosts || true", { allowFail: true }).out.trim()).to.equal("0");
        expect(onHost("node1", "getent hosts registry.danran.com", { allowFail: true }).code).to.not.equal(0);
        expect(onHost("master", "test -e /etc/nginx/conf.d/registry.conf", { allowFail: true }).code).to.not.equal(0);
        expect(unitState("master", "etcd")).to.equal("disabled/inactive");
        expect(unitState("master", "docker-registry")).to.equal("disabled/inactive");
        expect(onHost("master", "test -d /var/lib/etcd/etcd1.etcd/member").code).to.equal(0);
        expect(
            onHost("master", `test -f /var/lib/registry/docker/registry/v2/blobs/sha256/${pushedLayer.slice(0, 2)}/${pushedLayer}/data`)
                .code,
        ).to.equal(0);
        expect(onHost("master", "test -e /usr/local/lib/host-topology", { allowFail: true }).code).to.not.equal(0);

        await phase("pulumi up after destroy", () => up(STACK));
        expect(onHost("node1", `ETCDCTL_API=3 etcdctl ${ETCD} get /e2e/before-destroy --print-value-only`).out.trim()).to.equal("kept");
        const inspect = JSON.parse(onHost("node1", "skopeo inspect --tls-verify=false docker://registry.danran.com:80/e2e/big:v1").stdout);
        expect(inspect.Layers).to.deep.equal([`sha256:${pushedLayer}`]);
    });
});

describe("end-to-end on the lab: drift (preview --refresh shows it, up --refresh repairs it)", function () {
    this.timeout(0);

    it("reports exactly the three out-of-band changes and repairs them", async () => {
        await phase("no drift before", () => preview(STACK, { refresh: true, expectNoChanges: true }));
        onHost("node1", "sed -i 's/^192.168.100.2 master.danran.com.*/192.168.100.99 master.danran.com master/' /etc/hosts");
        onHost("master", "systemctl disable --now nginx");
        onHost("master", "sed -i 's/^ETCD_NAME=.*/ETCD_NAME=\"edited\"/' /etc/default/etcd");
        const drifted = await phase("preview --refresh with drift", () => preview(STACK, { refresh: true, diff: true }));
        expect(drifted.changed, drifted.out.slice(-4000)).to.deep.equal([
            "master-etcd1-check",
            "master-registry-check",
            "node1-hosts-check",
        ]);
        expect(drifted.out).to.match(/\/etc\/hosts/);
        expect(drifted.out).to.match(/service:nginx/);
        expect(drifted.out).to.match(/\/etc\/default\/etcd/);

        const repaired = await phase("up --refresh repairs", () => up(STACK, { refresh: true }));
        expect(repaired.changed).to.deep.equal(["master-etcd1-check", "master-registry-check", "node1-hosts-check"]);
        expect(onHost("node1", "getent hosts master.danran.com").out.split(/\s+/)[0]).to.equal(HOSTS.master);
        expect(unitState("master", "nginx")).to.equal("enabled/active");
        expect(onHost("master", "grep ^ETCD_NAME= /etc/default/etcd").out.trim()).to.equal('ETCD_NAME="etcd1"');
        await phase("no drift after", () => preview(STACK, { refresh: true, expectNoChanges: true }));
    });

    it("keeps secrets secret in the refreshed state", async () => {
        const state = await exportedState(STACK);
        const key = fs.readFileSync(path.join(REPO, ".lab/ssh/id_ed25519"), "utf8");
        for (const line of key.split("\n").filter((l) => l && !l.startsWith("-----"))) expect(state).to.not.contain(line);
        expect(state).to.contain("ciphertext");
    });
});

describe("end-to-end on the lab: a second stack with three etcd members", function () {
    this.timeout(0);
    const STACK3 = "e2e-etcd3";

    it("forms a healthy 3-member cluster", async () => {
        await phase("destroy dev, reset lab", async () => {
            await destroy(STACK);
            sh("lab/lab.sh reset");
        });
        phase("stack init (3 members)", () => {
            const dev = fs.readFileSync(path.join(REPO, "Pulumi.dev.yaml"), "utf8").replace(/^encryptionsalt:.*$/m, "");
            fs.writeFileSync(
                path.join(REPO, `Pulumi.${STACK3}.yaml`),
                `${dev}\n  host-topology:etcdMembers: [{host: master}, {host: node1}, {host: node2}]\n`,
            );
            freshStack(STACK3);
        });
        try {
            await phase("pulumi up (3 members, pristine hosts)", () => up(STACK3));
            const eps = "--endpoints=http://192.168.100.2:2379,http://192.168.100.3:2379,http://192.168.100.4:2379";
            const list = JSON.parse(onHost("node2", `ETCDCTL_API=3 etcdctl ${eps} member list -w json`).stdout).members;
            expect(list.map((m: Json) => m.name).sort()).to.deep.equal(["etcd1", "etcd2", "etcd3"]);
            const health = onHost("node2", `ETCDCTL_API=3 etcdctl ${eps} endpoint health`).out;
            expect(health.match(/is healthy/g)?.length).to.equal(3);
            const statuses = JSON.parse(onHost("node2", `ETCDCTL_API=3 etcdctl ${eps} endpoint status -w json`).stdout);
            expect(new Set(statuses.map((s: Json) => s.Status.leader)).size).to.equal(1);
            await phase("pulumi destroy (3 members)", () => destroy(STACK3));
        } finally {
            removeStack(STACK3);
            sh(`rm -f Pulumi.${STACK3}.yaml`);
            // Leave pristine hosts: destroy keeps etcd data by design, and a later dev up must not meet it.
            sh("lab/lab.sh reset");
        }
    });
});
