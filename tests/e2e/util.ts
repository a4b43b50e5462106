// Helpers for the end-to-end suite: commands with timing, the lab's SSH, pulumi against a stack.
import * as cp from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { type EngineEvent, LocalWorkspace, type OpMap, type OpType, Stack } from "@pulumi/pulumi/automation/index.js";

/** JSON from outside the suite (the exported state, stack outputs, etcd's answers): each test reads the shape it checks. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON that pulumi and etcd print, read by each test as the shape it checks
export type Json = any;

export const REPO = path.resolve(import.meta.dirname, "../..");
export const HOSTS = { master: "192.168.100.2", node1: "192.168.100.3", node2: "192.168.100.4" } as const;
export type HostName = keyof typeof HOSTS;

export interface RunResult {
    code: number;
    /** stdout and stderr */
    out: string;
    stdout: string;
}

/** Runs a shell command in the repo (or `cwd`, with `env` added to the environment); throws with the output tail unless allowFail. */
export function sh(
    cmd: string,
    opts: { allowFail?: boolean; input?: string; quiet?: boolean; timeoutS?: number; cwd?: string; env?: Record<string, string> } = {},
): RunResult {
    const r = cp.spawnSync("bash", ["-c", cmd], {
        cwd: opts.cwd ?? REPO,
        env: opts.env ? { ...process.env, ...opts.env } : undefined,
        input: opts.input,
        encoding: "utf8",
        maxBuffer: 256 * 1024 * 1024,
        timeout: (opts.timeoutS ?? 3600) * 1000,
    });
    const out = (r.stdout ?? "") + (r.stderr ?? "");
    const code = r.status ?? -1;
    if (code !== 0 && !opts.allowFail) {
        throw new Error(`command failed (${code}): ${cmd}\n${out.split("\n").slice(-60).join("\n")}`);
    }
    return { code, out, stdout: r.stdout ?? "" };
}

/** Runs a command as root on a lab host (lab/lab.sh ssh checks the route goes through the lab bridge). */
export function onHost(host: HostName, cmd: string, opts: { allowFail?: boolean; input?: string } = {}): RunResult {
    // ssh exits 255 when it could not connect: a transient failure is retried (twice, 2 s apart) and said.
    for (let attempt = 1; ; attempt++) {
        const r = sh(`lab/lab.sh ssh ${host} ${shellQuote(cmd)}`, { ...opts, allowFail: true });
        if (r.code !== 255 || attempt === 3) {
            if (r.code !== 0 && !opts.allowFail)
                throw new Error(`command failed (${r.code}) on ${host}: ${cmd}\n${r.out.split("\n").slice(-60).join("\n")}`);
            return r;
        }
        console.log(`      (ssh to ${host} failed to connect, attempt ${attempt}; retrying)`);
        sh("sleep 2");
    }
}

