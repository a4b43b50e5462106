// "Your own hosts" (README) end to end on the lab: the section's commands as a person runs them, in a terminal, for a
// stack that is not one of the lab's (prodlike: its own passphrase file, a sudo user, keys pinned from ssh-keyscan);
// then the safety checks around such a stack; then a stack whose hosts come from another stack's output (hostsFrom).
import { expect } from "chai";
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Stack } from "@pulumi/pulumi/automation/index.js";
import { HOSTS, REPO, onHost, phase, printTimings, removeStack, sh } from "./util.ts";
import {
    type HostEntry,
    NODE3,
    type StackConfig,
    namesWith,
    newStack,
    onAddress,
    seedChecks,
    timeServed,
    up,
    writeConfig,
} from "./auto.ts";

const STACK = "prodlike";
const PASSFILE = path.join(os.homedir(), `.pulumi-${STACK}.passphrase`);
/** What the lab puts in for the README's placeholders: its addresses, its key, and the stack's name. */
const LAB_VALUES: [string, string][] = [
    ["10.20.0.10", HOSTS.master],
    ["10.20.0.11", HOSTS.node1],
    ["10.20.0.12", HOSTS.node2],
    ["~/.ssh/id_ed25519", ".lab/ssh/id_ed25519"],
    ["staging", STACK],
];
const host = (name: string, address: string, roles: string[]): HostEntry => ({ name, address, roles });
const DEV_HOSTS = [
    host("master", HOSTS.master, ["master", "etcd", "registry"]),
    host("node1", HOSTS.node1, ["node"]),
    host("node2", HOSTS.node2, ["node"]),
];

