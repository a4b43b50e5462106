// The five components from another language: the Pulumi YAML program in tests/fixtures/yaml/ deploys the documented topology
// on the lab through the provider plugin's `construct`, with the YAML language host scripts/engine.sh builds. Its
// own project and file backend (under .lab/), so it never touches the TypeScript program's stacks.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { HOSTS, REPO, type StackSpec, engine, onHost, phase, printTimings, sh } from "./util.ts";

const DIR = path.join(REPO, "tests", "fixtures", "yaml");
const STATE = path.join(REPO, ".lab", "yaml-state");
const STACK: StackSpec = {
    stack: "lab",
    workDir: DIR,
    env: { PULUMI_BACKEND_URL: `file://${STATE}`, PULUMI_CONFIG_PASSPHRASE: "yaml-lab" },
};
const ETCD = `ETCDCTL_API=3 etcdctl --endpoints=http://${HOSTS.master}:2379`;

const yaml = (args: string, o: { allowFail?: boolean; input?: string } = {}) => engine(STACK, args, o);

/** The seed's checks: every name resolves on every host, etcd is healthy, the registry answers through nginx. */
function seedChecks(): void {
    for (const h of ["master", "node1", "node2"] as const) {
        for (const [name, address] of Object.entries({
            "master.danran.com": HOSTS.master,
            "node1.danran.com": HOSTS.node1,
            "node2.danran.com": HOSTS.node2,
            "registry.danran.com": HOSTS.master,
            etcd1: HOSTS.master,
        })) {
            expect(onHost(h, `getent hosts ${name}`).stdout.split(/\s+/)[0], `${name} on ${h}`).to.equal(address);
        }
        expect(onHost(h, "hostname").stdout.trim()).to.equal(h);
    }
    expect(onHost("master", `${ETCD} endpoint health 2>&1`).stdout).to.match(/is healthy/);
    for (const h of ["node1", "node2"] as const) {
        const http = onHost(
            h,
            "exec 3<>/dev/tcp/registry.danran.com/80 && printf 'GET /v2/ HTTP/1.0\\r\\nHost: registry.danran.com\\r\\n\\r\\n' >&3 && head -c 12 <&3",
        ).stdout;
        expect(http, `registry through nginx from ${h}`).to.equal("HTTP/1.1 200");
    }
}

/** `Resources:` counts of a CLI run's summary, e.g. {created: 38} or {updated: 1, unchanged: 37}. */
function summary(out: string): Record<string, number> {
    const tail = out.slice(out.lastIndexOf("Resources:"));
    return Object.fromEntries([...tail.matchAll(/^\s+(?:[+~-]\s+)?(\d+) (\w+)/gm)].map((m) => [m[2], Number(m[1])]));
}

