// Markdown for a pull request from `pulumi preview --json` (read on stdin): per host, each step that changes, with
// the changed lines of each file it renders (fenced `diff` blocks), the services the change restarts or reloads, the
// resources created and deleted, and the drift a `--refresh` found. Secrets are never shown. tools/preview-summary.sh
// runs the preview and this: `previewSummary.ts STACK [HOST]...`, the hosts (its `--host`) keeping only their changes.
import { decodeParams } from "../contract/params.ts";

/** What `pulumi preview --json` prints (the parts read here). */
export interface PreviewJson {
    steps?: PreviewStep[];
    changeSummary?: Record<string, number>;
    diagnostics?: { severity?: string; message?: string; urn?: string }[];
}
interface PreviewStep {
    op: string;
    urn: string;
    oldState?: { type?: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> };
    newState?: { type?: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> };
    diffReasons?: string[];
}

/** What each script's parameters are, and what a change to them restarts (host/*.sh). */
const STEPS: Record<string, { what: string; params: Record<string, string>; services?: Record<string, string> }> = {
    hosts: {
        what: "hostname and /etc/hosts",
        params: { HOSTS_BLOCK: "/etc/hosts (managed block)", HOSTNAME: "hostname", FQDN: "FQDN", TRUSTED_CA: "trusted CA certificate" },
    },
    time: {
        what: "time sync",
        params: { CONFIG: "chrony.conf / ntp.conf", IMPL: "implementation" },
        services: { CONFIG: "time daemon restarts", IMPL: "time daemon switched" },
    },
    firewall: { what: "firewalls off", params: { UNITS: "firewall units" } },
    registry: {
        what: "private registry",
        params: { REGISTRY_CONFIG: "registry config.yml", NGINX_CONF: "nginx site", TLS_CERT: "nginx certificate", STORAGE_DIR: "storage" },
        services: {
            REGISTRY_CONFIG: "registry restarts",
            NGINX_CONF: "nginx reloads",
            TLS_CERT: "nginx reloads",
            SECRETS_DIGEST: "nginx reloads",
        },
    },
    etcd: {
        what: "etcd member",
        params: {
            ETCD_ENV: "etcd config",
            PEER_CLIENT_URLS: "the other members",
            TLS_CA: "etcd CA",
            TLS_CERT: "member certificate",
            TLS_CLIENT_CERT: "client certificate",
        },
        services: {
            ETCD_ENV: "etcd restarts (one member at a time)",
            TLS_CERT: "etcd restarts",
            TLS_CA: "etcd restarts",
            SECRETS_DIGEST: "etcd restarts",
        },
    },
};
/** Parameters that are bookkeeping, not host configuration. */
const BOOKKEEPING = new Set(["OWNER", "SCRIPT_SHA256", "LIB_SHA256", "SECRETS_FILE", "SECRETS_DIGEST"]);

const SECRET = "[secret]";

function nameOf(urn: string): string {
    return urn.slice(urn.lastIndexOf("::") + 2);
}
/** The types in a URN's type chain: the parents' and the resource's own. */
function urnTypes(urn: string): string[] {
    return (urn.split("::")[2] ?? "").split("$");
}
function typeOf(urn: string): string {
    const t = urn.split("::")[2] ?? "";
    return t.slice(t.lastIndexOf("$") + 1);
}

/** A unified line diff (3 lines of context) of a against b; "" when equal. */
export function lineDiff(a: string, b: string, context = 3): string {
    if (a === b) return "";
    const x = a.split("\n"),
        y = b.split("\n");
    if (a.endsWith("\n")) x.pop();
    if (b.endsWith("\n")) y.pop();
    // Longest common subsequence table (files here are small: a few hundred lines).
    const n = x.length,
        m = y.length;
    const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
    for (let i = n - 1; i >= 0; i--)
        for (let j = m - 1; j >= 0; j--) lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    const ops: { t: " " | "-" | "+"; s: string; i: number; j: number }[] = [];
    let i = 0,
        j = 0;
    while (i < n || j < m) {
        if (i < n && j < m && x[i] === y[j]) ops.push({ t: " ", s: x[i], i: i++, j: j++ });
        else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) ops.push({ t: "-", s: x[i], i: i++, j });
        else ops.push({ t: "+", s: y[j], i, j: j++ });
    }
    if (a.endsWith("\n") !== b.endsWith("\n"))
        ops.push({ t: " ", s: `\\ final newline ${b.endsWith("\n") ? "added" : "removed"}`, i: n, j: m });
    // Hunks: changed lines with their context.
    const keep = ops.map(() => false);
    ops.forEach((o, k) => {
        if (o.t !== " " || o.s.startsWith("\\ "))
            for (let c = Math.max(0, k - context); c <= Math.min(ops.length - 1, k + context); c++) keep[c] = true;
    });
    const out: string[] = [];
    for (let k = 0; k < ops.length; k++) {
        if (!keep[k]) continue;
        let end = k;
        while (end + 1 < ops.length && keep[end + 1]) end++;
        const hunk = ops.slice(k, end + 1);
        const oldLines = hunk.filter((o) => o.t !== "+" && !o.s.startsWith("\\ ")).length,
            newLines = hunk.filter((o) => o.t !== "-" && !o.s.startsWith("\\ ")).length;
        out.push(`@@ -${hunk[0].i + 1},${oldLines} +${hunk[0].j + 1},${newLines} @@`);
        for (const o of hunk) out.push(o.s.startsWith("\\ ") ? o.s : `${o.t}${o.s}`);
        k = end;
    }
    return out.join("\n");
}

