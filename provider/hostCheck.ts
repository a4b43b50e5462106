// Drift detection. remote.Command has no Read, so `pulumi refresh` never looks at the hosts. A HostCheck
// (one per host step) is a custom resource of this plugin whose `read` connects over SSH and runs the step's script
// with `check`: the script compares every file it manages and every service it enables/disables with the
// desired state (the same parameters as `apply`, on stdin) and prints one `drift <item> <reason>` line per
// difference. The desired state is "no drift", so after a refresh that found drift, `diff` reports the drifted
// items and `update` (i.e. `pulumi up --refresh`) repairs them by running the script's idempotent `apply`,
// which rewrites only what differs. Plain `pulumi preview` never connects: diff compares the state only.
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import type { CheckConnection } from "../contract/connection.ts";
import type { CheckProps } from "../contract/resources.ts";
import { DEFAULT_PER_DIAL_TIMEOUT, NO_DRIFT, putFileCommand } from "../contract/checkFormat.ts";
import { libraryDigest, libraryFiles } from "../contract/library.ts";
import { type ResourceOps } from "./ops.ts";
import type * as ssh2 from "ssh2";
import { type SshSession, sshConnect, withDialRetries } from "./sshClient.ts";

/** The check's findings as text: the header line of NO_DRIFT, then each item and its reason, details indented. */
export function reportOf(drift: Record<string, string>): string {
    const items = Object.keys(drift).sort();
    if (items.length === 0) return NO_DRIFT;
    const lines = items.map((item) => {
        const [first, ...rest] = drift[item].replace(/\n$/, "").split("\n");
        return [`${item}: ${first}`, ...rest.map((l) => `    ${l}`)].join("\n");
    });
    return `${NO_DRIFT.split("\n")[0]}\n${lines.join("\n")}\n`;
}

/**
 * Parses the `check` output: `drift <item> <reason>` lines, each followed by its detail as `| ` lines (a file's
 * unified diff), which become further lines of the reason: the engine shows a multi-line reason line by line.
 * Other lines are ignored.
 */
export function parseCheckOutput(out: string): Record<string, string> {
    const drift: Record<string, string> = {};
    let last: string | undefined;
    for (const line of out.split("\n")) {
        if (line.startsWith("| ") || line === "|") {
            if (last !== undefined) drift[last] += `\n${line.slice(2)}`;
            continue;
        }
        const m = /^drift (\S+)\s*(.*)$/.exec(line.trim());
        last = m ? m[1] : undefined;
        if (m) drift[m[1]] = m[2] || "differs";
    }
    return drift;
}

/**
 * Runs a command over SSH with stdin; resolves stdout, rejects with the exit status and output tail.
 * A failed connection (refused, unreachable, timed out, rejected key) is retried up to dialErrorLimit
 * attempts, one second apart; then the error names the host and the number of attempts.
 */
export function sshRun(c: CheckConnection, cmd: string, stdin: string, timeoutMs = 15 * 60 * 1000): Promise<string> {
    return withDialRetries(c.dialErrorLimit ?? 10, () => sshRunOnce(c, cmd, stdin, timeoutMs));
}

interface PooledSession {
    session: SshSession;
    /** Commands running on it (sshd allows 10 sessions per connection by default: MaxSessions). */
    busy: number;
    /** Rejects every command running on it: the connection is gone. */
    lost: Set<(e: Error) => void>;
    /** Outside the pool: closed after its one command. */
    oneShot?: boolean;
}

/**
 * One authenticated connection per host (and user, key, host key, proxy), shared by every check, repair and script
 * put of that host in this provider process: a refresh logs in once per host instead of once per step. A connection
 * that fails leaves the pool, and the next command dials again.
 */
const pool = new Map<string, Promise<PooledSession>>();

/**
 * A session for one command, reserved (busy counted) before this returns: commands started at the same moment
 * (every script put of a host, its checks) take at most 8 of the shared connection's sessions, below sshd's
 * MaxSessions (10), and the others get a connection of their own.
 */