export function shellQuote(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A stack of this project (its name), or of another checkout or project (`workDir`) and backend or secrets (`env`). */
export type StackRef = string | StackSpec;
export interface StackSpec {
    stack: string;
    /** The project directory (default: this repo). */
    workDir?: string;
    /** Added to process.env for the CLI (PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE, PGPASSFILE...). */
    env?: Record<string, string>;
}

function specOf(ref: StackRef): Required<StackSpec> {
    return typeof ref === "string"
        ? { stack: ref, workDir: REPO, env: {} }
        : { stack: ref.stack, workDir: ref.workDir ?? REPO, env: ref.env ?? {} };
}

/**
 * `pulumi ARGS --stack STACK` as a raw CLI call (scripts/env.sh puts the engine of scripts/engine.sh first on PATH), in
 * the ref's project directory with its env: for the commands whose output nothing parses (stack init/rm, cancel,
 * config, refresh --clear-pending-creates, stack import/export --file).
 */
export function engine(ref: StackRef, args: string, opts: { allowFail?: boolean; input?: string } = {}): RunResult {
    const s = specOf(ref);
    return sh(`pulumi ${args} --stack ${s.stack} --non-interactive --color never`, { ...opts, cwd: s.workDir, env: s.env });
}

const stacks = new Map<string, Promise<Stack>>();

/** The Automation API's Stack of ref (LocalWorkspace.selectStack, once per stack name, workDir and env). */
export function stackOf(ref: StackRef): Promise<Stack> {
    const s = specOf(ref);
    const key = JSON.stringify([s.stack, s.workDir, s.env]);
    let st = stacks.get(key);
    if (!st) {
        st = LocalWorkspace.selectStack({ stackName: s.stack, workDir: s.workDir }, { envVars: s.env });
        const mine = st;
        // A stack not there yet (or a backend down) is selected again next time.
        mine.catch(() => stacks.get(key) === mine && stacks.delete(key));
        stacks.set(key, st);
    }
    return st;
}

/** What an up/preview/destroy through the Automation API did. */
export interface EngineResult {
    /** 0, or the CLI's exit status when it failed (-1 when it did not run or has none). */
    code: number;
    /** The display text (the CLI's stdout and stderr as they came), and on failure the error. */
    out: string;
    /** Operations by kind, from the engine's summary: create, update, delete, replace, same (the CLI's "unchanged")... */
    changes: OpMap;
    /**
     * Names of the resources with a step that changes them (any op but same/read/refresh...), sorted, from the events;
     * default providers left out as the display and the summary leave them out.
     */
    changed: string[];
    /** The engine's event stream. */
    events: EngineEvent[];
}

interface RunOpts {
    /** Return the failure (code != 0) instead of throwing. */
    allowFail?: boolean;
}
export interface UpOpts extends RunOpts {
    refresh?: boolean;
    expectNoChanges?: boolean;
    diff?: boolean;
    continueOnError?: boolean;
    /** URNs for --target */
    targets?: string[];
    parallel?: number;
}
export interface PreviewOpts extends RunOpts {
    refresh?: boolean;
    expectNoChanges?: boolean;
    diff?: boolean;
    targets?: string[];
    parallel?: number;
}
export interface DestroyOpts extends RunOpts {
    continueOnError?: boolean;
    targets?: string[];
    parallel?: number;
}

/** Steps that leave a resource as it is (the rest create, update, delete, replace or import one). */
const UNCHANGING: ReadonlySet<OpType> = new Set<OpType>([
    "same",
    "read",
    "read-replacement",
    "refresh",
    "discard",
    "discard-replaced",
    "remove-pending-replace",
]);

/** One step of an event stream (resourcePreEvent): the resource's name and type, the op, planned (preview) or run. */
export interface Step {
    name: string;
    type: string;
    urn: string;
    op: OpType;
    planning: boolean;
}

export function steps(events: EngineEvent[]): Step[] {
    const out: Step[] = [];
    for (const e of events) {
        const p = e.resourcePreEvent;
        if (p)
            out.push({
                name: p.metadata.urn.split("::").pop()!,
                type: p.metadata.type,
                urn: p.metadata.urn,
                op: p.metadata.op,
                planning: Boolean(p.planning),
            });
    }
    return out;
}

/**
 * Messages of the engine's diagnostics as the display shows them (info, warnings, errors, and a provider's output such as
 * remote.Command's, which the display appends to the resource's line; not debug), of the resource NAME if given.
 */
export function diagnostics(events: EngineEvent[], name?: string): string[] {
    return events
        .map((e) => e.diagnosticEvent)
        .filter(
            (d): d is NonNullable<typeof d> =>
                d !== undefined &&
                (d.severity as string) !== "debug" /* sent, though not in the SDK's type */ &&
                (name === undefined || d.urn?.split("::").pop() === name),
        )
        .map((d) => d.message);
}

/** A default provider (`pulumi:providers:command::default_1_2_1`): in the events, never in the display or the summary counts. */
const isDefaultProvider = (s: Step) => s.type.startsWith("pulumi:providers:") && /^default(_|$)/.test(s.name);

function changedNames(events: EngineEvent[]): string[] {
    return [
        ...new Set(
            steps(events)
                .filter((s) => !UNCHANGING.has(s.op) && !isDefaultProvider(s))
                .map((s) => s.name),
        ),
    ].sort();
}

type Io = { color: "never"; onOutput: (s: string) => void; onError: (s: string) => void; onEvent: (e: EngineEvent) => void };

async function run(what: string, ref: StackRef, o: RunOpts, op: (s: Stack, io: Io) => Promise<OpMap | undefined>): Promise<EngineResult> {
    const events: EngineEvent[] = [];
    let out = "";
    const io: Io = { color: "never", onOutput: (s) => (out += s), onError: (s) => (out += s), onEvent: (e) => events.push(e) };
    let code = 0;
    let changes: OpMap | undefined;
    try {
        changes = await op(await stackOf(ref), io);
    } catch (caught) {
        const e = caught as { commandResult?: { err?: { exitCode?: unknown; shortMessage?: string } }; message?: string } | undefined;
        // The CLI's own failure: execa's error (exit status, the command) inside the CommandError.
        const ex = e?.commandResult?.err;
        code = typeof ex?.exitCode === "number" && ex.exitCode !== 0 ? ex.exitCode : -1;
        // What the CLI printed is in `out` already; when it printed nothing (stack select failed), the whole error.
        out += `\n${ex?.shortMessage && out ? ex.shortMessage : String(e?.message ?? e)}`;
        if (!o.allowFail)
            throw new Error(`pulumi ${what} failed (${code}) on stack ${specOf(ref).stack}:\n${out.split("\n").slice(-60).join("\n")}`);
    }
    // A failed run has no summary from the backend's history: the engine's summary event says what it did.
    changes ??= events.find((e) => e.summaryEvent)?.summaryEvent?.resourceChanges ?? {};
    return { code, out, changes, changed: changedNames(events), events };
}

/** `pulumi up --yes --skip-preview` with the options' flags. */
export function up(ref: StackRef, o: UpOpts = {}): Promise<EngineResult> {
    return run("up", ref, o, async (s, io) => {
        const r = await s.up({
            ...io,
            refresh: o.refresh,
            expectNoChanges: o.expectNoChanges,
            diff: o.diff,
            continueOnError: o.continueOnError,
            target: o.targets,
            parallel: o.parallel,
        });
        return r.summary?.resourceChanges;
    });
}
/** `pulumi preview` with the options' flags (`diff`: the display of `preview --diff`). */
export function preview(ref: StackRef, o: PreviewOpts = {}): Promise<EngineResult> {
    return run("preview", ref, o, async (s, io) => {
        const r = await s.preview({
            ...io,
            refresh: o.refresh,
            expectNoChanges: o.expectNoChanges,
            diff: o.diff,
            target: o.targets,
            parallel: o.parallel,
        });
        return r.changeSummary;
    });
}
/** `pulumi destroy --yes --skip-preview`. */
export function destroy(ref: StackRef, o: DestroyOpts = {}): Promise<EngineResult> {
    return run("destroy", ref, o, async (s, io) => {
        const r = await s.destroy({ ...io, continueOnError: o.continueOnError, target: o.targets, parallel: o.parallel });
        return r.summary?.resourceChanges;
    });
}
/** The stack's outputs, secrets shown (`stack output --json --show-secrets`); with showSecrets false, as "[secret]". */
export async function stackOutputs(ref: StackRef, o: { showSecrets?: boolean } = {}): Promise<Record<string, Json>> {
    const outs = await (await stackOf(ref)).outputs();
    return Object.fromEntries(Object.entries(outs).map(([k, v]) => [k, v.secret && o.showSecrets === false ? "[secret]" : v.value]));
}
/**
 * The stack's state as the backend stores it: `pulumi stack export`, secrets as ciphertext. (The Automation API's
 * exportStack() runs `stack export --show-secrets`: every secret in plaintext, so it is not what a test that looks
 * for plaintext secrets may read.)
 */
export async function exportedState(ref: StackRef): Promise<string> {
    return engine(ref, "stack export").stdout;
}
/**
 * A new, empty stack whose config is the dev stack's (Pulumi.dev.yaml without its encryptionsalt) with the
 * host-topology keys in `drop` removed and `extra` (`key: value` YAML lines) added.
 */
export function devStack(stack: string, extra: string[], drop: string[] = []): void {
    let cfg = fs
        .readFileSync(path.join(REPO, "Pulumi.dev.yaml"), "utf8")
        .replace(/^encryptionsalt:.*\n?/m, "")
        .trimEnd();
    for (const k of drop) cfg = cfg.replace(new RegExp(`^  host-topology:${k}:.*\n?`, "m"), "");
    fs.writeFileSync(path.join(REPO, `Pulumi.${stack}.yaml`), `${cfg}\n${extra.map((l) => `  host-topology:${l}\n`).join("")}`);
    freshStack(stack);
}

/** A new, empty stack (its Pulumi.<stack>.yaml is kept). */
export function freshStack(stack: string): void {
    const backend = process.env.PULUMI_BACKEND_URL ?? "";
    if (backend.startsWith("file://")) fs.mkdirSync(backend.slice("file://".length).split("?")[0], { recursive: true });
    removeStack(stack);
    engine(stack, "stack init");
}
export function removeStack(stack: string): void {
    // A lock left by a killed run of an earlier test would refuse the removal.
    engine(stack, "cancel --yes", { allowFail: true });
    engine(stack, "stack rm --force --yes --preserve-config", { allowFail: true });
}

const timings: [string, number][] = [];

/** Times a phase (sync, or until its promise settles) and records it for the summary printed at the end. */
export function phase<T>(name: string, fn: () => T): T {
    const t0 = Date.now();
    const done = () => {
        const s = (Date.now() - t0) / 1000;
        timings.push([name, s]);
        console.log(`      [phase] ${name}: ${s.toFixed(1)}s`);
    };
    let r: T;
    try {
        r = fn();
    } catch (e) {
        done();
        throw e;
    }
    if (r instanceof Promise) return r.finally(done) as T;
    done();
    return r;
}

export function printTimings(): void {
    console.log("\n  Phase timings:");
    for (const [n, s] of timings) console.log(`    ${s.toFixed(1).padStart(8)}s  ${n}`);
}

/** Builds an OCI image layout with one uncompressed layer of `mb` MiB of random data. Returns the layer digest. */
export function buildImage(dir: string, mb: number): string {
    fs.mkdirSync(path.join(dir, "blobs/sha256"), { recursive: true });
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "layer-"));
    sh(`head -c ${mb}M /dev/urandom > ${work}/big.bin && tar -C ${work} -cf ${work}/layer.tar big.bin`);
    const layerDigest = sh(`sha256sum ${work}/layer.tar | cut -d' ' -f1`).out.trim();
    const layerSize = fs.statSync(`${work}/layer.tar`).size;
    fs.renameSync(`${work}/layer.tar`, path.join(dir, "blobs/sha256", layerDigest));
    fs.rmSync(work, { recursive: true, force: true });
    const blob = (obj: object) => {
        const data = Buffer.from(JSON.stringify(obj));
        const digest = crypto.createHash("sha256").update(data).digest("hex");
        fs.writeFileSync(path.join(dir, "blobs/sha256", digest), data);
        return { digest: `sha256:${digest}`, size: data.length };
    };
    const config = blob({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: [`sha256:${layerDigest}`] },
        config: {},
    });
    const manifest = blob({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: `sha256:${layerDigest}`, size: layerSize }],
    });
    fs.writeFileSync(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    fs.writeFileSync(
        path.join(dir, "index.json"),
        JSON.stringify({
            schemaVersion: 2,
            manifests: [
                {
                    mediaType: "application/vnd.oci.image.manifest.v1+json",
                    ...manifest,
                    annotations: { "org.opencontainers.image.ref.name": "v1" },
                },
            ],
        }),
    );
    return layerDigest;
}

