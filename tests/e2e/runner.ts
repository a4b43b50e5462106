// The end-to-end suite's stand-in for `pulumi up` while the real engine cannot run here (the command and
// random provider plugins are not obtainable from the registries: issue 3). It is NOT the Pulumi engine:
// it runs the program (index.ts) under Pulumi mocks with the stack's config, and executes the program's own
// resources over SSH as they register, in the program's dependency order (a resource registers only after
// everything it depends on): remote.CopyToRemote uploads, remote.Command create/delete with their stdin, and
// the HostCheck dynamic provider's create/read/update. What it applied is kept in a runner state file
// (.lab/runner/<stack>.json, mode 0600, no private key in it) so that a second `up` skips unchanged
// resources, `destroy` runs the delete commands in reverse dependency order, and `refresh` reads drift.
//
// Usage: ts-node tests/e2e/runner.ts <up|preview|destroy|output> --stack S [--refresh] [--expect-no-changes]
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { hostCheckProvider, sshRun, CheckConnection } from "../../components/hostCheck";
import { pkiProvider } from "../../components/pki";
import { unwrapSecrets } from "../harness";

const REPO = path.resolve(__dirname, "../..");
const PROJECT = "host-topology";

interface StateEntry {
    type: string;
    name: string;
    hash: string;
    inputs: Record<string, any>;
    outputs: Record<string, any>;
    dependencies: string[];
}
interface RunnerState {
    resources: Record<string, StateEntry>;
    outputs?: Record<string, unknown>;
}

function arg(flag: string): boolean {
    return process.argv.includes(flag);
}
function argValue(flag: string): string | undefined {
    const i = process.argv.indexOf(flag);
    return i >= 0 ? process.argv[i + 1] : undefined;
}

const action = process.argv[2];
const stack = argValue("--stack") ?? "dev";
const refresh = arg("--refresh") || action === "refresh";
const expectNoChanges = arg("--expect-no-changes");
const stateFile = path.join(REPO, ".lab/runner", `${stack}.json`);

function loadState(): RunnerState {
    return fs.existsSync(stateFile) ? JSON.parse(fs.readFileSync(stateFile, "utf8")) : { resources: {} };
}
function saveState(s: RunnerState): void {
    fs.mkdirSync(path.dirname(stateFile), { recursive: true });
    fs.writeFileSync(stateFile, JSON.stringify(s, null, 1), { mode: 0o600 });
}

/** The stack's config as the engine would hand it to the program: strings, JSON for structured values. */
function stackConfig(): Record<string, string> {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const yaml = require("js-yaml");
    const file = path.join(REPO, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(file)) throw new Error(`no stack config ${file}`);
    const doc = yaml.load(fs.readFileSync(file, "utf8")) ?? {};
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries<any>(doc.config ?? {})) {
        const key = k.includes(":") ? k : `${PROJECT}:${k}`;
        if (v && typeof v === "object" && "secure" in v) throw new Error(`${key}: secure config values are not supported by the runner`);
        out[key] = typeof v === "string" ? v : JSON.stringify(v);
    }
    return out;
}

function privateKey(config: Record<string, string>): string {
    const p = config[`${PROJECT}:sshPrivateKeyPath`];
    return p && fs.existsSync(path.resolve(REPO, p)) ? fs.readFileSync(path.resolve(REPO, p), "utf8") : "";
}

function conn(c: any, key: string): CheckConnection {
    return { host: c.host, port: c.port ?? 22, user: c.user ?? "root", privateKey: c.privateKey || key, dialErrorLimit: c.dialErrorLimit };
}

/** Hash of what a resource applies (without the private key, so a rotated key is no change). */
function inputsHash(inputs: Record<string, any>): string {
    const copy = JSON.parse(JSON.stringify(inputs, (k, v) => (k === "privateKey" || k === "__provider" ? undefined : v)));
    return crypto.createHash("sha256").update(JSON.stringify(copy)).digest("hex");
}

const log = (s: string) => process.stdout.write(s + "\n");
const counts: Record<string, number> = {};
const count = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
const errors: string[] = [];

