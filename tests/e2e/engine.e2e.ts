// What only a real engine shows: the SSH key set with `pulumi config set --secret`, another project reading the
// stack through a StackReference, an `up` interrupted by SIGINT and one killed with SIGKILL (the next `up`, with the
// README's recovery steps, converges), two `up`s of one stack at the same moment (the backend's lock refuses one),
// and no plaintext secret in the exported state.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import {
    HOSTS,
    type Json,
    REPO,
    type Running,
    type StackSpec,
    destroy,
    engine,
    exportedState,
    freshStack,
    killGroup,
    onHost,
    phase,
    preview,
    removeStack,
    sh,
    spawnPulumi,
    stackOutputs,
    up,
} from "./util.ts";
import { fingerprint, parsePublicKey, type PublicKey } from "../../contract/sshKeys.ts";

const STACK = "e2e-engine";
const FILE = path.join(REPO, `Pulumi.${STACK}.yaml`);
const CONSUMER = path.join(REPO, "tests/fixtures/consumer");
const KEY = path.join(REPO, ".lab/ssh/id_ed25519");
const ETCD = `ETCDCTL_API=3 etcdctl --endpoints=http://${HOSTS.master}:2379`;
/** The consumer project's stack (tests/fixtures/consumer, this repo's backend). */
const CONSUMER_STACK: StackSpec = { stack: "e2e-consumer", workDir: CONSUMER };

/** The seed's checks that say the topology is there: names, etcd, the registry through nginx. */
function topologyWorks(): void {
    for (const h of ["master", "node1", "node2"] as const) {
        expect(onHost(h, "getent hosts registry.danran.com").stdout.split(/\s+/)[0], `registry.danran.com on ${h}`).to.equal(HOSTS.master);
        expect(onHost(h, "getent hosts node2.danran.com").stdout.split(/\s+/)[0], `node2.danran.com on ${h}`).to.equal(HOSTS.node2);
    }
    expect(onHost("master", `${ETCD} endpoint health`).out).to.match(/is healthy/);
    // Basic auth is on in this stack: the registry answers 401 to anonymous clients through nginx.
    expect(
        onHost(
            "node1",
            "exec 3<>/dev/tcp/registry.danran.com/80 && printf 'GET /v2/ HTTP/1.0\\r\\nHost: registry.danran.com\\r\\n\\r\\n' >&3 && head -c 12 <&3",
        ).stdout,
    ).to.equal("HTTP/1.1 401");
}

/** The exported state parses, has no pending operations and holds the resources of a converged stack. */
async function stateIsWhole(min = 40): Promise<Json> {
    const dep = JSON.parse(await exportedState(STACK)).deployment;
    expect(dep.pending_operations ?? [], "pending operations").to.deep.equal([]);
    expect(dep.resources.length).to.be.at.least(min);
    return dep;
}

function consumer(args: string, o: { allowFail?: boolean } = {}) {
    return engine(CONSUMER_STACK, args, o);
}

