// The end-to-end suite through the Automation API (@pulumi/pulumi/automation): stacks of this project driven as
// a program drives them, results read from the engine's own summaries and events instead of its display text.
import * as cp from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { expect } from "chai";
import { type EngineEvent, LocalWorkspace, type OpMap, Stack } from "@pulumi/pulumi/automation/index.js";
import { HOSTS, type HostName, type Json, REPO, onHost, phase, removeStack } from "./util.ts";

export interface HostEntry {
    name: string;
    address: string;
    roles: string[];
    hostKey?: string;
}

/** A stack's host-topology config: key -> value (written as JSON, which YAML reads as is). */
export type StackConfig = Record<string, unknown>;

/** The dev stack's config on the lab (Pulumi.dev.yaml): the documented topology, the lab's key and known_hosts. */
export const LAB_DEV_CONFIG: Readonly<StackConfig> = {
    domain: "danran.com",
    hosts: [
        { name: "master", address: HOSTS.master, roles: ["master", "etcd", "registry"] },
        { name: "node1", address: HOSTS.node1, roles: ["node"] },
        { name: "node2", address: HOSTS.node2, roles: ["node"] },
    ] satisfies HostEntry[],
    sshPrivateKeyPath: ".lab/ssh/id_ed25519",
    sshKnownHostsPath: ".lab/ssh/known_hosts",
    timeServeFromMaster: true,
};

/** Writes Pulumi.<stack>.yaml from `cfg` (the file a user edits; `pulumi config set` writes the same file). */
export function writeConfig(stack: string, cfg: StackConfig): void {
    const lines = Object.entries(cfg)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `  host-topology:${k}: ${JSON.stringify(v)}`);
    fs.writeFileSync(path.join(REPO, `Pulumi.${stack}.yaml`), `config:\n${lines.join("\n")}\n`);
}

/** A new, empty stack of this project with `cfg`, driven through the Automation API. */
export async function newStack(stack: string, cfg: StackConfig): Promise<Stack> {
    removeStack(stack);
    writeConfig(stack, cfg);
    return LocalWorkspace.createStack({ stackName: stack, workDir: REPO });
}

export interface Run {
    /** Operations by kind, from the engine's summary (create, update, delete, same, replace...). */
    changes: OpMap;
    /** The engine's event stream. */
    events: EngineEvent[];
    /** What the display printed. */
    out: string;
}

/** Names of the resources an event stream shows with operation `op` (resourcePreEvent). */
export function namesWith(events: EngineEvent[], op: string): string[] {
    const names = new Set<string>();
    for (const e of events) {
        const m = e.resourcePreEvent?.metadata;
        if (m && m.op === op) names.add(m.urn.split("::").pop()!);
    }
    return [...names].sort();
}

/** `pulumi up` (no preview step). Throws the engine's error text unless allowFail, then returns it in `error`. */
export async function up(
    stack: Stack,
    opts: { refresh?: boolean; continueOnError?: boolean; expectNoChanges?: boolean; allowFail?: boolean } = {},
): Promise<Run & { error?: string }> {
    const events: EngineEvent[] = [];
    let out = "";
    try {
        const r = await stack.up({
            refresh: opts.refresh,
            continueOnError: opts.continueOnError,
            expectNoChanges: opts.expectNoChanges,
            onEvent: (e) => events.push(e),
            onOutput: (s) => (out += s),
        });
        return { changes: r.summary.resourceChanges ?? {}, events, out };
    } catch (e) {
        if (!opts.allowFail) throw new Error(`pulumi up failed:\n${out.slice(-6000)}\n${String((e as Error).message ?? e).slice(-3000)}`);
        return { changes: {}, events, out, error: `${out}\n${(e as Error).message ?? e}` };
    }
}

/** `pulumi preview`; with expectNoChanges it fails on any change, naming them. */
export async function preview(stack: Stack, opts: { refresh?: boolean; expectNoChanges?: boolean; diff?: boolean } = {}): Promise<Run> {
    const events: EngineEvent[] = [];
    let out = "";
    try {
        const r = await stack.preview({ ...opts, onEvent: (e) => events.push(e), onOutput: (s) => (out += s) });
        return { changes: r.changeSummary ?? {}, events, out };
    } catch (e) {
        const changed = ["update", "create", "delete", "replace"].map((op) => `${op}: ${namesWith(events, op).join(" ")}`).join("; ");
        throw new Error(`pulumi preview failed (${changed}):\n${out.slice(-6000)}\n${String((e as Error).message ?? e).slice(-2000)}`);
    }
}