function params(stdin: unknown): Record<string, string> | undefined {
    if (typeof stdin !== "string") return stdin === undefined ? {} : undefined; // [secret] or unknown
    try {
        return decodeParams(stdin);
    } catch {
        return undefined;
    }
}

/** The Markdown for one step's change of parameters. */
function paramChanges(step: string, olds: Record<string, string>, news: Record<string, string>): { lines: string[]; services: string[] } {
    const meta = STEPS[step] ?? { what: step, params: {} };
    const lines: string[] = [];
    const services = new Set<string>();
    const keys = [...new Set([...Object.keys(olds), ...Object.keys(news)])].sort();
    for (const k of keys) {
        const a = olds[k],
            b = news[k];
        if (a === b) continue;
        if (k === "SECRETS_DIGEST") {
            lines.push("- secret parameters change (not shown)");
            if (meta.services?.[k]) services.add(meta.services[k]);
            continue;
        }
        if (BOOKKEEPING.has(k)) continue;
        if (meta.services?.[k]) services.add(meta.services[k]);
        const label = `\`${k}\`${meta.params[k] ? ` (${meta.params[k]})` : ""}`;
        if (a === undefined) lines.push(`- ${label} added`);
        else if (b === undefined) lines.push(`- ${label} removed`);
        if ((a ?? "").includes("\n") || (b ?? "").includes("\n")) {
            if (a !== undefined && b !== undefined) lines.push(`- ${label}:`);
            lines.push(
                "  ```diff",
                ...lineDiff(a ?? "", b ?? "")
                    .split("\n")
                    .map((l) => `  ${l}`),
                "  ```",
            );
        } else if (a !== undefined && b !== undefined) {
            lines.push(`- ${label}: \`${a}\` → \`${b}\``);
        }
    }
    if (lines.length === 0 && keys.some((k) => olds[k] !== news[k]))
        lines.push("- the program's scripts change (the step re-runs; nothing on the host changes unless its config does)");
    return { lines, services: [...services] };
}

/**
 * Markdown for a PR comment. With `only` hosts, of their changes only: the other hosts' and the stack's own resources
 * (no host's) are left out, the counts are those of the hosts' steps, and a host that changes nothing is said to.
 */