async function pooledSession(c: CheckConnection): Promise<PooledSession> {
    const key = crypto
        .createHash("sha256")
        .update(JSON.stringify([c.host, c.port, c.user, c.hostKey ?? "", c.proxy ?? null, c.privateKey, c.privateKeyPath ?? ""]))
        .digest("hex");
    const reserve = (p: PooledSession) => (p.busy++, p);
    const existing = pool.get(key);
    if (existing) {
        const p = await existing.catch(() => undefined);
        // No await between the check and the reservation: concurrent callers cannot all see the same free count.
        if (p && p.busy < 8) return reserve(p);
        if (p) return reserve(await open(false)); // busy: a connection of its own, closed after the command
    }
    const p = await open(true);
    return p.busy < 8 ? reserve(p) : reserve(await open(false));

    async function open(shared: boolean): Promise<PooledSession> {
        const made = sshConnect(c, { readyTimeoutMs: (c.perDialTimeout ?? DEFAULT_PER_DIAL_TIMEOUT) * 1000 }).then((session) => {
            const p: PooledSession = { session, busy: 0, lost: new Set() };
            const gone = (why: string) => {
                if (shared && pool.get(key) === made) pool.delete(key);
                for (const reject of p.lost) reject(new Error(why));
            };
            session.conn!.on("error", (e: Error) => gone(`connection lost: ${e.message}`));
            session.conn!.on("close", () => gone("connection closed"));
            if (!shared) p.oneShot = true;
            return p;
        });
        if (shared) {
            pool.set(key, made);
            made.catch(() => pool.get(key) === made && pool.delete(key));
        }
        return made;
    }
}

/** Ends the pooled connections (the provider process is ended by the engine; tests end them themselves). */
export async function closeSshPool(): Promise<void> {
    for (const p of pool.values()) (await p.catch(() => undefined))?.session.close();
    pool.clear();
}

async function sshRunOnce(c: CheckConnection, cmd: string, stdin: string, timeoutMs: number): Promise<string> {
    const where = `${c.host}:${c.port}`;
    // A refused or rejected dial is retried by sshRun; a wrong host key is not (it fails at once, both fingerprints named).
    const pooled = await pooledSession(c);
    return new Promise((resolve, reject) => {
        const conn = pooled.session.conn!;
        let out = "";
        let err = "";
        let settled = false;
        let timer: ReturnType<typeof setTimeout> | undefined = undefined;
        const tail = () => (out + err).split("\n").slice(-30).join("\n");
        // Every way this can end names the host: a connection lost while the command ran (a host stopped mid-run),
        // a timeout, or the command's own exit status.
        function onLost(e: Error): void {
            settle(new Error(`${where}: ssh: ${e.message} while running "${cmd}"\n${tail()}`));
        }
        function settle(e: Error | undefined, value?: string): void {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            pooled.busy--;
            pooled.lost.delete(onLost);
            if (pooled.oneShot) pooled.session.close();
            if (e) reject(e);
            else resolve(value!);
        }
        pooled.lost.add(onLost);
        timer = setTimeout(() => {
            // The command may still run on the host: this connection is not used again.
            pooled.session.close();
            settle(new Error(`${where}: timed out after ${timeoutMs / 1000}s running "${cmd}"`));
        }, timeoutMs);
        conn.exec(cmd, (e: Error | undefined, stream: ssh2.ClientChannel) => {
            if (e) return settle(new Error(`${where}: ssh: cannot run "${cmd}": ${e.message}`));
            stream.on("data", (d: Buffer) => (out += d.toString()));
            stream.stderr.on("data", (d: Buffer) => (err += d.toString()));
            stream.on("close", (code: number | undefined, signal: string | undefined) => {
                if (code === 0) return settle(undefined, out);
                const why =
                    code === undefined || code === null
                        ? `ended without an exit status${signal ? ` (signal ${signal})` : ""}: the connection was lost`
                        : `exited ${code}`;
                settle(new Error(`${where}: "${cmd}" ${why}:\n${tail()}`));
            });
            stream.end(stdin);
        });
    });
}

/** Runs the step's `check`; missing or foreign scripts (a reinstalled host) are drift too, not an error. */
async function check(p: CheckProps): Promise<Record<string, string>> {
    const paths = hostPaths(p);
    const present = paths.map((f) => `[ -f '${f}' ]`).join(" && ") || "true";
    const out = await sshRun(
        p.connection,
        `if ${present}; then ${p.script} check; rc=$?; [ $rc -eq 3 ] && echo "drift scripts differ from the program's"; [ $rc -eq 3 ] || exit $rc; ` +
            `else echo "drift scripts missing"; fi`,
        p.stdin + (p.secretStdin ?? ""),
    );
    return parseCheckOutput(out);
}

/** The plugin's own copy of the host scripts: a plugin installed from its package carries those of its version. */
export const PLUGIN_SCRIPTS_DIR = path.join(import.meta.dirname, "..", "host");

/**
 * A script of the program's copy (`sourceDir`, relative to the project directory, the plugin's working directory),
 * or, when that copy is gone (an installed plugin's directory of another version), of the plugin's own; either is
 * checked against the hash the program applies: another version never puts its copy on a host.
 */
export function verifiedScript(sourceDir: string, name: string, sha: string): string {
    const local = localCopy(sourceDir, name);
    const content = fs.readFileSync(local);
    const got = crypto.createHash("sha256").update(content).digest("hex");
    if (got !== sha)
        throw new Error(
            `${local} (sha256 ${got}) is not the version this program applies (${sha}): run pulumi from the project that deployed the stack`,
        );
    return content.toString("utf8");
}