/** Resolves when the file backend's checkpoint of the stack records an operation in flight (written by atomic rename). */
async function pendingOnDisk(stack: string, timeoutS = 120): Promise<void> {
    const file = path.join(REPO, ".pulumi-state/.pulumi/stacks/host-topology", `${stack}.json`);
    for (let i = 0; i < timeoutS * 10; i++) {
        const pending = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")).checkpoint?.latest?.pending_operations : undefined;
        if ((pending ?? []).length > 0) return;
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no pending operation in ${file} after ${timeoutS}s`);
}

describe("end-to-end: what the real engine shows (secret key config, StackReference, interruptions, locking)", function () {
    this.timeout(0);
    let creds: { username: string; password: string };
    const leftovers: Running[] = [];

    before(() => {
        phase("lab reset to pristine", () => sh("lab/lab.sh reset"));
        // The dev stack's hosts with registry basic auth, and the key in the stack's secret config as the README says.
        const dev = fs.readFileSync(path.join(REPO, "Pulumi.dev.yaml"), "utf8").replace(/^encryptionsalt:.*$/m, "");
        fs.writeFileSync(
            FILE,
            `${dev.replace(/^ {2}host-topology:sshPrivateKeyPath:.*\n/m, "").trimEnd()}\n  host-topology:registryAuth: true\n`,
        );
        freshStack(STACK);
        engine(STACK, "config set --secret host-topology:sshPrivateKey", { input: fs.readFileSync(KEY, "utf8") });
    });

    after(() => {
        leftovers.forEach(killGroup);
        consumer("stack rm --force --yes", { allowFail: true });
        sh(`rm -f ${CONSUMER}/Pulumi.e2e-consumer.yaml`);
        removeStack(STACK);
        sh(`rm -f ${FILE}`);
        sh("lab/lab.sh reset");
    });

    it("`pulumi config set --secret sshPrivateKey < key`: stored encrypted, shown as [secret]", () => {
        const yaml = fs.readFileSync(FILE, "utf8");
        expect(yaml).to.match(/host-topology:sshPrivateKey:\n\s+secure: /);
        expect(yaml).to.not.contain("OPENSSH PRIVATE KEY");
        expect(yaml).to.not.match(/sshPrivateKeyPath/);
        expect(engine(STACK, "config get host-topology:sshPrivateKey").stdout).to.contain("BEGIN OPENSSH PRIVATE KEY");
        expect(engine(STACK, "config").stdout).to.match(/sshPrivateKey\s+\[secret\]/);
    });

    it("SIGINT during a long step: pulumi finishes the steps in flight and stops; the next up converges", async () => {
        const run = spawnPulumi(STACK, "up --yes --skip-preview");
        leftovers.push(run);
        // The registry step installs docker-registry and nginx: seconds of apt on the master.
        await run.waitFor(/master-registry-run\s+creating/);
        process.kill(run.child.pid!, "SIGINT");
        const code = await run.exited;
        console.log(
            `      SIGINT: pulumi exited ${code}; ${run
                .out()
                .split("\n")
                .filter((l) => /cancel|interrupt|\^C/i.test(l))
                .slice(0, 2)
                .join(" | ")}`,
        );
        expect(code, run.out().slice(-2000)).to.not.equal(0);
        // A graceful stop: the state is valid and records no operation in flight.
        const dep = JSON.parse(await exportedState(STACK)).deployment;
        expect(dep.pending_operations ?? []).to.deep.equal([]);
        const created = (dep.resources ?? []).length;
        expect(created, "some resources were created before the interrupt").to.be.greaterThan(2);
        const second = await phase("up after SIGINT", () => up(STACK));
        expect(second.changes.create ?? 0, second.out.slice(-2000)).to.be.greaterThan(0);
        topologyWorks();
        await preview(STACK, { expectNoChanges: true });
        await stateIsWhole();
    });

    it("SIGKILL of pulumi mid-apply: `pulumi refresh --clear-pending-creates`, then up, converge", async () => {
        await phase("destroy", () => destroy(STACK));
        const run = spawnPulumi(STACK, "up --yes --skip-preview");
        leftovers.push(run);
        await run.waitFor(/master-registry-run\s+creating/);
        // The display runs ahead of the checkpoint: kill once the state on disk records a step in flight.
        await pendingOnDisk(STACK);
        process.kill(run.child.pid!, "SIGKILL");
        expect(await run.exited).to.equal(137);
        killGroup(run); // what the killed pulumi leaves running (its plugins), as CI ends a cancelled job
        // The file backend writes each checkpoint with an atomic rename and (metadata=skip) no sidecar that a kill
        // could leave truncated: an empty dev.json.attrs once made every later command fail "failed to load checkpoint: EOF".
        expect(sh(`find ${REPO}/.pulumi-state -name '*.attrs'`).stdout.trim()).to.equal("");
        const pending = JSON.parse(await exportedState(STACK)).deployment.pending_operations ?? [];
        console.log(
            `      SIGKILL: ${pending.length} pending operation(s) in the state: ${pending.map((p: Json) => `${p.type} ${p.resource.urn.split("::").pop()}`).join(", ")}`,
        );
        expect(pending.length, "the kill left operations in flight").to.be.greaterThan(0);
        // The README's recovery for a killed up: the stale lock it left goes with `pulumi cancel`; the pending creates
        // are dropped (the scripts are idempotent, so a step that was running is simply run again); then up.
        const locked = await up(STACK, { allowFail: true });
        expect(locked.code).to.not.equal(0);
        expect(locked.out).to.match(/the stack is currently locked by 1 lock\(s\)/);
        engine(STACK, "cancel --yes");
        phase("refresh --clear-pending-creates", () => engine(STACK, "refresh --yes --skip-preview --clear-pending-creates"));
        await phase("up after SIGKILL", () => up(STACK));
        topologyWorks();
        await preview(STACK, { expectNoChanges: true });
        await stateIsWhole();
    });

    it("two `pulumi up` of one stack at the same moment: the lock refuses one, the stack stays whole", async () => {
        onHost("node1", "sed -i 's/^192.168.100.2 master.danran.com.*/192.168.100.99 master.danran.com master/' /etc/hosts");
        const a = spawnPulumi(STACK, "up --yes --skip-preview --refresh");
        leftovers.push(a);
        await a.waitFor(/Updating \(|Refreshing|refreshing/);
        const b = spawnPulumi(STACK, "up --yes --skip-preview --refresh");
        leftovers.push(b);
        const [ca, cb] = await Promise.all([a.exited, b.exited]);
        console.log(
            `      concurrent ups: A exit ${ca}, B exit ${cb}: ${
                b
                    .out()
                    .split("\n")
                    .find((l) => /lock/i.test(l))
                    ?.trim() ?? ""
            }`,
        );
        expect(
            [ca, cb].filter((c) => c === 0).length,
            `exactly one applies\nA:\n${a.out().slice(-1500)}\nB:\n${b.out().slice(-1500)}`,
        ).to.equal(1);
        const refused = ca === 0 ? b : a;
        expect(refused.out()).to.match(/locked/i);
        expect(onHost("node1", "getent hosts master.danran.com").stdout.split(/\s+/)[0]).to.equal(HOSTS.master);
        await preview(STACK, { expectNoChanges: true });
        await stateIsWhole();
    });

    it("another project reads the outputs through a StackReference and uses them, and the plugin's HostKey; the credentials stay secret", async () => {
        creds = (await stackOutputs(STACK)).registryCredentials;
        expect(creds.password).to.match(/^[A-Za-z0-9]{32}$/);
        consumer("stack rm --force --yes", { allowFail: true });
        consumer("stack init");
        consumer(`config set topologyStack organization/host-topology/${STACK}`);
        const r = await phase("consumer: pulumi up", () => up(CONSUMER_STACK));
        expect(r.out).to.not.contain(creds.password);
        const outs = await stackOutputs(CONSUMER_STACK, { showSecrets: false });
        expect(outs.registryCredentials).to.equal("[secret]");
        expect(outs.registry).to.equal("http://registry.danran.com");
        expect(outs.etcdEndpoint).to.equal(`http://${HOSTS.master}:2379`);
        expect(outs.probeResult).to.match(/^etcd \{"etcdserver":"3\.\d+\.\d+"/m);
        expect(outs.probeResult).to.match(/^anonymous 401$/m);
        expect(outs.probeResult).to.match(/^authenticated 200$/m);
        expect((await stackOutputs(CONSUMER_STACK)).registryCredentials).to.deep.equal(creds);
        // The plugin through its PulumiPlugin.yaml (runtime: nodejs): the registry host's key is the one pinned.
        const pinned = (await stackOutputs(STACK)).hostKeys.master as string;
        expect(outs.registryHostKey).to.equal(`${fingerprint(parsePublicKey(pinned) as PublicKey)} (${pinned.split(" ")[0]})`);
        const state = await exportedState(CONSUMER_STACK);
        expect(state).to.not.contain(creds.password);
        expect(state).to.contain("ciphertext");
        await destroy(CONSUMER_STACK);
    });

    it("the exported state holds no plaintext private key or password", async () => {
        const state = await exportedState(STACK);
        for (const l of fs
            .readFileSync(KEY, "utf8")
            .split("\n")
            .filter((x) => x && !x.startsWith("-----")))
            expect(state).to.not.contain(l);
        expect(state).to.not.contain(creds.password);
        // The htpasswd line (bcrypt) goes to the host on stdin as a secret: not even the hash is readable.
        const hash = onHost("master", "cut -d: -f2 /etc/nginx/.ngxpasswd").stdout.trim();
        expect(hash).to.match(/^\$2[aby]\$/);
        expect(state).to.not.contain(hash);
        expect(state).to.contain("ciphertext");
    });

    it("every resource keeps in the state where the program made it (under --stack-trace-limit=0), ending at index.ts", async () => {
        expect(fs.readFileSync(path.join(REPO, "Pulumi.yaml"), "utf8")).to.match(/^\s*nodeargs: .*--stack-trace-limit=0 /m);
        const resources: { type: string; urn: string; sourcePosition?: string; stackTrace?: { sourcePosition?: string }[] }[] = JSON.parse(
            await exportedState(STACK),
        ).deployment.resources;
        const made = resources.filter((r) => !r.type.startsWith("pulumi:"));
        expect(made.length).to.be.greaterThan(40);
        for (const r of made) {
            const frames = (r.stackTrace ?? []).map((f) => f.sourcePosition ?? "");
            // The SDK takes these stacks with no limit: from the `new` through the components to index.ts, where they
            // end (index.ts makes every resource after an await, so none runs on through the SDK's runner).
            expect(
                frames.some((f) => /\/index\.ts#\d+,\d+$/.test(f)),
                `${r.urn}: ${frames.join(" ")}`,
            ).to.equal(true);
            expect(
                frames.filter((f) => f.includes("node_modules")),
                r.urn,
            ).to.deep.equal([]);
            if (r.type.startsWith("command:") || r.type.startsWith("random:")) {
                expect(r.sourcePosition, r.urn).to.match(/\/components\/[\w/]+\.ts#\d+,\d+$/);
            }
        }
    });
});