export function summarize(preview: PreviewJson, stack: string, only: string[] = []): string {
    const steps = preview.steps ?? [];
    const filter = only.length ? new Set(only) : undefined;
    const title = `\`pulumi preview\` of stack \`${stack}\`${filter ? ` (filtered to hosts: ${[...filter].join(", ")})` : ""}`;
    // A preview lists only what changes, so the hosts come from the resources' names (components/*.ts): a host's
    // HostBase is named after it, its steps `<host>-<step>-<part>`, its other resources `<host>-<part>`.
    const hostOf = (name: string, type: string, urnOf: string): string => {
        if (type === "host-topology:index:HostBase") return name;
        const component = name.replace(/-(?:run|check|upload|secrets|digest-key|password)$/, "");
        // An etcd member's component is `<host>-<member name>`, the name configurable.
        if (urnTypes(urnOf).includes("host-topology:index:EtcdMember") && component.includes("-"))
            return component.slice(0, component.lastIndexOf("-"));
        const m = /^(.+)-(?:hosts|time|firewall|registry)$/.exec(component) ?? /^(.+)-(?:ready|lib|hostkey)$/.exec(name);
        return m ? m[1] : "(stack)";
    };
    const hosts: string[] = [];
    const byHost = new Map<string, string[]>();
    const add = (host: string, lines: string[]) => byHost.set(host, [...(byHost.get(host) ?? []), ...lines]);
    // Filtered, the preview's changeSummary would count the other hosts' changes: these are the hosts' own steps, a
    // replacement counted once (as the engine counts it: its create-replacement and delete-replaced are not).
    const filteredCounts: Record<string, number> = {};

    for (const s of steps) {
        const name = nameOf(s.urn);
        const type = typeOf(s.urn);
        const host = hostOf(name, type, s.urn);
        if (host !== "(stack)" && !hosts.includes(host)) hosts.push(host);
        if (filter && !filter.has(host)) continue;
        if (filter && s.op !== "create-replacement" && s.op !== "delete-replaced") filteredCounts[s.op] = (filteredCounts[s.op] ?? 0) + 1;
        // Providers change with the stack's config (the project's own gets all of its `host-topology:*` keys), not on a host.
        if (s.op === "same" || s.op === "read" || s.op === "refresh" || type.startsWith("pulumi:providers:")) continue;
        if (type.startsWith("host-topology:index:") && !type.endsWith("HostCheck")) continue; // components: their children say it
        const isCheck = type.endsWith(":HostCheck");
        if (s.op === "create" || s.op === "create-replacement") {
            if (!isCheck) add(host, [`- **create** \`${name}\` (${type})`]);
            continue;
        }
        if (s.op === "delete" || s.op === "delete-replaced" || s.op === "discard") {
            if (!isCheck) add(host, [`- **delete** \`${name}\` (${type})`]);
            continue;
        }
        if (isCheck) {
            const drift = (s.oldState?.outputs?.drift ?? {}) as Record<string, unknown>;
            const items = Object.entries(drift);
            if (items.length === 0) continue;
            const lines = [`- **drift** found by the refresh, repaired by \`pulumi up --refresh\` (\`${name}\`):`];
            for (const [item, why] of items) {
                const text = typeof why === "string" ? why : SECRET;
                const [first, ...rest] = text.split("\n");
                lines.push(`  - \`${item}\`: ${first}`);
                if (rest.length)
                    lines.push("    ```diff", ...rest.filter((l, i) => l !== "" || i < rest.length - 1).map((l) => `    ${l}`), "    ```");
            }
            add(host, lines);
            continue;
        }
        if (type === "command:remote:Command" && name.endsWith("-secrets")) {
            add(host, [`- \`${name}\`: secret parameters change (not shown)`]);
            continue;
        }
        if (type === "command:remote:Command" && name.endsWith("-run")) {
            const step = name.slice(0, -"-run".length).split("-").pop() ?? "";
            const kind = Object.keys(STEPS).find((k) => step === k || step.startsWith(k)) ?? step;
            const olds = params(s.oldState?.inputs?.stdin),
                news = params(s.newState?.inputs?.stdin);
            const title = `- **${s.op}** \`${name}\` (${(STEPS[kind] ?? { what: kind }).what})`;
            if (!olds || !news) {
                add(host, [title, "  - its parameters are not known yet or are secret (shown after `pulumi up`)"]);
                continue;
            }
            const { lines, services } = paramChanges(kind, olds, news);
            const other = (s.diffReasons ?? []).filter((r) => r !== "stdin");
            add(host, [
                title,
                ...lines,
                ...(other.length ? [`- also changes: ${other.map((r) => `\`${r}\``).join(", ")}`] : []),
                ...services.map((v) => `- service: ${v}`),
            ]);
            continue;
        }
        if (s.op === "update" || s.op === "replace") {
            const reasons = (s.diffReasons ?? []).map((r) => `\`${r}\``).join(", ");
            add(host, [`- **${s.op}** \`${name}\` (${type})${reasons ? `: ${reasons}` : ""}`]);
        }
    }

    const errors = (preview.diagnostics ?? [])
        .filter((d) => d.severity === "error")
        .map(
            (d) =>
                `> ${String(d.message ?? "")
                    .trim()
                    .split("\n")
                    .join("\n> ")}`,
        );
    const counts = Object.entries(filter ? filteredCounts : (preview.changeSummary ?? {})).filter(([op, n]) => op !== "same" && n > 0);
    // A host asked for that nothing changes on is no error (the node tried first may not change), but said. The preview
    // lists no unchanged resource (without --show-sames), so a misspelt name looks the same. Not said when the preview
    // failed: its steps are not all there.
    const unchanged = errors.length ? [] : [...(filter ?? [])].filter((h) => !byHost.has(h)).map((h) => `- no changes for ${h}`);
    if (byHost.size === 0 && errors.length === 0) {
        return filter
            ? [`**${title}: no changes.**`, "", ...unchanged, ""].join("\n")
            : `**${title}: no changes.** Nothing changes on any host.\n`;
    }
    const out = [`### ${title}${counts.length ? `: ${counts.map(([op, n]) => `${n} to ${op}`).join(", ")}` : ""}`, ""];
    if (errors.length) out.push("**The preview failed:**", "", ...errors, "");
    if (unchanged.length) out.push(...unchanged, "");
    const rank = (h: string) => (h === "(stack)" ? hosts.length : hosts.indexOf(h));
    for (const h of [...byHost.keys()].sort((a, b) => rank(a) - rank(b))) {
        out.push(`#### ${h}`, "", ...byHost.get(h)!, "");
    }
    return out.join("\n");
}

if (process.argv[1] === import.meta.filename) {
    const [stack = "", ...only] = process.argv.slice(2);
    if (only.some((h) => h === "")) {
        process.stderr.write("preview-summary: an empty host name (usage: previewSummary.ts STACK [HOST]... < preview.json)\n");
        process.exit(2);
    }
    let input = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (d) => (input += d));
    process.stdin.on("end", () => {
        let preview: PreviewJson;
        try {
            preview = JSON.parse(input);
        } catch {
            process.stderr.write(`preview-summary: the preview printed no JSON:\n${input.slice(0, 2000)}\n`);
            process.exit(2);
        }
        process.stdout.write(summarize(preview, stack, only));
        process.exit((preview.diagnostics ?? []).some((d) => d.severity === "error") ? 1 : 0);
    });
}