async function upOrPreview(apply: boolean): Promise<void> {
    const config = stackConfig();
    const key = privateKey(config);
    const old = loadState();
    const next: RunnerState = { resources: {} };
    const urnToKey = new Map<string, string>();
    let inFlight = 0;

    pulumi.runtime.setMocks(
        {
            async newResource(a: pulumi.runtime.MockResourceArgs): Promise<{ id: string; state: any }> {
                const k = `${a.type}::${a.name}`;
                const prev = old.resources[k];
                // Mocks hand secrets over as {<sig>: <secret sig>, value}: the runner needs the values.
                const inputs: Record<string, any> = unwrapSecrets({ ...a.inputs });
                if (a.type === "command:remote:CopyToRemote") {
                    inputs.source = { path: await inputs.source.path };
                    inputs.sha256 = crypto.createHash("sha256").update(fs.readFileSync(inputs.source.path)).digest("hex");
                }
                const hash = inputsHash(inputs);
                let outputs: Record<string, any> = prev?.outputs ?? {};
                const isNew = !prev;
                let changed = !prev || prev.hash !== hash;
                if (a.type.startsWith("random:")) {
                    changed = !prev;
                    if (!prev) {
                        const alphabet = (inputs.upper === false ? "" : "ABCDEFGHIJKLMNOPQRSTUVWXYZ") + "abcdefghijklmnopqrstuvwxyz0123456789";
                        const result = Array.from(crypto.randomBytes(inputs.length ?? 16), (b) => alphabet[b % alphabet.length]).join("");
                        outputs = { result };
                        if (a.type === "random:index/randomPassword:RandomPassword") {
                            // bcrypt as @pulumi/random computes it; Node has none built in, CPython's crypt has.
                            const py = "import crypt,sys; print(crypt.crypt(sys.stdin.read(), crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))";
                            const r = require("child_process").spawnSync("python3", ["-W", "ignore", "-c", py], { input: result, encoding: "utf8" });
                            if (r.status !== 0 || !/^\$2[aby]\$/.test(r.stdout)) throw new Error(`bcrypt via python3 failed: ${r.stderr}`);
                            outputs.bcryptHash = r.stdout.trim();
                        } else if (a.type !== "random:index/randomString:RandomString") {
                            throw new Error(`${a.type} is not supported by the runner`);
                        }
                    }
                } else if (a.type.startsWith("host-topology:") || a.type === "pulumi:pulumi:Stack") {
                    changed = false;
                } else if (a.type === "pulumi-nodejs:dynamic/host-topology:HostCheck") {
                    const c = conn(inputs.connection, key);
                    if (prev && refresh) {
                        const read = await hostCheckProvider.read!(prev.outputs.id, { ...inputs, connection: c, drift: {} });
                        const drift = read.props.drift as Record<string, string>;
                        if (Object.keys(drift).length > 0) {
                            for (const [item, why] of Object.entries(drift)) log(`    drift ${a.name}: ${item}: ${why}`);
                            changed = true;
                            outputs = { ...outputs, drift };
                        }
                    }
                    if (apply && changed) {
                        if (isNew) {
                            const r = await hostCheckProvider.create!({ ...inputs, connection: c });
                            outputs = { id: r.id, drift: {} };
                        } else {
                            await hostCheckProvider.update!(prev.outputs.id, { ...inputs, connection: c, drift: outputs.drift ?? {} }, { ...inputs, connection: c });
                            outputs = { id: prev.outputs.id, drift: {} };
                        }
                    }
                } else if (a.type === "pulumi-nodejs:dynamic/host-topology:Pki") {
                    // As the engine does: create once, then diff/update (new members get certificates). It is
                    // local (openssl), so a preview computes it too, to show the members' new parameters.
                    if (!isNew) changed = (await pkiProvider.diff!(prev.outputs.id, prev.outputs, inputs)).changes === true;
                    if (isNew) {
                        const r = await pkiProvider.create!(inputs);
                        outputs = { id: r.id, ...r.outs };
                    } else if (changed) {
                        const r = await pkiProvider.update!(prev.outputs.id, prev.outputs, inputs);
                        outputs = { id: prev.outputs.id, ...r.outs };
                    }
                } else if (a.type === "command:remote:CopyToRemote") {
                    if (apply && changed) {
                        const c = conn(inputs.connection, key);
                        const p = inputs.remotePath as string;
                        await sshRun(c, `cat > '${p}.tmp' && mv '${p}.tmp' '${p}'`, fs.readFileSync(inputs.source.path, "utf8"));
                    }
                } else if (a.type === "command:remote:Command") {
                    if (apply && changed) {
                        const out = await sshRun(conn(inputs.connection, key), inputs.create, inputs.stdin ?? "");
                        outputs = { stdout: out.replace(/\n$/, ""), stderr: "" };
                    }
                } else {
                    throw new Error(`unexpected resource type ${a.type}`);
                }
                if (changed) log(`    ${isNew ? "+" : "~"} ${a.type} ${a.name}${apply ? (isNew ? " created" : " updated") : isNew ? " (create)" : " (update)"}`);
                count(changed ? (isNew ? (apply ? "created" : "to create") : apply ? "updated" : "to update") : "unchanged");
                const stored: Record<string, any> = JSON.parse(JSON.stringify(inputs, (kk, v) => (kk === "privateKey" ? undefined : v)));
                next.resources[k] = { type: a.type, name: a.name, hash: apply || !changed ? hash : prev?.hash ?? "", inputs: stored, outputs, dependencies: [] };
                return { id: `${a.name}-id`, state: { ...a.inputs, ...outputs } };
            },
            call(a: pulumi.runtime.MockCallArgs): Record<string, any> {
                throw new Error(`unexpected call ${a.token}`);
            },
        },
        PROJECT,
        stack,
        !apply,
    );
    pulumi.runtime.setAllConfig(config);
    const monitor = (pulumi.runtime as any).getMonitor();
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, cb: any) => {
        inFlight++;
        original(req, (err: any, resp: any) => {
            inFlight--;
            const k = `${req.getType()}::${req.getName()}`;
            if (err) errors.push(`${req.getName()}: ${err.message ?? err}`);
            else {
                urnToKey.set(resp.getUrn(), k);
                if (next.resources[k]) next.resources[k].dependencies = req.getDependenciesList();
            }
            cb(err, resp);
        });
    };

    let program: Record<string, any>;
    try {
        // eslint-disable-next-line @typescript-eslint/no-var-requires
        program = require(path.join(REPO, "index.ts"));
    } catch (e: any) {
        log(`error: ${e.message ?? e}`);
        process.exitCode = 1;
        return;
    }
    // Wait until every registration, and so every remote step, has finished.
    let quiet = 0;
    while (quiet < 10) {
        await new Promise((r) => setTimeout(r, 50));
        quiet = inFlight === 0 ? quiet + 1 : 0;
    }
    for (const e of errors) log(`error: ${e}`);
    // Dependencies as state keys, for destroy order.
    for (const r of Object.values(next.resources)) r.dependencies = r.dependencies.map((u) => urnToKey.get(u) ?? u);

    if (errors.length === 0) {
        // Resources the program no longer registers: delete them, dependents first.
        const gone = Object.keys(old.resources).filter((k) => !next.resources[k]);
        if (apply) await deleteInOrder(old, gone, key);
        else for (const k of gone) (log(`    - ${k} (delete)`), count("to delete"));
    } else {
        // Keep what was applied before for the resources that failed.
        for (const [k, v] of Object.entries(old.resources)) if (!next.resources[k]) next.resources[k] = v;
    }
    const outputs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(program)) {
        // promise(true) also resolves outputs that are unknown in a preview.
        const value = await (pulumi.output(v) as any).promise(true);
        outputs[k] = pulumi.Output.isInstance(value) || typeof value === "object" ? JSON.parse(JSON.stringify(value ?? null, (_k, x) => (typeof x === "object" && x?.constructor?.name === "Unknown" ? "<unknown>" : x))) : value;
    }
    next.outputs = outputs;
    if (apply) saveState(next);
    summary(apply);
    if (errors.length > 0) process.exitCode = 1;
    else if (expectNoChanges && Object.keys(counts).some((c) => c !== "unchanged")) {
        log("error: no changes were expected");
        process.exitCode = 1;
    }
}

