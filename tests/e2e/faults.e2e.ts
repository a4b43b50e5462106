// Faults on the lab, measured: what a user sees when things go wrong, and that a re-run converges.
import { expect } from "chai";
import * as cp from "child_process";
import * as fs from "fs";
import * as path from "path";
import {
    type Json,
    REPO,
    buildImage,
    destroy,
    exportedState,
    freshStack,
    onHost,
    phase,
    preview,
    removeStack,
    sh,
    shellQuote,
    stackOutputs,
    up,
} from "./util.ts";
import * as os from "os";

const STACK = "e2e-faults";
const FILE = path.join(REPO, `Pulumi.${STACK}.yaml`);
const DEV = fs.readFileSync(path.join(REPO, "Pulumi.dev.yaml"), "utf8").replace(/^encryptionsalt:.*$/m, "");
const report: string[] = [];
const ETCD3 = "--endpoints=http://192.168.100.2:2379,http://192.168.100.3:2379,http://192.168.100.4:2379";

function writeStack(extra: Record<string, string> = {}): void {
    let y = DEV;
    for (const [k, v] of Object.entries({ sshDialErrorLimit: "5", ...extra })) {
        const line = `  host-topology:${k}: ${v}`;
        const re = new RegExp(`^  host-topology:${k}:.*$`, "m");
        y = re.test(y) ? y.replace(re, line) : `${y.trimEnd()}\n${line}\n`;
    }
    fs.writeFileSync(FILE, y);
}

function pristine(extra: Record<string, string> = {}): void {
    sh("lab/lab.sh reset");
    writeStack(extra);
    freshStack(STACK);
}

async function timed<T>(what: string, fn: () => Promise<T>): Promise<[T, number]> {
    const t0 = Date.now();
    const r = await phase(what, fn);
    return [r, (Date.now() - t0) / 1000];
}