/**
 * A small Pulumi TypeScript project under .lab/<name> with its own file backend (for one of the program's parts on
 * its own). Returns its stack `proof` (for up, preview, stackOutputs, exportedState, destroy, engine).
 */
export function engineProject(name: string, indexTs: string): StackSpec {
    const dir = path.join(REPO, ".lab", name);
    sh(`rm -rf ${dir} && mkdir -p ${dir}/state && ln -s ${REPO}/node_modules ${dir}/node_modules`);
    // The program's parts use the project's provider plugin, which another project names as any plugin of a path.
    fs.writeFileSync(
        path.join(dir, "Pulumi.yaml"),
        `name: ${name}\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.ts\nplugins:\n  providers:\n    - name: host-topology\n      path: ${REPO}/provider\n`,
    );
    // Node.js runs its index.ts itself (type stripping), as this project's program.
    fs.writeFileSync(path.join(dir, "package.json"), `{"name": "${name}", "private": true, "type": "module", "main": "index.ts"}\n`);
    fs.writeFileSync(path.join(dir, "index.ts"), indexTs);
    const proof: StackSpec = {
        stack: "proof",
        workDir: dir,
        env: {
            PULUMI_BACKEND_URL: `file://${dir}/state`,
            PULUMI_CONFIG_PASSPHRASE: "proof",
            PULUMI_SKIP_UPDATE_CHECK: "1",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        },
    };
    engine(proof, "stack init");
    return proof;
}

