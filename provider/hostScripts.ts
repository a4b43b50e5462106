// The scripts of one host (components/resources/hostScripts.ts): every script the host's steps run, put over the plugin's
// pooled SSH connection (the one its HostChecks use), and only those whose hash on the host differs from the
// program's copy. The first command on the host also checks sudo and reads the OS; the dial before it is retried
// (connection.dialErrorLimit), so a host whose sshd is not up yet is waited for. The host's steps check the hashes
// again before they run (SCRIPT_SHA256, LIB_SHA256), and its HostChecks find a script that changed or went missing
// later and put it back (provider/hostCheck.ts).
import type { ScriptsProps } from "../contract/resources.ts";
import { SUDO_CHECK, putFileCommand } from "../contract/checkFormat.ts";
import { encodeParams } from "../contract/params.ts";
import { libraryDigest } from "../contract/library.ts";
import { type ResourceOps } from "./ops.ts";
import { sshRun, verifiedScript } from "./hostCheck.ts";

/** `sha256sum` lines -> path -> hash. */
export function parseSha256sum(out: string): Record<string, string> {
    const got: Record<string, string> = {};
    for (const line of out.split("\n")) {
        const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
        if (m) got[m[2]] = m[1];
    }
    return got;
}

/** `ID VERSION_ID` of an os-release file (read as data, never sourced), e.g. `debian 12`. */
export function osOf(osRelease: string): string {
    const field = (k: string) =>
        new RegExp(`^${k}=(.*)$`, "m")
            .exec(osRelease)?.[1]
            .trim()
            .replace(/^(["'])(.*)\1$/, "$2") ?? "";
    return `${field("ID")} ${field("VERSION_ID")}`.trim();
}

const OS_MARK = "--- host-topology sha256sum";

/** Puts the scripts that are missing on the host or differ there; returns the host's OS. */
export async function putScripts(p: ScriptsProps): Promise<string> {
    const remote = (name: string) => `${p.dir}/${name}`;
    const names = Object.keys(p.files).sort();
    const probe = `${p.sudo ? `${SUDO_CHECK} && ` : ""}cat /etc/os-release && echo '${OS_MARK}' && { sha256sum ${names.map(remote).join(" ")} 2>/dev/null; true; }`;
    const [osRelease, sums] = (await sshRun(p.connection, probe, "")).split(`${OS_MARK}\n`);
    const onHost = parseSha256sum(sums ?? "");
    // install-packages.sh is on the host only while it runs (below): the base step's remove purges the scripts it knows.
    const stale = names.filter((n) => (n === PACKAGES_SCRIPT ? !!p.packages?.length : onHost[remote(n)] !== p.files[n]));
    // Every copy is checked before anything is put: a wrong checkout changes nothing on the host.
    const contents = stale.map((name) => verifiedScript(p.sourceDir, name, p.files[name]));
    // A few at a time: the host's checks share this connection, whose sessions sshd limits (MaxSessions 10).
    await inBatches(stale.length, PUTS_AT_ONCE, (i) => sshRun(p.connection, putFileCommand(remote(stale[i])), contents[i]));
    await installPackages(p);
    return osOf(osRelease);
}

const PACKAGES_SCRIPT = "install-packages.sh";
const PUTS_AT_ONCE = 4;

/** Runs task(0..n-1), at most `width` at once. */
async function inBatches(n: number, width: number, task: (i: number) => Promise<unknown>): Promise<void> {
    let next = 0;
    const worker = async () => {
        while (next < n) await task(next++);
    };
    await Promise.all(Array.from({ length: Math.min(width, n) }, worker));
}

/** The library's one digest (lib/step.sh's lib_sha256): its files one after another, each checked against its hash. */
function libDigest(sourceDir: string, lib: string[], files: Record<string, string>): string {
    return libraryDigest(lib.map((f) => verifiedScript(sourceDir, f, files[f])));
}

/**
 * The host's packages in one transaction (install-packages.sh, then removed), before any step runs: the steps' own installs
 * are then no-ops.
 */
async function installPackages(p: ScriptsProps): Promise<void> {
    if (!p.packages?.length) return;
    const lib = Object.keys(p.files)
        .filter((f) => f.startsWith("lib/"))
        .sort();
    if (!p.files[PACKAGES_SCRIPT] || lib.length === 0)
        throw new Error(`${p.connection.host}: packages need ${PACKAGES_SCRIPT} and lib/ among the scripts`);
    const stdin = encodeParams({
        PACKAGES: p.packages.join(" "),
        ...(p.packageListsMaxAge !== undefined ? { PKG_LISTS_MAX_AGE: String(p.packageListsMaxAge) } : {}),
        SCRIPT_SHA256: p.files[PACKAGES_SCRIPT],
        LIB_SHA256: libDigest(p.sourceDir, lib, p.files),
    });
    const script = `${p.dir}/${PACKAGES_SCRIPT}`;
    await sshRun(p.connection, `${p.sudo ? "sudo -n " : ""}bash ${script} apply; rc=$?; rm -f ${script}; exit $rc`, stdin);
}

/** Which host this is, without the private key: another address, user or host key (a reinstalled host) puts again. */
export function targetOf(c: ScriptsProps["connection"]): string {
    const proxy = c.proxy ? ` via ${c.proxy.user}@${c.proxy.host}:${c.proxy.port}${c.proxy.hostKey ? ` ${c.proxy.hostKey}` : ""}` : "";
    return `${c.user}@${c.host}:${c.port}${c.hostKey ? ` ${c.hostKey}` : ""}${proxy}`;
}

const outsOf = (p: ScriptsProps, os: string) => ({
    dir: p.dir,
    files: p.files,
    sourceDir: p.sourceDir,
    target: targetOf(p.connection),
    os,
    ...(p.sudo ? { sudo: true } : {}),
    ...(p.packages?.length ? { packages: p.packages } : {}),
    ...(p.packageListsMaxAge !== undefined ? { packageListsMaxAge: p.packageListsMaxAge } : {}),
});
const same = (a: Record<string, string> | undefined, b: Record<string, string> | undefined) =>
    JSON.stringify(Object.entries(a ?? {}).sort()) === JSON.stringify(Object.entries(b ?? {}).sort());

export const hostScriptsOps: ResourceOps = {
    async create(inputs: ScriptsProps) {
        return { id: `${inputs.connection.host}:${inputs.dir}`, outs: outsOf(inputs, await putScripts(inputs)) };
    },
    // No read: the host's HostChecks look at the scripts on every refresh, and repair them.
    async diff(_id: string, olds: ScriptsProps, news: ScriptsProps) {
        // A host with another key was reinstalled (its steps will run again, and need the scripts): an update, which
        // puts what is missing. A rotated SSH key alone changes nothing on the host. A state without the OS is from
        // before HostScripts read it (the readiness gate did): the update reads it.
        const old = olds as ScriptsProps & { target?: string; os?: string };
        const moved = old.target !== targetOf(news.connection);
        // Other packages (a role added) are installed by an update; a package no longer needed stays (never removed).
        const pkgs = (q: ScriptsProps) => JSON.stringify([q.packages ?? [], q.packageListsMaxAge ?? null]);
        const changes =
            olds.dir !== news.dir ||
            !same(olds.files, news.files) ||
            moved ||
            !!olds.sudo !== !!news.sudo ||
            old.os === undefined ||
            pkgs(olds) !== pkgs(news);
        return { changes, replaces: [] };
    },
    async update(_id: string, _olds: ScriptsProps, news: ScriptsProps) {
        return { outs: outsOf(news, await putScripts(news)) };
    },
    // No delete: the host's base step removes the scripts when the host leaves the topology (host-base.sh remove,
    // PURGE_SCRIPTS), after every step that runs them; a renamed host's new HostScripts shares the same files.
};
