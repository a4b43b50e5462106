// Helpers for the end-to-end suite: commands with timing, the lab's SSH, pulumi against a stack.
import * as cp from "child_process";
import * as path from "path";

export const REPO = path.resolve(__dirname, "../..");
export const HOSTS = { master: "192.168.100.2", node1: "192.168.100.3", node2: "192.168.100.4" } as const;
export type HostName = keyof typeof HOSTS;

export interface RunResult {
    code: number;
    out: string;
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
    return { code, out };
}

/** Runs a command as root on a lab host (lab/lab.sh ssh checks the route goes through the lab bridge). */
export function onHost(host: HostName, cmd: string, opts: { allowFail?: boolean; input?: string } = {}): RunResult {
    return sh(`lab/lab.sh ssh ${host} ${shellQuote(cmd)}`, opts);
}

export function shellQuote(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function pulumi(stack: string, args: string, opts: { allowFail?: boolean } = {}): RunResult {
    return sh(`pulumi ${args} --stack ${stack} --non-interactive --color never`, opts);
}

const timings: [string, number][] = [];

/** Times a phase and records it for the summary printed at the end. */
export function phase<T>(name: string, fn: () => T): T {
    const t0 = Date.now();
    try {
        return fn();
    } finally {
        const s = (Date.now() - t0) / 1000;
        timings.push([name, s]);
        console.log(`      [phase] ${name}: ${s.toFixed(1)}s`);
    }
}

export function printTimings(): void {
    console.log("\n  Phase timings:");
    for (const [n, s] of timings) console.log(`    ${s.toFixed(1).padStart(8)}s  ${n}`);
}

/** Counts of a pulumi up/preview summary: "N to create", "N changed", ... from the text output. */
export function changeSummary(out: string): Record<string, number> {
    const res: Record<string, number> = {};
    for (const m of out.matchAll(/^\s*([~+\-]|\+-)?\s*(\d+) (to create|to update|to delete|to replace|created|updated|deleted|replaced|changed|unchanged)\s*$/gm)) {
        res[m[3]] = Number(m[2]);
    }
    return res;
}