/** Every resource of the stack's state: type, name, outputs. */
export async function resources(stack: Stack): Promise<{ type: string; name: string; outputs: Record<string, Json> }[]> {
    const state = await stack.exportStack();
    return (state.deployment.resources ?? []).map((r: Json) => ({ type: r.type, name: r.urn.split("::").pop(), outputs: r.outputs ?? {} }));
}

/** The `changed ...` lines the hosts' scripts printed in the last run of every step (their stdout, in the state). */
export async function changedLines(stack: Stack): Promise<string[]> {
    const out: string[] = [];
    for (const r of await resources(stack)) {
        if (r.type !== "command:remote:Command" || typeof r.outputs.stdout !== "string") continue;
        for (const l of r.outputs.stdout.split("\n")) if (/^(changed|removed|restored) /.test(l)) out.push(`${r.name}: ${l}`);
    }
    return out;
}

/**
 * A stack deployed by an older commit of this project, as a user's checkout of it: a git worktree at `commit` (outside
 * the checkout: the language host walks the project directory), the same state backend and lab. Returns the stack
 * there and a function that moves it to this checkout (its config file, with the stack's encryption salt, moves
 * along) and returns it here; `cleanup` removes the worktree.
 */
export async function deployedBy(commit: string, stack: string, cfg: StackConfig) {
    const tree = path.join(os.tmpdir(), `host-topology-${commit}`);
    cp.execSync(`git worktree remove --force ${tree} 2>/dev/null; rm -rf ${tree}; git worktree add --detach ${tree} ${commit}`, {
        cwd: REPO,
        stdio: "ignore",
    });
    // Its own npm packages, as its package-lock.json pins them (an older SDK, its compile step): this checkout's would
    // run the old code on packages it never ran with.
    fs.symlinkSync(path.join(REPO, ".lab"), path.join(tree, ".lab"));
    cp.execSync("npm ci --no-audit --no-fund --loglevel=error", { cwd: tree, stdio: "ignore" });
    removeStack(stack);
    const lines = Object.entries(cfg).map(([k, v]) => `  host-topology:${k}: ${JSON.stringify(v)}`);
    fs.writeFileSync(path.join(tree, `Pulumi.${stack}.yaml`), `config:\n${lines.join("\n")}\n`);
    const old = await LocalWorkspace.createStack({ stackName: stack, workDir: tree });
    await old.up({ onOutput: () => undefined });
    return {
        old,
        here: async () => {
            fs.copyFileSync(path.join(tree, `Pulumi.${stack}.yaml`), path.join(REPO, `Pulumi.${stack}.yaml`));
            return LocalWorkspace.selectStack({ stackName: stack, workDir: REPO });
        },
        cleanup: () => cp.execSync(`git worktree remove --force ${tree}`, { cwd: REPO, stdio: "ignore" }),
    };
}

// ---- etcd from this machine (its HTTP gateway), through the lab's bridge only ----

/** Refuses unless ADDRESS is reached through the lab's bridge (no traffic anywhere else). */
export function assertLabRoute(address: string): void {
    const route = cp.execFileSync("ip", ["route", "get", address], { encoding: "utf8" });
    if (!/\bdev labbr0\b/.test(route)) throw new Error(`${address} is not routed through the lab bridge labbr0: ${route.trim()}`);
}

