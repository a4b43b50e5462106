// The scripts of one host (components/hostScripts.ts): every script the host's steps run, put over the plugin's
// pooled SSH connection (the one its HostChecks use), and only those whose hash on the host differs from the
// program's copy. The host's steps check the hashes again before they run (SCRIPT_SHA256, LIB_SHA256), and its
// HostChecks find a script that changed or went missing later and put it back (provider/hostCheck.ts).
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import type { ScriptsProps } from "../components/hostScripts";
import { putFileCommand } from "../components/checkFormat";
import { ResourceOps } from "./ops";
import { sshRun } from "./hostCheck";

/** `sha256sum` lines -> path -> hash. */
export function parseSha256sum(out: string): Record<string, string> {
    const got: Record<string, string> = {};
    for (const line of out.split("\n")) {
        const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
        if (m) got[m[2]] = m[1];
    }
    return got;
}

/** Puts the scripts that are missing on the host or differ there; returns their names. */
export async function putScripts(p: ScriptsProps): Promise<string[]> {
    const remote = (name: string) => `${p.dir}/${name}`;
    const names = Object.keys(p.files).sort();
    const onHost = parseSha256sum(await sshRun(p.connection, `sha256sum ${names.map(remote).join(" ")} 2>/dev/null; true`, ""));
    const stale = names.filter((n) => onHost[remote(n)] !== p.files[n]);
    // Every copy is checked before anything is put: a wrong checkout changes nothing on the host.
    const contents = stale.map((name) => {
        const local = path.join(p.sourceDir, name);
        const content = fs.readFileSync(local);
        const got = crypto.createHash("sha256").update(content).digest("hex");
        if (got !== p.files[name]) throw new Error(`${local} (sha256 ${got}) is not the version this program applies (${p.files[name]}): run pulumi from the project that deployed the stack`);
        return content.toString("utf8");
    });
    await Promise.all(stale.map((name, i) => sshRun(p.connection, putFileCommand(remote(name)), contents[i])));
    return stale;
}

/** Which host this is, without the private key: another address, user or host key (a reinstalled host) puts again. */
export function targetOf(c: ScriptsProps["connection"]): string {
    const proxy = c.proxy ? ` via ${c.proxy.user}@${c.proxy.host}:${c.proxy.port}${c.proxy.hostKey ? ` ${c.proxy.hostKey}` : ""}` : "";
    return `${c.user}@${c.host}:${c.port}${c.hostKey ? ` ${c.hostKey}` : ""}${proxy}`;
}

const outsOf = (p: ScriptsProps) => ({ dir: p.dir, files: p.files, sourceDir: p.sourceDir, target: targetOf(p.connection) });
const same = (a: Record<string, string> | undefined, b: Record<string, string> | undefined) =>
    JSON.stringify(Object.entries(a ?? {}).sort()) === JSON.stringify(Object.entries(b ?? {}).sort());

export const hostScriptsOps: ResourceOps = {
    async create(inputs: ScriptsProps) {
        await putScripts(inputs);
        return { id: `${inputs.connection.host}:${inputs.dir}`, outs: outsOf(inputs) };
    },
    // No read: the host's HostChecks look at the scripts on every refresh, and repair them.
    async diff(_id: string, olds: ScriptsProps, news: ScriptsProps) {
        // A host with another key was reinstalled (its steps will run again, and need the scripts): an update, which
        // puts what is missing. A rotated SSH key alone changes nothing on the host.
        const moved = (olds as { target?: string }).target !== targetOf(news.connection);
        return { changes: olds.dir !== news.dir || !same(olds.files, news.files) || moved, replaces: [] };
    },
    async update(_id: string, _olds: ScriptsProps, news: ScriptsProps) {
        await putScripts(news);
        return { outs: outsOf(news) };
    },
    // No delete: the host's base step removes the scripts when the host leaves the topology (hostbase.sh remove,
    // PURGE_SCRIPTS), after every step that runs them; a renamed host's new HostScripts shares the same files.
};
