// Helpers for the end-to-end suite: commands with timing, the lab's SSH, pulumi against a stack.
import * as cp from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const REPO = path.resolve(__dirname, "../..");
export const HOSTS = { master: "192.168.100.2", node1: "192.168.100.3", node2: "192.168.100.4" } as const;
export type HostName = keyof typeof HOSTS;

export interface RunResult {
    code: number;
    /** stdout and stderr */
    out: string;
    stdout: string;
}

/** Runs a shell command in the repo; throws with the output tail unless allowFail. */
export function sh(cmd: string, opts: { allowFail?: boolean; input?: string; quiet?: boolean; timeoutS?: number } = {}): RunResult {
    const r = cp.spawnSync("bash", ["-c", cmd], {
        cwd: REPO,
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
            if (r.code !== 0 && !opts.allowFail) throw new Error(`command failed (${r.code}) on ${host}: ${cmd}\n${r.out.split("\n").slice(-60).join("\n")}`);
            return r;
        }
        console.log(`      (ssh to ${host} failed to connect, attempt ${attempt}; retrying)`);
        sh("sleep 2");
    }
}

export function shellQuote(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `pulumi ARGS --stack STACK` (scripts/env.sh puts the engine of scripts/engine.sh first on PATH). */
export function engine(stack: string, args: string, opts: { allowFail?: boolean; input?: string } = {}): RunResult {
    return sh(`pulumi ${args} --stack ${stack} --non-interactive --color never`, opts);
}

type Opts = { allowFail?: boolean };
/** `pulumi up` with flags among --refresh, --expect-no-changes. */
export function up(stack: string, flags = "", o: Opts = {}): RunResult {
    return engine(stack, `up --yes --skip-preview ${flags}`, o);
}
/** `pulumi preview` with flags among --refresh, --expect-no-changes, --diff. */
export function preview(stack: string, flags = "", o: Opts = {}): RunResult {
    return engine(stack, `preview ${flags}`, o);
}
export function destroy(stack: string, o: Opts = {}): RunResult {
    return engine(stack, "destroy --yes --skip-preview", o);
}
export function stackOutputs(stack: string): Record<string, any> {
    return JSON.parse(engine(stack, "stack output --json --show-secrets").stdout);
}
/** The stack's state as the backend stores it (`pulumi stack export`). */
export function exportedState(stack: string): string {
    return engine(stack, "stack export").stdout;
}
/**
 * A new, empty stack whose config is the dev stack's (Pulumi.dev.yaml without its encryptionsalt) with the
 * host-topology keys in `drop` removed and `extra` (`key: value` YAML lines) added.
 */
export function devStack(stack: string, extra: string[], drop: string[] = []): void {
    let cfg = fs.readFileSync(path.join(REPO, "Pulumi.dev.yaml"), "utf8").replace(/^encryptionsalt:.*\n?/m, "").trimEnd();
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

/**
 * Names of the resources a preview/up reports as changing: `preview --diff` prints a header per step
 * (`~ TYPE: (update)`) followed by its `[urn=...::NAME]`; `up` prints `~  TYPE NAME updated (1s)`.
 */
export function changedResources(out: string): string[] {
    const names = new Set<string>();
    for (const m of out.matchAll(/^\s*(?:[~+-]|\+-|-\+)\s+\S+: \((?:update|create|delete|replace|create-replacement|delete-replaced)\)\n(?:\s+\[id=.*\]\n)?\s+\[urn=\S*::([^\]\s]+)\]/gm)) names.add(m[1]);
    for (const m of out.matchAll(/^\s*(?:[~+-]|\+-|-\+)\s+\S+\s+(\S+)\s+(?:created|updated|deleted|replaced)\b/gm)) names.add(m[1]);
    return [...names].sort();
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

/** Counts of an up/preview summary: "N to create", "N created", "N unchanged", ... from the text output. */
export function changeSummary(out: string): Record<string, number> {
    const res: Record<string, number> = {};
    for (const m of out.matchAll(/^\s*([~+\-]|\+-)?\s*(\d+) (to create|to update|to delete|to replace|created|updated|deleted|replaced|changed|unchanged)\s*$/gm)) {
        res[m[3]] = Number(m[2]);
    }
    return res;
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
 * its own). Returns `pulumi ARGS --stack proof` in that project.
 */
export function engineProject(name: string, indexTs: string): (args: string, o?: { allowFail?: boolean }) => RunResult {
    const dir = path.join(REPO, ".lab", name);
    sh(`rm -rf ${dir} && mkdir -p ${dir}/state && ln -s ${REPO}/node_modules ${dir}/node_modules`);
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: ${name}\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n`);
    fs.writeFileSync(path.join(dir, "package.json"), `{"name": "${name}", "private": true}\n`);
    fs.writeFileSync(path.join(dir, "tsconfig.json"), '{"compilerOptions": {"strict": true, "target": "es2022", "module": "commonjs", "esModuleInterop": true, "skipLibCheck": true}}\n');
    fs.writeFileSync(path.join(dir, "index.ts"), indexTs);
    const env = `cd ${dir} && PULUMI_BACKEND_URL=file://${dir}/state PULUMI_CONFIG_PASSPHRASE=proof PULUMI_SKIP_UPDATE_CHECK=1 PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true`;
    sh(`${env} pulumi stack init proof --non-interactive`);
    return (args, o = {}) => sh(`${env} pulumi ${args} --stack proof --non-interactive --color never`, o);
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
            const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutS}s waiting for ${re} in: pulumi ${args}\n${out.slice(-2000)}`)), timeoutS * 1000);
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