/** POST a JSON body to etcd's v3 gateway; resolves the parsed answer; rejects on an error status or after timeoutMs. */
export function etcdCall(endpoint: string, api: string, body: object, timeoutMs = 2000): Promise<Json> {
    const url = new URL(`${endpoint}/v3/${api}`);
    assertLabRoute(url.hostname);
    return new Promise((resolve, reject) => {
        const req = http.request(url, { method: "POST", timeout: timeoutMs, headers: { "content-type": "application/json" } }, (res) => {
            let data = "";
            res.on("data", (d) => (data += d));
            res.on("end", () => {
                if (res.statusCode !== 200) return reject(new Error(`${endpoint} ${api}: HTTP ${res.statusCode} ${data}`));
                try {
                    resolve(JSON.parse(data));
                } catch (e) {
                    reject(e);
                }
            });
        });
        req.on("timeout", () => req.destroy(new Error(`${endpoint} ${api}: timed out after ${timeoutMs} ms`)));
        req.on("error", reject);
        req.end(JSON.stringify(body));
    });
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

export async function etcdPut(endpoints: string[], key: string, value: string): Promise<void> {
    let last: unknown;
    for (const e of endpoints) {
        try {
            await etcdCall(e, "kv/put", { key: b64(key), value: b64(value) });
            return;
        } catch (err) {
            last = err;
        }
    }
    throw last;
}

/** A key's value (linearizable read) from the first endpoint that answers; undefined when the key is absent. */
export async function etcdGet(endpoints: string[], key: string): Promise<string | undefined> {
    let last: unknown;
    for (const e of endpoints) {
        try {
            const r = await etcdCall(e, "kv/range", { key: b64(key) });
            return r.kvs?.[0] ? Buffer.from(r.kvs[0].value ?? "", "base64").toString() : undefined;
        } catch (err) {
            last = err;
        }
    }
    throw last;
}

/** The cluster's members: name, peer URLs, learner. */
export async function etcdMembers(endpoint: string): Promise<{ name: string; peerURLs: string[]; isLearner: boolean }[]> {
    const r = await etcdCall(endpoint, "cluster/member/list", {});
    return (r.members ?? []).map((m: Json) => ({ name: m.name ?? "", peerURLs: m.peerURLs ?? [], isLearner: Boolean(m.isLearner) }));
}

export interface WriterReport {
    ok: number;
    failed: number;
    /** Longest stretch without a successful write (ms). */
    longestGapMs: number;
    /** The first few errors. */
    errors: string[];
}

/**
 * Puts a key every 100 ms while `during` runs, as a client with every endpoint would (the next one when one fails
 * within the tick's 2 s budget). A write that no endpoint took counts as failed.
 */
export async function withWriter<T>(
    endpoints: () => string[],
    prefix: string,
    during: () => Promise<T>,
): Promise<{ result: T; writes: WriterReport }> {
    const report: WriterReport = { ok: 0, failed: 0, longestGapMs: 0, errors: [] };
    let stop = false;
    let lastOk = Date.now();
    const loop = (async () => {
        for (let i = 0; !stop; i++) {
            const t0 = Date.now();
            try {
                await etcdPut(endpoints(), `${prefix}/${i}`, String(t0));
                report.ok++;
                report.longestGapMs = Math.max(report.longestGapMs, Date.now() - lastOk);
                lastOk = Date.now();
            } catch (e) {
                report.failed++;
                if (report.errors.length < 5) report.errors.push(String((e as Error).message ?? e));
            }
            await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - t0))));
        }
    })();
    try {
        const result = await during();
        return { result, writes: report };
    } finally {
        stop = true;
        await loop;
        report.longestGapMs = Math.max(report.longestGapMs, Date.now() - lastOk);
    }
}

/** node3, which `LAB_NODES=3 lab/lab.sh up` boots beside the documented three. */
export const NODE3 = "192.168.100.5";
const LAB_NAME: Record<string, HostName> = {
    [HOSTS.master]: "master",
    [HOSTS.node1]: "node1",
    [HOSTS.node2]: "node2",
    [NODE3]: "node3" as HostName,
};

/** A command as root on the lab host at `address`. */
export function onAddress(address: string, cmd: string, opts: { allowFail?: boolean } = {}) {
    return onHost(LAB_NAME[address], cmd, opts);
}

interface MemberSpec {
    host: string;
    name?: string;
}
/** The etcd members `cfg` configures, with their hosts' addresses (the config's defaults). */
export function etcdMembersOf(cfg: StackConfig): { name: string; address: string }[] {
    const hosts = cfg.hosts as HostEntry[];
    const specs: MemberSpec[] =
        (cfg.etcdMembers as MemberSpec[] | undefined) ?? hosts.filter((h) => h.roles.includes("etcd")).map((h) => ({ host: h.name }));
    return specs.map((m, i) => ({ name: m.name ?? `etcd${i + 1}`, address: hosts.find((h) => h.name === m.host)!.address }));
}
export const etcdEndpoints = (cfg: StackConfig): string[] => etcdMembersOf(cfg).map((m) => `http://${m.address}:2379`);

/**
 * The seed's checks for `cfg` (its hosts as a list) on the hosts: hostnames; every host resolves every host, FQDN, alias
 * (registry, etcd member names) to its address; firewalls off; chrony enabled (a node syncs from the master when it
 * serves time); the registry answers on its name from another host; etcd has exactly the configured members, all
 * answering linearizable reads (of `probeKey`, when given, written before).
 */