/** A `pulumi` command running in the background, in its own process group (as a CI job runs it). */
export interface Running {
    child: cp.ChildProcess;
    /** stdout and stderr so far */
    out(): string;
    /** Resolves with the exit code (a signal counts as 128 + its number). */
    exited: Promise<number>;
    /** Resolves when the output matches re; rejects after timeoutS or when the command ends first. */
    waitFor(re: RegExp, timeoutS?: number): Promise<void>;
}

export function spawnPulumi(stack: string, args: string, opts: { cwd?: string; env?: Record<string, string> } = {}): Running {
    const child = cp.spawn("bash", ["-c", `exec pulumi ${args} --stack ${stack} --non-interactive --color never`], {
        cwd: opts.cwd ?? REPO,
        env: { ...process.env, ...opts.env },
        detached: true,
    });
    let out = "";
    let done = false;
    const listeners: (() => void)[] = [];
    const feed = (d: Buffer) => {
        out += d.toString();
        listeners.forEach((l) => l());
    };
    child.stdout!.on("data", feed);
    child.stderr!.on("data", feed);
    const exited = new Promise<number>((resolve) =>
        child.on("close", (code, signal) => {
            done = true;
            listeners.forEach((l) => l());
            resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0));
        }),
    );
    const waitFor = (re: RegExp, timeoutS = 300) =>
        new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
                () => reject(new Error(`timed out after ${timeoutS}s waiting for ${re} in: pulumi ${args}\n${out.slice(-2000)}`)),
                timeoutS * 1000,
            );
            const check = () => {
                if (re.test(out)) {
                    clearTimeout(timer);
                    resolve();
                } else if (done) {
                    clearTimeout(timer);
                    reject(new Error(`pulumi ${args} ended before ${re} appeared:\n${out.slice(-2000)}`));
                }
            };
            listeners.push(check);
            check();
        });
    return { child, out: () => out, exited, waitFor };
}

/** Ends what is left of a background command's process group (plugins of a killed pulumi), as CI does for a cancelled job. */
export function killGroup(r: Running): void {
    try {
        process.kill(-r.child.pid!, "SIGKILL");
    } catch {
        /* already gone */
    }
}