async function deleteInOrder(state: RunnerState, keys: string[], key: string): Promise<void> {
    const todo = new Set(keys);
    while (todo.size > 0) {
        // A resource can go once nothing still to delete depends on it.
        const ready = [...todo].filter((k) => ![...todo].some((o) => state.resources[o].dependencies.includes(k)));
        if (ready.length === 0) throw new Error("dependency cycle in runner state");
        for (const k of ready) {
            const r = state.resources[k];
            if (r.type === "command:remote:Command" && r.inputs.delete) {
                try {
                    await sshRun(conn(r.inputs.connection, key), r.inputs.delete, r.inputs.stdin ?? "");
                } catch (e: any) {
                    errors.push(`${r.name}: ${e.message}`);
                    return;
                }
            }
            log(`    - ${r.type} ${r.name} deleted`);
            count("deleted");
            delete state.resources[k];
            todo.delete(k);
        }
    }
}

async function destroy(): Promise<void> {
    const state = loadState();
    const key = privateKey(stackConfig());
    await deleteInOrder(state, Object.keys(state.resources), key);
    for (const e of errors) log(`error: ${e}`);
    state.outputs = {};
    saveState(state);
    summary(true);
    if (errors.length > 0) process.exitCode = 1;
}

function summary(apply: boolean): void {
    log(`Resources (runner, ${apply ? "applied" : "preview"}):`);
    for (const [k, n] of Object.entries(counts)) log(`    ${n} ${k}`);
}

async function main(): Promise<void> {
    switch (action) {
        case "up":
            return upOrPreview(true);
        case "preview":
        case "refresh":
            return upOrPreview(false);
        case "destroy":
            return destroy();
        case "output":
            log(JSON.stringify(loadState().outputs ?? {}, null, 2));
            return;
        case "rm":
            fs.rmSync(stateFile, { force: true });
            return;
        default:
            throw new Error(`usage: runner.ts <up|preview|refresh|destroy|output|rm> --stack S [--refresh] [--expect-no-changes]`);
    }
}

main().catch((e) => {
    log(`error: ${e.stack ?? e}`);
    process.exitCode = 1;
});