describe("end-to-end on the lab: the components from a Pulumi YAML program (tests/fixtures/yaml)", function () {
    this.timeout(0);

    before(() => {
        phase("lab reset to pristine", () => sh("lab/lab.sh reset"));
        sh(`rm -rf ${STATE} ${DIR}/Pulumi.lab.yaml && mkdir -p ${STATE}`);
        yaml("stack init");
        yaml("config set --secret sshPrivateKey", { input: fs.readFileSync(path.join(REPO, ".lab/ssh/id_ed25519"), "utf8") });
        const keys = sh("lab/lab.sh hostkeys").stdout;
        for (const h of ["master", "node1", "node2"]) {
            const line = keys.split("\n").find((l) => l.split(" ")[0].split(",").includes(h) && l.split(" ")[1] === "ssh-ed25519");
            expect(line, `the lab's ed25519 key of ${h}`).to.be.a("string");
            yaml(`config set ${h}HostKey '${line!.split(" ").slice(1, 3).join(" ")}'`);
        }
    });
    after(() => {
        yaml("destroy --yes --skip-preview", { allowFail: true });
        yaml("stack rm --yes --force", { allowFail: true });
        sh(`rm -rf ${STATE} ${DIR}/Pulumi.lab.yaml`);
        printTimings();
    });

    it("up builds the five components through the plugin's construct; the seed's checks pass; a second run has nothing to do", () => {
        const r = phase("yaml: up", () => yaml("up --yes --skip-preview"));
        expect(summary(r.out), r.out.slice(-3000)).to.deep.equal({ created: 38 });
        for (const t of ["HostBase", "TimeSync", "FirewallOff", "PrivateRegistry", "EtcdMember", "HostCheck"]) {
            expect(r.out, t).to.include(`host-topology:index:${t} `);
        }
        expect(r.out).to.match(/os\s+: "debian 12"/);
        expect(r.out).to.match(/registryEndpoint: "http:\/\/registry\.danran\.com"/);
        seedChecks();
        const again = phase("yaml: preview --expect-no-changes", () => yaml("preview --expect-no-changes"));
        expect(summary(again.out)).to.deep.equal({ unchanged: 38 });
        // The private key is a secret of the YAML program's config: never in the state in plaintext.
        const key = fs.readFileSync(path.join(REPO, ".lab/ssh/id_ed25519"), "utf8").split("\n")[1];
        expect(yaml("stack export").stdout).to.not.include(key);
    });

    it("plain `pulumi refresh` shows a host's drift through the plugin's read; `up --refresh` repairs it", () => {
        onHost("node1", `sed -i 's/^${HOSTS.node2} node2.danran.com node2$/192.168.100.9 node2.danran.com node2/' /etc/hosts`);
        expect(onHost("node1", "getent hosts node2.danran.com").stdout).to.match(/^192\.168\.100\.9 /);
        const r = phase("yaml: refresh", () => yaml("refresh --yes --diff"));
        expect(summary(r.out), r.out.slice(-3000)).to.deep.equal({ updated: 1, unchanged: 37 });
        expect(r.out).to.include("node1-hosts-check]");
        expect(r.out).to.match(/\+ \/etc\/hosts: managed block or conflicting lines differ/);
        const fix = phase("yaml: up --refresh", () => yaml("up --yes --refresh --skip-preview"));
        expect(summary(fix.out), fix.out.slice(-3000)).to.deep.equal({ updated: 1, unchanged: 37 });
        expect(onHost("node1", "getent hosts node2.danran.com").stdout.split(/\s+/)[0]).to.equal(HOSTS.node2);
        seedChecks();
    });

    it("bad input is refused before any step, naming the component and the input: by the schema, and by construct", () => {
        const program = fs.readFileSync(path.join(DIR, "Pulumi.yaml"), "utf8");
        const dir = path.join(REPO, ".lab", "yaml-bad");
        const previewOf = (from: string, to: string) => {
            expect(program, from).to.include(from);
            sh(`rm -rf ${dir} && mkdir -p ${dir} && cp ${DIR}/Pulumi.lab.yaml ${dir}/`);
            fs.writeFileSync(
                path.join(dir, "Pulumi.yaml"),
                program.replace(from, to).replace("path: ../../../provider/launcher", `path: ${REPO}/provider/launcher`),
            );
            const r = engine({ ...STACK, workDir: dir }, "preview", { allowFail: true });
            expect(r.code, r.out.slice(-2000)).to.not.equal(0);
            return r.out;
        };
        // The schema types `host` as a HostBase: the YAML language host refuses another resource.
        expect(previewOf("host: ${node2}\n      config: ${nodeTime}", "host: ${etcd-cluster-token}\n      config: ${nodeTime}")).to.match(
            /host: Cannot assign 'random:index\/randomString:RandomString' to 'host-topology:index:HostBase'/,
        );
        // What a schema cannot say, construct does.
        expect(
            previewOf("host: ${node2}\n      config: ${nodeTime}", "host: ${node2}\n      implementation: ntpd\n      config: ${nodeTime}"),
        ).to.match(/TimeSync node2-time: implementation must be chrony or ntp, not ntpd/);
        expect(
            previewOf(
                "members:\n        - ${etcd1}",
                "members:\n        - host: node1\n          name: etcd2\n          clientUrl: http://192.168.100.3:2379\n          peerUrl: http://etcd2:2380",
            ),
        ).to.match(/EtcdMember master-etcd1: members must include the member etcd1/);
        sh(`rm -rf ${dir}`);
    });
});