/** The `sh` blocks of the README's "Your own hosts" section (up to its "Hosts from another stack"), as one script. */
export function ownHostsScript(readme: string): string {
    const start = readme.indexOf("\n## Your own hosts\n");
    const end = readme.indexOf("\n## Configuration\n", start);
    expect(start, "README: ## Your own hosts").to.be.greaterThan(0);
    expect(end, "README: ## Configuration").to.be.greaterThan(start);
    const blocks = [...readme.slice(start, end).matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
    expect(blocks.length, "the section's sh blocks").to.be.greaterThan(4);
    return blocks.join("\n");
}

/** A person's environment: no passphrase of the lab's (scripts/test.sh exports it for the lab's stacks), plus `add`. */
function userEnv(add: Record<string, string> = {}): NodeJS.ProcessEnv {
    const env = { ...process.env, ...add };
    if (!("PULUMI_CONFIG_PASSPHRASE" in add)) delete env.PULUMI_CONFIG_PASSPHRASE;
    if (!("PULUMI_CONFIG_PASSPHRASE_FILE" in add)) delete env.PULUMI_CONFIG_PASSPHRASE_FILE;
    return env;
}
/** A command in the repo as the person runs it: stdin not a terminal, their environment (with the stack's passphrase file). */
function asUser(cmd: string, secrets: Record<string, string> = { PULUMI_CONFIG_PASSPHRASE_FILE: PASSFILE }): { code: number; out: string } {
    const env = userEnv(secrets);
    const r = cp.spawnSync("bash", ["-c", cmd], {
        cwd: REPO,
        env,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        timeout: 900_000,
        maxBuffer: 64 << 20,
    });
    return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/**
 * Runs `script` with bash in a terminal (util-linux `script` gives it a pty), as a person at a keyboard: each time the
 * output shows an answer's prompt, that answer is typed.
 */
function inTerminal(
    script: string,
    answers: { prompt: RegExp; type: string }[],
    timeoutS = 900,
): Promise<{ code: number; out: string; asked: number }> {
    const file = path.join(os.tmpdir(), `own-hosts-${process.pid}.sh`);
    fs.writeFileSync(file, `set -euo pipefail\n${script}`);
    const child = cp.spawn("script", ["-qefc", `bash ${file}`, "/dev/null"], {
        cwd: REPO,
        env: userEnv(),
        stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let asked = 0;
    const pending = [...answers];
    const feed = (d: Buffer) => {
        out += d.toString();
        // Each answer once, in order (a prompt is drawn again at each key typed).
        if (pending.length > 0 && pending[0].prompt.test(out)) {
            const a = pending.shift()!;
            asked++;
            setTimeout(() => child.stdin!.write(a.type), 300);
        }
    };
    child.stdout!.on("data", feed);
    child.stderr!.on("data", feed);
    return new Promise((resolve) => {
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutS * 1000);
        child.on("close", (code) => {
            clearTimeout(timer);
            fs.rmSync(file, { force: true });
            // eslint-disable-next-line no-control-regex -- strips the terminal's escape sequences (ESC [ ..., ESC 7/8) and carriage returns
            resolve({ code: code ?? -1, out: out.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]|\r/g, ""), asked });
        });
    });
}

/** sha256 of the files the stack manages on every host, and the stack's update count: what "nothing changed" compares. */
function hostsAndHistory(): string {
    const files = ["master", "node1", "node2"].map((h) => onHost(h as "master", "sha256sum /etc/hosts /etc/chrony/chrony.conf").stdout);
    const history = JSON.parse(asUser(`pulumi stack history --stack ${STACK} --json`).out.trim() || "[]");
    return `${files.join("")}updates: ${history.length}`;
}

function cleanUp(): void {
    removeStack(STACK);
    for (const f of [path.join(REPO, `Pulumi.${STACK}.yaml`), path.join(REPO, `known_hosts.${STACK}`), PASSFILE])
        fs.rmSync(f, { force: true });
}

describe("end-to-end on the lab: your own hosts, as the README says", function () {
    this.timeout(0);
    const cfg: StackConfig = { hosts: DEV_HOSTS, timeServeFromMaster: true };

    before(() => {
        cleanUp();
        phase("lab reset to pristine", () => sh("lab/lab.sh reset"));
    });
    after(() => {
        asUser(`pulumi destroy --yes --skip-preview --stack ${STACK}`);
        cleanUp();
        printTimings();
    });

    it("the section's commands, run as written in a terminal, deploy a non-lab stack: the seed's checks pass", async () => {
        const script = LAB_VALUES.reduce(
            (s, [from, to]) => s.split(from).join(to),
            ownHostsScript(fs.readFileSync(path.join(REPO, "README.md"), "utf8")),
        );
        expect(script, "the section uses the lab's values only where it names placeholders").to.not.match(/10\.20\.0\.|staging/);
        const r = await phase("README: Your own hosts", () =>
            inTerminal(script, [{ prompt: /Do you want to perform this update\?/, type: "yes\r" }]),
        );
        expect(r.code, r.out.slice(-4000)).to.equal(0);
        expect(r.asked, "pulumi up asked before it changed anything").to.equal(1);
        expect(r.out).to.match(/Resources:\s+\+ \d+ to create/);
        // The stack's file holds the key encrypted and no key in plain text; the passphrase file is the user's alone.
        const stackFile = fs.readFileSync(path.join(REPO, `Pulumi.${STACK}.yaml`), "utf8");
        expect(stackFile).to.match(/host-topology:sshPrivateKey:\n\s+secure: v1:/);
        expect(stackFile).to.not.match(/PRIVATE KEY/);
        expect(fs.statSync(PASSFILE).mode & 0o777).to.equal(0o600);
        // The keys pinned are the hosts' own, and the hosts were reached as the sudo user.
        const keys = JSON.parse(asUser(`pulumi stack output hostKeys --json --stack ${STACK}`).out);
        for (const h of ["master", "node1", "node2"] as const) {
            expect(keys[h], h).to.equal(onHost(h, "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub").stdout.trim());
        }
        for (const h of ["master", "node1", "node2"] as const) {
            const logins = onHost(h, "journalctl -u ssh --no-pager -o cat | grep -c 'Accepted publickey for deploy' || true").stdout.trim();
            expect(Number(logins), `${h}: logins as deploy`).to.be.greaterThan(0);
        }
        // The last of the section's commands: the summary of node1's changes (none).
        expect(r.out).to.contain(`of stack \`${STACK}\` (filtered to hosts: node1): no changes.`);
        await seedChecks(cfg);
        await timeServed(cfg);
    });

    it("preview-summary.sh --host node1 through the real engine: a change to every host, node1's lines only", () => {
        expect(asUser(`. scripts/env.sh && pulumi config set --stack ${STACK} domain example.org`).code).to.equal(0);
        const md = asUser(`tools/preview-summary.sh ${STACK} --host node1`).out;
        expect(md.split("\n")[0]).to.match(
            new RegExp(`^### \`pulumi preview\` of stack \`${STACK}\` \\(filtered to hosts: node1\\): \\d+ to update`),
        );
        expect([...md.matchAll(/^#### (.+)$/gm)].map((m) => m[1])).to.deep.equal(["node1"]);
        expect(md, md).to.match(/^\s*\+192\.168\.100\.3 node1\.example\.org node1$/m);
        expect(md, md).to.not.match(/node2-hosts-run|master-hosts-run/);
    });

    it("without a terminal, tools/up.sh refuses a pending change and nothing changes on any host", () => {
        const before = hostsAndHistory();
        const r = asUser(`tools/up.sh ${STACK}`);
        expect(r.code, r.out).to.equal(2);
        expect(r.out).to.contain(`up.sh: stack ${STACK}: no terminal to show the preview and ask on, so nothing was applied.`);
        expect(hostsAndHistory()).to.equal(before);
        expect(onHost("node1", "grep -c example.org /etc/hosts || true").stdout.trim()).to.equal("0");
    });

    it("with scripts/env.sh sourced, pulumi destroy without --yes does not destroy", () => {
        const before = hostsAndHistory();
        const r = asUser(`. scripts/env.sh && pulumi destroy --stack ${STACK}`);
        expect(r.code).to.not.equal(0);
        expect(r.out).to.match(
            /--yes or --skip-preview or --preview-only must be passed in to proceed when running in non-interactive mode/,
        );
        expect(hostsAndHistory()).to.equal(before);
        expect(onHost("master", "grep -c 'host-topology managed block' /etc/hosts").stdout.trim()).to.not.equal("0");
    });

    it("a non-lab stack with no passphrase stops before pulumi runs, saying how to set one", () => {
        const want = `error: stack "${STACK}" encrypts its secrets with a passphrase, and none is set: nothing was run.`;
        for (const cmd of [
            `tools/up.sh --yes ${STACK}`,
            `. scripts/env.sh && pulumi preview --stack ${STACK}`,
            `tools/preview-summary.sh ${STACK}`,
        ]) {
            const r = asUser(cmd, {});
            expect(r.code, cmd).to.not.equal(0);
            expect(r.out, cmd).to.contain(want);
            expect(r.out, cmd).to.contain("export PULUMI_CONFIG_PASSPHRASE_FILE=");
            expect(r.out, cmd).to.not.match(/Previewing update|decrypt/);
        }
        // The lab's passphrase is not a team's: given it, the stack's secrets do not open.
        const lab = asUser(`pulumi preview --stack ${STACK}`, { PULUMI_CONFIG_PASSPHRASE: "host-topology-lab" });
        expect(lab.code).to.not.equal(0);
        expect(lab.out).to.match(/incorrect passphrase/);
    });

    it("a private key set without --secret is refused at preview, naming the key and the command; nothing is lost", () => {
        const key = path.join(REPO, ".lab/ssh/id_ed25519");
        expect(asUser(`. scripts/env.sh && pulumi config set --stack ${STACK} sshPrivateKey -- "$(cat ${key})"`).code).to.equal(0);
        const r = asUser(`. scripts/env.sh && pulumi preview --stack ${STACK}`);
        expect(r.code).to.not.equal(0);
        expect(r.out).to.contain(`Pulumi.${STACK}.yaml: host-topology:sshPrivateKey is stored in plain text`);
        expect(r.out).to.contain(`pulumi config set --secret --stack ${STACK} sshPrivateKey < ~/.ssh/id_ed25519`);
        // Stored encrypted again, and the pending domain change undone: the stack is as it was.
        expect(
            asUser(
                `. scripts/env.sh && pulumi config set --stack ${STACK} --secret sshPrivateKey < ${key} && pulumi config set --stack ${STACK} domain danran.com`,
            ).code,
        ).to.equal(0);
        const ok = asUser(`. scripts/env.sh && pulumi preview --stack ${STACK} --refresh --expect-no-changes`);
        expect(ok.code, ok.out).to.equal(0);
    });
});

describe("end-to-end on the lab: hosts from the stack that made them (hostsFrom)", function () {
    this.timeout(0);
    const PRODUCER_DIR = path.join(REPO, "tests/fixtures/producer");
    const PRODUCER = "e2e-vms";
    const CONSUMER = "e2e-fromvms";
    const FROM = { stack: `organization/vms/${PRODUCER}` };
    const BASE: StackConfig = {
        domain: "danran.com",
        hostsFrom: FROM,
        sshPrivateKeyPath: ".lab/ssh/id_ed25519",
        sshKnownHostsPath: ".lab/ssh/known_hosts",
        timeServeFromMaster: true,
    };
    let stack: Stack;

    /** The producer's stack exports `hosts` (its config), as a VM project would. */
    function produce(hosts: HostEntry[]): void {
        const file = path.join(PRODUCER_DIR, `Pulumi.${PRODUCER}.yaml`);
        const salt = fs.existsSync(file) ? (/^encryptionsalt:.*$/m.exec(fs.readFileSync(file, "utf8"))?.[0] ?? "") : "";
        fs.writeFileSync(file, `${salt}\nconfig:\n  vms:hosts: ${JSON.stringify(hosts)}\n`);
        sh(`pulumi up --yes --skip-preview --stack ${PRODUCER} --non-interactive`, { cwd: PRODUCER_DIR });
    }
    /** Steps that would change anything: none of a failed up's may. */
    const changing = (events: Parameters<typeof namesWith>[0]) =>
        ["create", "update", "delete", "replace"].flatMap((op) => namesWith(events, op));

    before(async () => {
        phase("lab reset to pristine", () => sh("lab/lab.sh reset"));
        // The producer: a project of its own on the same backend (node_modules: this repo's).
        sh(`ln -sfn ${REPO}/node_modules ${PRODUCER_DIR}/node_modules`);
        sh(
            `pulumi stack rm --force --yes --stack ${PRODUCER} --non-interactive || true; rm -f Pulumi.${PRODUCER}.yaml; pulumi stack init ${PRODUCER} --non-interactive`,
            { cwd: PRODUCER_DIR },
        );
        produce(DEV_HOSTS);
        stack = await newStack(CONSUMER, BASE);
    });
    after(async () => {
        await stack?.destroy({ onOutput: () => undefined }).catch(() => undefined);
        removeStack(CONSUMER);
        sh(`pulumi stack rm --force --yes --stack ${PRODUCER} --non-interactive || true; rm -f Pulumi.${PRODUCER}.yaml node_modules`, {
            cwd: PRODUCER_DIR,
        });
        printTimings();
    });

    it("deploys the hosts the other stack exports: the seed's checks pass", async () => {
        const r = await phase("up: hosts from e2e-vms", () => up(stack));
        expect(r.changes.create ?? 0).to.be.greaterThan(30);
        await seedChecks({ ...BASE, hosts: DEV_HOSTS });
    });

    it("node3 added to the other stack's output is deployed by the next up, and removed again", async () => {
        phase("lab: node3 booted (LAB_NODES=3), pristine", () => sh("LAB_NODES=3 lab/lab.sh up && lab/lab.sh reset node3"));
        try {
            const four = [...DEV_HOSTS, host("node3", NODE3, ["node"])];
            produce(four);
            const added = await phase("up: node3 in the output", () => up(stack));
            expect(namesWith(added.events, "create")).to.include.members([
                "node3",
                "node3-hosts-run",
                "node3-time-run",
                "node3-firewall-run",
            ]);
            await seedChecks({ ...BASE, hosts: four });
            produce(DEV_HOSTS);
            const removed = await phase("up: node3 gone from the output", () => up(stack));
            expect(namesWith(removed.events, "delete")).to.include.members(["node3", "node3-hosts-run"]);
            expect(
                onAddress(NODE3, "grep -c 'host-topology managed block' /etc/hosts || true").stdout.trim(),
                "node3's managed config removed",
            ).to.equal("0");
            await seedChecks({ ...BASE, hosts: DEV_HOSTS });
        } finally {
            phase("lab: back to master, node1, node2", () => sh("LAB_NODES=2 lab/lab.sh up"));
        }
    });

    it("a missing stack, a missing output, or hosts beside hostsFrom: one clear error, and nothing is touched", async () => {
        const cases: [StackConfig, RegExp][] = [
            [{ ...BASE, hostsFrom: { stack: "organization/vms/nosuch" } }, /unknown stack "organization\/vms\/nosuch"/],
            [
                { ...BASE, hostsFrom: { ...FROM, output: "machines" } },
                /hostsFrom\.output: stack organization\/vms\/e2e-vms has no output "machines" \(its outputs: hosts\)/,
            ],
            [{ ...BASE, hosts: DEV_HOSTS }, /hostsFrom: and hosts are both set: keep one/],
        ];
        for (const [bad, want] of cases) {
            writeConfig(CONSUMER, bad);
            const r = await phase(`up refused: ${want.source.slice(0, 40)}`, () => up(stack, { allowFail: true }));
            expect(r.error, want.source).to.match(want);
            expect(changing(r.events), `${want.source}: no step`).to.deep.equal([]);
        }
        writeConfig(CONSUMER, BASE);
        const after = await phase("up: the good config again changes nothing", () => up(stack, { expectNoChanges: true }));
        expect(changing(after.events)).to.deep.equal([]);
    });
});