/** Where to read a script or directory of host/ from: the program's copy, or when that is gone the plugin's own. */
function localCopy(sourceDir: string, name: string): string {
    const given = path.join(sourceDir, name);
    return fs.existsSync(given) ? given : path.join(PLUGIN_SCRIPTS_DIR, name);
}

/**
 * The library (`lib`) of the program's copy (or the plugin's, as verifiedScript), checked against its one digest:
 * name -> content.
 */
function verifiedLibrary(sourceDir: string, name: string, digest: string): Array<[string, string]> {
    const local = localCopy(sourceDir, name);
    const names = libraryFiles(local);
    const contents = names.map((n) => fs.readFileSync(path.join(local, n)));
    const got = libraryDigest(contents);
    if (got !== digest)
        throw new Error(
            `${local}/ (library sha256 ${got}) is not the version this program applies (${digest}): run pulumi from the project that deployed the stack`,
        );
    return names.map((n, i) => [n, contents[i].toString("utf8")]);
}

/** A key of a check's `files` that ends in "/" is the library, recorded by its one digest (the steps' LIB_SHA256). */
const isLibrary = (remote: string) => remote.endsWith("/");

/**
 * Every file a check's `files` names on the host: the library's are those of the local copy (a state written before
 * the library was recorded by its digest names each file, with its hash).
 */
function hostPaths(p: CheckProps): string[] {
    const dir = scriptDirOf(p.script);
    return Object.keys(p.files ?? {}).flatMap((f) =>
        isLibrary(f) ? libraryFiles(localCopy(p.sourceDir, path.posix.relative(dir, f))).map((n) => f + n) : [f],
    );
}

/** The directory of the script a check runs, from its command (`[sudo -n ]bash <dir>/<script>.sh`). */
export function scriptDirOf(script: string): string {
    return path.posix.dirname(script.split(" ").pop() ?? "");
}

/** Puts the step's scripts back (atomically) and runs its idempotent apply. */
async function repair(p: CheckProps): Promise<void> {
    const dir = scriptDirOf(p.script);
    // Every copy is checked before anything is put. A path under the script dir: `etcd-member.sh`, `lib`.
    const puts = Object.entries(p.files ?? {}).flatMap(([f, sha]): Array<[string, string]> => {
        const name = path.posix.relative(dir, f);
        return isLibrary(f)
            ? verifiedLibrary(p.sourceDir, name, sha).map(([n, c]) => [f + n, c])
            : [[f, verifiedScript(p.sourceDir, name, sha)]];
    });
    for (const [f, content] of puts) {
        const put = putFileCommand(f);
        await sshRun(p.connection, p.sudo ? `sudo -n sh -c '${put}'` : put, content);
    }
    await sshRun(p.connection, `${p.script} apply`, p.stdin + (p.secretStdin ?? ""));
}

export const hostCheckOps: ResourceOps = {
    async create(inputs: CheckProps) {
        const drift = await check(inputs);
        if (Object.keys(drift).length > 0) {
            throw new Error(`${inputs.connection.host}: still differs after apply: ${JSON.stringify(drift)}`);
        }
        return { id: `${inputs.connection.host}:${inputs.script}`, outs: { ...inputs, drift, report: reportOf(drift) } };
    },
    async read(id: string, props: CheckProps) {
        const drift = await check(props);
        return { id, props: { ...props, drift, report: reportOf(drift) } };
    },
    async diff(_id: string, olds: CheckProps, news: CheckProps) {
        const drifted = Object.keys(olds.drift ?? {}).length > 0;
        // A rotated SSH key, a re-pinned host key, another bastion: the state's connection is what the next refresh
        // (and the repair after it) uses, so it follows the config (an update without drift runs only a check).
        const channel = (p: CheckProps) => JSON.stringify(p.connection ?? null);
        const changed =
            olds.stdin !== news.stdin ||
            (olds.secretStdin ?? "") !== (news.secretStdin ?? "") ||
            olds.script !== news.script ||
            JSON.stringify(olds.files) !== JSON.stringify(news.files) ||
            channel(olds) !== channel(news);
        // The engine shows the property differences itself: the drifted items as removed keys of `drift`.
        return { changes: drifted || changed, replaces: [], deleteBeforeReplace: false };
    },
    async update(_id: string, olds: CheckProps, news: CheckProps) {
        // The step's remote.Command re-applies on parameter changes; repair here only what a refresh found.
        if (Object.keys(olds.drift ?? {}).length > 0) await repair(news);
        const drift = await check(news);
        if (Object.keys(drift).length > 0) {
            throw new Error(`${news.connection.host}: still differs after repair: ${JSON.stringify(drift)}`);
        }
        return { outs: { ...news, drift, report: reportOf(drift) } };
    },
};