export async function seedChecks(cfg: StackConfig, probeKey?: string): Promise<void> {
    const on = onAddress;
    const hosts = cfg.hosts as HostEntry[];
    const registry = hosts.find((h) => h.roles.includes("registry"));
    const master = hosts.find((h) => h.roles.includes("master"));
    const names: [string, string][] = [];
    for (const h of hosts) names.push([h.name, h.address], [`${h.name}.danran.com`, h.address]);
    if (registry) names.push(["registry", registry.address], ["registry.danran.com", registry.address]);
    for (const m of etcdMembersOf(cfg)) names.push([m.name, m.address]);
    await phase(`seed checks (${hosts.map((h) => h.name).join(", ")})`, async () => {
        for (const h of hosts) {
            const facts = on(
                h.address,
                [
                    `echo "hostname $(hostname)"`,
                    `for n in ${names.map(([n]) => n).join(" ")}; do echo "resolve $n $(getent hosts $n | awk '{ print $1; exit }')"; done`,
                    `for u in ufw firewalld iptables; do echo "unit $u $(systemctl is-enabled $u 2>/dev/null || true) $(systemctl is-active $u 2>/dev/null || true)"; done`,
                    `echo "chrony $(systemctl is-enabled chrony 2>/dev/null || true)"`,
                    `grep '^server ' /etc/chrony/chrony.conf | sed 's/^/conf /' || true`,
                ].join("; "),
            ).stdout;
            expect(facts, `hostname of ${h.address}`).to.contain(`hostname ${h.name}\n`);
            for (const [n, a] of names) expect(facts, `${n} on ${h.name}`).to.contain(`resolve ${n} ${a}\n`);
            for (const l of facts.split("\n").filter((l) => l.startsWith("unit ")))
                expect(l, `${h.name}: firewall off`).to.not.match(/ enabled| active$/);
            expect(facts, `${h.name}: chrony enabled`).to.contain("chrony enabled\n");
            if (cfg.timeServeFromMaster && master && h !== master) {
                expect(
                    facts.split("\n").filter((l) => l.startsWith("conf ")),
                    `${h.name} syncs from the master`,
                ).to.deep.equal([`conf server ${master.address} iburst`]);
            }
        }
        if (registry) {
            const from = hosts.find((h) => h !== registry) ?? registry;
            const status = on(
                from.address,
                `exec 3<>/dev/tcp/registry.danran.com/80 && printf 'GET /v2/ HTTP/1.0\\r\\nHost: registry.danran.com\\r\\n\\r\\n' >&3 && head -1 <&3`,
            ).stdout;
            expect(status, `registry from ${from.name}`).to.match(/^HTTP\/1\.[01] 200/);
        }
        const want = etcdMembersOf(cfg);
        if (want.length > 0) {
            const got = await etcdMembers(etcdEndpoints(cfg)[0]);
            expect(got.map((m) => m.name).sort(), "etcd members").to.deep.equal(want.map((m) => m.name).sort());
            expect(
                got.filter((m) => m.isLearner),
                "no learner left",
            ).to.deep.equal([]);
            for (const e of etcdEndpoints(cfg)) await etcdGet([e], probeKey ?? "/seed/probe");
        }
    });
}

/**
 * Time really served (the lab runs chronyd -x, which tracks and serves time without setting the clock): asked through
 * chronyc, every other host selects the master (`^* <master>` in `chronyc -n sources`) and the master lists each of them
 * in `chronyc -n clients`. Waits up to `timeoutS` for the first exchanges (iburst: a few seconds).
 */
export async function timeServed(cfg: StackConfig, timeoutS = 60): Promise<void> {
    const hosts = cfg.hosts as HostEntry[];
    const master = hosts.find((h) => h.roles.includes("master"))!;
    const nodes = hosts.filter((h) => h !== master);
    await phase(`time served by the master to ${nodes.map((h) => h.name).join(", ")}`, async () => {
        const deadline = Date.now() + timeoutS * 1000;
        const state = () => {
            const sources = nodes.map((h) => [h.name, onAddress(h.address, "chronyc -n sources", { allowFail: true }).stdout] as const);
            const clients = onAddress(master.address, "chronyc -n clients", { allowFail: true }).stdout;
            return { sources, clients };
        };
        let s = state();
        const done = () =>
            s.sources.every(([, out]) => out.includes(`^* ${master.address} `)) &&
            nodes.every((h) => new RegExp(`^${h.address.replace(/\./g, "\\.")}\\s`, "m").test(s.clients));
        while (!done() && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 2000));
            s = state();
        }
        for (const [name, out] of s.sources)
            expect(out, `${name} selects the master (chronyc -n sources)`).to.contain(`^* ${master.address} `);
        for (const h of nodes)
            expect(s.clients, `the master serves ${h.name} (chronyc -n clients)`).to.match(
                new RegExp(`^${h.address.replace(/\./g, "\\.")}\\s`, "m"),
            );
        expect(
            onAddress(master.address, "systemctl is-active chrony", { allowFail: true }).stdout.trim(),
            "chronyd runs on the master",
        ).to.equal("active");
    });
}