describe("end-to-end: faults, bad days and recovery", function () {
    this.timeout(0);
    const logs: string[] = [];
    const keep = async <T extends { out: string }>(run: Promise<T>): Promise<T> => {
        const r = await run;
        logs.push(r.out);
        return r;
    };
    /** Secret values seen in this run's stacks (registry password, TLS private key lines), looked for afterwards. */
    const secrets: string[] = [];
    /** The exported state after each opt-in security deployment. */
    const states: string[] = [];

    after(() => {
        removeStack(STACK);
        sh(`rm -f ${FILE}`);
        sh("lab/lab.sh reset"); // pristine hosts for whatever runs next
        console.log(`\n  Fault report (${sh("pulumi version").stdout.trim()}):\n${report.map((l) => `    ${l}`).join("\n")}`);
    });

    it("wrong SSH key: a clear error after bounded retries, nothing applied", async () => {
        sh("test -f .lab/e2e-wrong-key || ssh-keygen -q -t ed25519 -N '' -f .lab/e2e-wrong-key");
        pristine({ sshPrivateKeyPath: ".lab/e2e-wrong-key" });
        const [r, s] = await timed("up with a wrong key", () => keep(up(STACK, { allowFail: true })));
        expect(r.code).to.not.equal(0);
        // The plugin's error, on each host's first contact, its HostScripts (the resource's name and the error name the host).
        expect(r.out).to.match(
            /(master|node1|node2)-scripts \*\*creating failed\*\* error: .*192\.168\.100\.\d+:22: ssh: All configured authentication methods failed \(after 5 attempts\)/,
        );
        expect(s).to.be.lessThan(120);
        expect(onHost("master", "test -e /usr/local/lib/host-topology", { allowFail: true }).code).to.not.equal(0);
        report.push(
            `wrong key: failed in ${s.toFixed(1)}s after 5 attempts per host: ${/\S+-scripts \*\*creating failed\*\* [^\n]*/.exec(r.out)?.[0]}`,
        );
    });

    it("a service that fails to start: the error names the host and unit with the journal tail; fixed, a re-run converges", async () => {
        pristine();
        // Something else holds port 80 on the master, so nginx cannot start.
        onHost(
            "master",
            "systemd-run --quiet --unit=e2e-port80 --collect perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalPort => 80, Proto => q(tcp), Listen => 5, ReuseAddr => 1) or die $!; sleep 900'",
        );
        expect(onHost("master", "sleep 1; ss -ltn").stdout).to.match(/0\.0\.0\.0:80\s/);
        const [r, s] = await timed("up with port 80 taken", () => keep(up(STACK, { allowFail: true })));
        expect(r.code).to.not.equal(0);
        expect(r.out).to.contain("host-topology: master: unit nginx failed to start");
        expect(r.out).to.match(/--- journalctl -u nginx \(last 30 lines\) ---/);
        expect(r.out).to.match(/Address already in use/);
        report.push(
            `failing service: up failed in ${s.toFixed(1)}s naming master, nginx and: ${/.*Address already in use.*/.exec(r.out)?.[0]?.trim()}`,
        );
        onHost("master", "systemctl stop e2e-port80");
        const [, s2] = await timed("re-run after the fix", () => keep(up(STACK)));
        await keep(preview(STACK, { refresh: true, expectNoChanges: true }));
        report.push(`failing service: after freeing port 80 a re-run converged in ${s2.toFixed(1)}s`);
    });

    it("apt/dpkg lock held by another process: waits, then proceeds", async () => {
        pristine();
        // Hold dpkg's frontend lock (an fcntl lock, as apt takes it) on node1 for 25 s.
        const hold =
            "use Fcntl; open(my $f, '>>', '/var/lib/dpkg/lock-frontend') or die; my $lk = pack('s s x4 q q l x4', F_WRLCK, 0, 0, 0, 0); fcntl($f, F_SETLKW, $lk) or die $!; sleep 25";
        onHost("node1", `systemd-run --quiet --unit=e2e-dpkg-lock --collect perl -e ${shellQuote(hold)}`);
        expect(onHost("node1", "sleep 1; systemctl is-active e2e-dpkg-lock").stdout.trim()).to.equal("active");
        const [, s] = await timed("up while node1's dpkg lock is held", () => keep(up(STACK)));
        expect(s).to.be.greaterThan(20);
        expect(onHost("node1", "dpkg-query -W -f='${Status}' chrony").stdout).to.equal("install ok installed");
        report.push(`dpkg lock held 25s on node1: up waited and succeeded in ${s.toFixed(1)}s`);
    });

    it("a host stopped in the middle of up, then restarted: a re-run converges", async () => {
        pristine();
        const args = `pulumi up --yes --skip-preview --stack ${STACK} --non-interactive`;
        const t0 = Date.now();
        const child = cp.spawn("bash", ["-c", args], { cwd: REPO });
        let out = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (out += d));
        const exited = new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? -1)));
        // Stop node2 once the up is under way on it (the script library is there, its packages are not).
        sh(
            "for i in $(seq 1 120); do lab/lab.sh ssh node2 'test -f /usr/local/lib/host-topology/lib/step.sh' 2>/dev/null && break; sleep 0.5; done",
        );
        sh("lab/lab.sh stop node2");
        const code = await exited;
        const s = (Date.now() - t0) / 1000;
        logs.push(out);
        expect(code, out.slice(-2000)).to.not.equal(0);
        expect(out, out.slice(-3000)).to.match(/192\.168\.100\.4/);
        report.push(
            `host stopped mid-up: up failed after ${s.toFixed(1)}s: ${
                out
                    .split("\n")
                    .find((l) => l.includes("192.168.100.4"))
                    ?.trim() ?? ""
            }`,
        );
        sh("lab/lab.sh start node2");
        const [, s2] = await timed("re-run after the host is back", () => keep(up(STACK)));
        await keep(preview(STACK, { refresh: true, expectNoChanges: true }));
        expect(onHost("node2", "getent hosts registry.danran.com").stdout).to.match(/^192\.168\.100\.2\s/);
        report.push(`host stopped mid-up: after restarting it a re-run converged in ${s2.toFixed(1)}s; refresh shows no drift`);
    });

    it("an etcd member's host reinstalled: the member is replaced, the cluster is healthy, the data is kept", async () => {
        pristine({ etcdMembers: "[{host: master}, {host: node1}, {host: node2}]" });
        await phase("up (3 members)", () => keep(up(STACK)));
        onHost("node1", `ETCDCTL_API=3 etcdctl ${ETCD3} put /e2e/kept before-replacement`);
        const before = JSON.parse(onHost("node1", `ETCDCTL_API=3 etcdctl ${ETCD3} member list -w json`).stdout).members;
        const oldId = before.find((m: Json) => m.name === "etcd3").ID;
        phase("reinstall node2 (pristine disk)", () => sh("lab/lab.sh reset node2"));
        const drift = await keep(preview(STACK, { refresh: true }));
        expect(
            drift.changed.filter((n) => n.startsWith("node2-")),
            drift.out.slice(-3000),
        ).to.not.deep.equal([]);
        expect(drift.out).not.to.match(/drift (master|node1)-/);
        const [, s] = await timed("up --refresh repairs node2", () => keep(up(STACK, { refresh: true })));
        const after = JSON.parse(onHost("node1", `ETCDCTL_API=3 etcdctl ${ETCD3} member list -w json`).stdout).members;
        expect(after.map((m: Json) => m.name).sort()).to.deep.equal(["etcd1", "etcd2", "etcd3"]);
        expect(after.find((m: Json) => m.name === "etcd3").ID).to.not.equal(oldId);
        const health = onHost("node1", `ETCDCTL_API=3 etcdctl ${ETCD3} endpoint health`).out;
        expect(health.match(/is healthy/g)?.length).to.equal(3);
        expect(
            onHost("node2", `ETCDCTL_API=3 etcdctl --endpoints=http://192.168.100.4:2379 get /e2e/kept --print-value-only`).stdout.trim(),
        ).to.equal("before-replacement");
        await keep(preview(STACK, { refresh: true, expectNoChanges: true }));
        report.push(
            `etcd member host reinstalled: up --refresh replaced etcd3 (new member ID) in ${s.toFixed(1)}s; 3/3 healthy; key written before is read from the new member`,
        );
        await phase("destroy (3 members)", () => keep(destroy(STACK)));
    });

    it("opt-in registry basic auth: anonymous pushes refused, the generated credentials work, no password in logs", async () => {
        pristine({ registryAuth: "true" });
        await phase("up with registryAuth", () => keep(up(STACK)));
        const creds = (await stackOutputs(STACK)).registryCredentials;
        expect(creds.username).to.equal("registry");
        expect(creds.password).to.match(/^[A-Za-z0-9]{32}$/);
        secrets.push(creds.password);
        states.push(await exportedState(STACK));
        expect(onHost("master", "stat -c '%a %U:%G' /etc/nginx/.ngxpasswd").stdout.trim()).to.equal("640 root:www-data");
        phase("skopeo on node1 (apt)", () =>
            onHost(
                "node1",
                "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends skopeo >/dev/null",
            ),
        );
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oci-"));
        buildImage(dir, 1);
        sh(`tar -C ${dir} -cf - . | lab/lab.sh ssh node1 'rm -rf /root/img && mkdir -p /root/img && tar -C /root/img -xf -'`);
        fs.rmSync(dir, { recursive: true, force: true });
        const anon = onHost(
            "node1",
            "skopeo copy --quiet --dest-tls-verify=false oci:/root/img:v1 docker://registry.danran.com:80/e2e/auth:v1",
            { allowFail: true },
        );
        expect(anon.code).to.not.equal(0);
        expect(anon.out).to.match(/401|unauthorized|authentication required/i);
        onHost(
            "node1",
            `skopeo copy --quiet --dest-tls-verify=false --dest-creds ${shellQuote(`${creds.username}:${creds.password}`)} oci:/root/img:v1 docker://registry.danran.com:80/e2e/auth:v1`,
        );
        expect(
            onHost(
                "node1",
                `skopeo inspect --tls-verify=false --creds ${shellQuote(`${creds.username}:${creds.password}`)} docker://registry.danran.com:80/e2e/auth:v1`,
            ).code,
        ).to.equal(0);
        for (const text of logs) expect(text).to.not.contain(creds.password);
        report.push(
            "registry basic auth (opt-in): anonymous push refused (401), push with the generated credentials accepted; the password is in no up/preview output",
        );
    });

    it("opt-in registry TLS: https on 443 with a certificate every host trusts; port 80 redirects", async () => {
        pristine({ registryTls: "true" });
        const [, s] = await timed("up with registryTls", () => keep(up(STACK)));
        const outs = await stackOutputs(STACK);
        expect(outs.registryEndpoint).to.equal("https://registry.danran.com");
        expect(outs.registryCaCert).to.match(/^-----BEGIN CERTIFICATE-----/);
        const tlsKey = onHost("master", "cat /etc/nginx/tls/registry.key")
            .stdout.split("\n")
            .filter((l) => l && !l.startsWith("-----"));
        expect(tlsKey.length).to.be.greaterThan(0);
        secrets.push(...tlsKey);
        states.push(await exportedState(STACK));
        phase("skopeo on node1 (apt)", () =>
            onHost(
                "node1",
                "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends skopeo >/dev/null",
            ),
        );
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oci-"));
        buildImage(dir, 1);
        sh(`tar -C ${dir} -cf - . | lab/lab.sh ssh node1 'rm -rf /root/img && mkdir -p /root/img && tar -C /root/img -xf -'`);
        fs.rmSync(dir, { recursive: true, force: true });
        // TLS verification on (skopeo's default): node1 trusts the registry CA through its system store.
        onHost("node1", "skopeo copy --quiet oci:/root/img:v1 docker://registry.danran.com/e2e/tls:v1");
        expect(JSON.parse(onHost("node1", "skopeo inspect docker://registry.danran.com/e2e/tls:v1").stdout).Layers).to.have.length(1);
        expect(
            onHost("node2", "grep -c 'BEGIN CERTIFICATE' /usr/local/share/ca-certificates/host-topology-registry.crt").stdout.trim(),
        ).to.equal("1");
        const redirect = onHost(
            "node1",
            `exec 3<>/dev/tcp/192.168.100.2/80 && printf 'GET /v2/ HTTP/1.0\\r\\nHost: registry.danran.com\\r\\n\\r\\n' >&3 && head -c 300 <&3`,
        ).stdout;
        expect(redirect).to.match(/^HTTP\/1\.1 301/);
        expect(redirect).to.match(/Location: https:\/\/registry\.danran\.com\/v2\//);
        await keep(preview(STACK, { refresh: true, expectNoChanges: true }));
        await phase("destroy (registry TLS)", () => keep(destroy(STACK)));
        expect(
            onHost("node1", "test -e /usr/local/share/ca-certificates/host-topology-registry.crt", { allowFail: true }).code,
        ).to.not.equal(0);
        expect(onHost("master", "test -e /etc/nginx/tls", { allowFail: true }).code).to.not.equal(0);
        report.push(
            `registry TLS (opt-in): up in ${s.toFixed(1)}s; skopeo on node1 pushed and inspected over https with verification on (system trust); port 80 answers 301 to https; destroy removed the trust anchor and nginx's key`,
        );
    });

    it("opt-in etcd client and peer TLS: a healthy 3-member cluster over https; no client certificate, no access", async () => {
        pristine({ etcdTls: "true", etcdMembers: "[{host: master}, {host: node1}, {host: node2}]" });
        const [, s] = await timed("up with etcdTls (3 members)", () => keep(up(STACK)));
        const outs = await stackOutputs(STACK);
        expect(outs.etcdClientEndpoints).to.deep.equal([
            "https://192.168.100.2:2379",
            "https://192.168.100.3:2379",
            "https://192.168.100.4:2379",
        ]);
        const creds = outs.etcdClientTls as { ca: string; cert: string; key: string };
        expect(creds.key).to.match(/^-----BEGIN (EC )?PRIVATE KEY-----/);
        // A client with the stack output's credentials (what another project would use), from node2.
        onHost("node2", "rm -rf /root/etcd-e2e && mkdir -m 0700 /root/etcd-e2e");
        for (const [f, v] of [
            ["ca.crt", creds.ca],
            ["client.crt", creds.cert],
            ["client.key", creds.key],
        ])
            onHost("node2", `cat > /root/etcd-e2e/${f}`, { input: v });
        const eps = `--endpoints=${outs.etcdClientEndpoints.join(",")}`;
        const ctl = `ETCDCTL_API=3 etcdctl ${eps} --cacert=/root/etcd-e2e/ca.crt --cert=/root/etcd-e2e/client.crt --key=/root/etcd-e2e/client.key --command-timeout=10s`;
        const list = JSON.parse(onHost("node2", `${ctl} member list -w json`).stdout).members;
        expect(list.map((m: Json) => [m.name, m.peerURLs[0], m.clientURLs[0]]).sort()).to.deep.equal([
            ["etcd1", "https://etcd1:2380", "https://192.168.100.2:2379"],
            ["etcd2", "https://etcd2:2380", "https://192.168.100.3:2379"],
            ["etcd3", "https://etcd3:2380", "https://192.168.100.4:2379"],
        ]);
        expect(onHost("node2", `${ctl} endpoint health`).out.match(/is healthy/g)?.length).to.equal(3);
        onHost("node2", `${ctl} put /e2e/tls over-tls`);
        // Without a client certificate, and over plain http, nothing is served.
        const noCert = onHost(
            "node2",
            `ETCDCTL_API=3 etcdctl --endpoints=https://192.168.100.2:2379 --cacert=/root/etcd-e2e/ca.crt --command-timeout=5s get /e2e/tls`,
            { allowFail: true },
        );
        expect(noCert.code, noCert.out).to.not.equal(0);
        expect(noCert.out).not.to.contain("over-tls");
        const plain = onHost("node2", `ETCDCTL_API=3 etcdctl --endpoints=http://192.168.100.2:2379 --command-timeout=5s get /e2e/tls`, {
            allowFail: true,
        });
        expect(plain.code, plain.out).to.not.equal(0);
        expect(plain.out).not.to.contain("over-tls");
        // Peers authenticate each other with certificates too.
        expect(onHost("master", "grep -c 'CLIENT_CERT_AUTH=\"true\"' /etc/default/etcd").stdout.trim()).to.equal("2");
        expect(onHost("master", "stat -c '%a %U:%G' /etc/etcd/pki/member.key").stdout.trim()).to.equal("640 root:etcd");
        await keep(preview(STACK, { refresh: true, expectNoChanges: true }));
        const keyLines = creds.key.split("\n").filter((l) => l && !l.startsWith("-----"));
        secrets.push(...keyLines);
        states.push(await exportedState(STACK));
        for (const text of logs) for (const l of keyLines) expect(text).to.not.contain(l);
        report.push(
            `etcd TLS (opt-in): 3 members over https in ${s.toFixed(1)}s, healthy with the client certificate from the stack output; refused without it (exit ${noCert.code}) and over http (exit ${plain.code}); client key in no output`,
        );
        await phase("destroy (TLS)", () => keep(destroy(STACK)));
    });

    it("no plaintext private key, password or TLS key in any output or in the stored state", () => {
        const key = fs.readFileSync(path.join(REPO, ".lab/ssh/id_ed25519"), "utf8");
        const lines = key.split("\n").filter((l) => l && !l.startsWith("-----"));
        expect(states.length).to.equal(3);
        for (const state of states) expect(state).to.contain("ciphertext");
        for (const l of [...lines, ...secrets]) {
            for (const text of [...logs, ...states]) expect(text).to.not.contain(l);
        }
        report.push(
            `secrets: ${logs.length} command outputs and 3 exported states (registry auth, registry TLS, etcd TLS) checked: no line of the SSH key, registry password or TLS private key (${secrets.length} secret values) in them`,
        );
    });
});
