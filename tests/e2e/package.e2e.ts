// The plugin as a package, as the README's "From another project" section uses it: `npm run pack`, `pulumi plugin
// install --file` of the tarball, then, each in a directory outside the checkout and each destroyed before the next,
// a Pulumi YAML program of 22 lines (tests/fixtures/yaml-topology), a Python program with the generated SDK in its
// own virtualenv (tests/fixtures/python-topology) and a TypeScript one with the generated Node.js SDK
// (tests/fixtures/typescript-topology) deploy the documented topology on the lab through the Topology
// component, with nothing of this repo but the installed plugin. The section's sh blocks run as written; only the
// programs' directories, the key file and PULUMI_HOME (a fresh one, with the mirror's random and command) are this
// test's.
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { HOSTS, REPO, type StackSpec, engine, onHost, phase, printTimings, sh } from "./util.ts";

const MIRROR = path.resolve(REPO, "..", "shared", "pulumi-plugins");

/** The sh blocks of the README's section "From another project", in order. */
export function packageBlocks(readme: string): string[] {
    const start = readme.indexOf("\n## From another project\n");
    const end = readme.indexOf("\n## ", start + 5);
    expect(start, "README: ## From another project").to.be.greaterThan(0);
    const blocks = [...readme.slice(start, end).matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
    expect(blocks.length, "the section's sh blocks: pack, configure, YAML, Python, TypeScript").to.equal(5);
    return blocks;
}

describe("end-to-end on the lab: the packed plugin from YAML, Python and TypeScript programs outside the checkout", function () {
    this.timeout(0);
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "host-topology-package-"));
    const home = path.join(work, "pulumi-home");
    const env = { PULUMI_HOME: home, PULUMI_BACKEND_URL: `file://${work}/state`, PULUMI_CONFIG_PASSPHRASE: "package-lab" };
    const deployed: StackSpec[] = [];
    let blocks: string[] = [];
    const asWritten = (script: string) =>
        script
            .split("~/lab-hosts-python")
            .join(path.join(work, "lab-hosts-python"))
            .split("~/lab-hosts-typescript")
            .join(path.join(work, "lab-hosts-typescript"))
            .split("~/lab-hosts")
            .join(path.join(work, "lab-hosts"))
            .split("~/.ssh/id_ed25519")
            .join(path.join(REPO, ".lab/ssh/id_ed25519"))
            .split("<this checkout>")
            .join(REPO);
    after(() => {
        for (const spec of deployed) engine(spec, "destroy --yes --skip-preview", { allowFail: true });
        fs.rmSync(work, { recursive: true, force: true });
        printTimings();
    });

    /** The seed's checks: every name on every host, time served, etcd healthy, the registry through nginx. */
    function seedChecks(spec: StackSpec): void {
        for (const h of ["master", "node1", "node2"] as const) {
            for (const [name, address] of Object.entries({
                "master.danran.com": HOSTS.master,
                "node2.danran.com": HOSTS.node2,
                "registry.danran.com": HOSTS.master,
                etcd1: HOSTS.master,
            })) {
                expect(onHost(h, `getent hosts ${name}`).stdout.split(/\s+/)[0], `${name} on ${h}`).to.equal(address);
            }
            expect(onHost(h, "systemctl is-active chrony").stdout.trim(), `chrony on ${h}`).to.equal("active");
        }
        expect(onHost("master", `ETCDCTL_API=3 etcdctl --endpoints=http://${HOSTS.master}:2379 endpoint health 2>&1`).stdout).to.match(
            /is healthy/,
        );
        const http = onHost(
            "node1",
            "exec 3<>/dev/tcp/registry.danran.com/80 && printf 'GET /v2/ HTTP/1.0\\r\\nHost: registry.danran.com\\r\\n\\r\\n' >&3 && head -c 12 <&3",
        ).stdout;
        expect(http, "registry through nginx from node1").to.equal("HTTP/1.1 200");
        expect(JSON.parse(engine(spec, "stack output etcdClientEndpoints --json").stdout)).to.deep.equal([`http://${HOSTS.master}:2379`]);
        phase("preview --refresh --expect-no-changes", () => engine(spec, "preview --refresh --expect-no-changes"));
        // Nothing of the checkout in the state but the engine's own files: the Python language host (in .tools/bin,
        // where scripts/engine.sh put the CLI) names its exec shim in the program's stack traces. The scripts and the
        // plugin came from the installed package.
        const state = engine(spec, "stack export").stdout.split(`${REPO}/.tools/bin/`).join("<engine>/");
        expect(state).to.not.include(REPO);
    }

    /** Runs README blocks in a program's directory (a copy of its fixture), then checks and destroys its stack. */
    function deploy(dir: string, fixture: string, script: string): void {
        phase("lab reset to pristine", () => sh("lab/lab.sh reset"));
        sh(`mkdir -p ${dir} && cp -r ${path.join(REPO, "tests/fixtures", fixture)}/. ${dir}/`);
        const spec: StackSpec = { stack: "lab", workDir: dir, env };
        deployed.push(spec);
        const r = phase(`README: ${fixture}`, () => sh(asWritten(script), { env, cwd: REPO }));
        expect(r.out).to.match(/Resources:\s+\+ \d+ created/);
        seedChecks(spec);
        phase("destroy", () => engine(spec, "destroy --yes --skip-preview"));
        deployed.pop();
    }

    it("README: npm run pack, then the tarball installed into an empty PULUMI_HOME", () => {
        blocks = packageBlocks(fs.readFileSync(path.join(REPO, "README.md"), "utf8"));
        fs.mkdirSync(path.join(work, "state"), { recursive: true });
        // The engine's other plugins from the offline mirror (with internet, pulumi would download them).
        for (const [name, version] of [
            ["random", "4.21.1"],
            ["command", "1.2.1"],
        ]) {
            sh(
                `pulumi plugin install resource ${name} v${version} --file ${MIRROR}/pulumi-resource-${name}-v${version}-linux-amd64.tar.gz`,
                { env },
            );
        }
        phase("README: pack and install", () => sh(asWritten(blocks[0]), { env, cwd: REPO }));
        expect(fs.readdirSync(path.join(home, "plugins"))).to.include("resource-host-topology-v0.3.0");
    });

    it("README: a YAML program of 22 lines deploys the topology; the seed's checks pass; refresh finds no drift", () => {
        deploy(path.join(work, "lab-hosts"), "yaml-topology", blocks[1] + blocks[2]);
    });

    it("README: the Python program, with the generated SDK in its own virtualenv, deploys the same topology", () => {
        deploy(path.join(work, "lab-hosts-python"), "python-topology", blocks[1] + blocks[3]);
    });

    it("README: the TypeScript program, with the generated Node.js SDK, deploys the same topology", () => {
        deploy(path.join(work, "lab-hosts-typescript"), "typescript-topology", blocks[1] + blocks[4]);
    });
});
