// SSH host keys: the `ssh-ed25519 AAAA...` lines of known_hosts and authorized_keys, their SHA256 fingerprints (as
// `ssh-keygen -lf` prints them), and lookups in an OpenSSH known_hosts file (plain, hashed, [host]:port, wildcards).
// Pure functions: config.ts validates with them at preview, hostKey.ts compares what a host presents.
import * as crypto from "crypto";

/** Key types a host key may have, most preferred first (the order used when a host has several known keys). */
export const HOST_KEY_TYPES = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"] as const;

export interface PublicKey {
    /** e.g. ssh-ed25519 */
    readonly type: string;
    /** The key blob (base64), as in known_hosts. */
    readonly base64: string;
}

/** A key line for messages: `SHA256:... (ssh-ed25519)`, or the text itself when it is not a key. */
export function describeKey(line: string): string {
    const k = parsePublicKey(line);
    return typeof k === "string" ? line : `${fingerprint(k)} (${k.type})`;
}

/** `type base64` without a comment: the form passed to the SSH clients and stored in the state. */
export function keyLine(k: PublicKey): string {
    return `${k.type} ${k.base64}`;
}

/** SHA256 fingerprint of a key blob, as OpenSSH prints it: `SHA256:` + unpadded base64. */
export function fingerprint(k: PublicKey | Buffer): string {
    const blob = Buffer.isBuffer(k) ? k : Buffer.from(k.base64, "base64");
    return "SHA256:" + crypto.createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/** The type name at the start of a key blob (an SSH string: uint32 length, bytes). */
function blobType(blob: Buffer): string | undefined {
    if (blob.length < 4) return undefined;
    const n = blob.readUInt32BE(0);
    if (n === 0 || n > 64 || 4 + n > blob.length) return undefined;
    return blob.subarray(4, 4 + n).toString("latin1");
}

/**
 * Parses `type base64 [comment]` (a known_hosts key or an authorized_keys line without options). Returns the key,
 * or a reason it is not one: an unknown type, bad base64, or a blob whose inner type differs from the given one.
 */
export function parsePublicKey(line: string): PublicKey | string {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 2 || parts[0] === "") return 'must be "<type> <base64>", e.g. "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA..."';
    const [type, b64] = parts;
    if (!(HOST_KEY_TYPES as readonly string[]).includes(type))
        return `unknown key type ${JSON.stringify(type)} (known: ${HOST_KEY_TYPES.join(", ")})`;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) return `the key after ${type} is not base64`;
    const blob = Buffer.from(b64, "base64");
    const inner = blobType(blob);
    if (inner !== type) return `the key data is ${inner ? `a ${inner} key` : "not an SSH public key"}, not ${type}`;
    if (type === "ssh-ed25519" && blob.length !== 4 + 11 + 4 + 32) return "the ssh-ed25519 key data has the wrong length";
    return { type, base64: b64 };
}

/** The host part of a known_hosts entry for a host and port: `host` on 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
    return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
    if (!/[*?]/.test(pattern)) return pattern.toLowerCase() === name.toLowerCase();
    const re =
        "^" +
        pattern
            .replace(/[.+^${}()|\\]/g, "\\$&")
            .replace(/\*/g, ".*")
            .replace(/\?/g, ".")
            .replace(/\[/g, "\\[")
            .replace(/\]/g, "\\]") +
        "$";
    return new RegExp(re, "i").test(name);
}

function hostFieldMatches(field: string, name: string): boolean {
    if (field.startsWith("|1|")) {
        // Hashed (HashKnownHosts yes): |1|base64(salt)|base64(HMAC-SHA1(salt, name))
        const [, , salt, hash] = field.split("|");
        if (!salt || !hash) return false;
        return crypto.createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash;
    }
    let matched = false;
    for (const p of field.split(",")) {
        if (p.startsWith("!")) {
            if (globMatch(p.slice(1), name)) return false;
        } else if (globMatch(p, name)) {
            matched = true;
        }
    }
    return matched;
}

export interface KnownHostsLookup {
    /** Keys listed for the host (none marked @revoked), most preferred type first. */
    readonly keys: PublicKey[];
}

/** A known_hosts line that names keys: its marker (`@revoked`, or none), its host field and its key. */
interface KnownHostsEntry {
    readonly marker: string;
    readonly hosts: string;
    readonly key: PublicKey;
}

/** The last file parsed: the program looks up every host in the same file, each line is parsed once. */
let parsedKnownHosts: { text: string; entries: readonly KnownHostsEntry[] } | undefined;

/** The lines of a known_hosts file that name keys; comments, `@cert-authority` and malformed lines left out, as ssh does. */
function knownHostsEntries(text: string): readonly KnownHostsEntry[] {
    if (parsedKnownHosts?.text === text) return parsedKnownHosts.entries;
    const entries: KnownHostsEntry[] = [];
    for (const raw of text.split("\n")) {
        const line = raw.trim();
        if (line === "" || line.startsWith("#")) continue;
        let fields = line.split(/\s+/);
        let marker = "";
        if (fields[0].startsWith("@")) {
            marker = fields[0];
            fields = fields.slice(1);
        }
        if (fields.length < 3 || (marker !== "" && marker !== "@revoked")) continue;
        const key = parsePublicKey(`${fields[1]} ${fields[2]}`);
        if (typeof key !== "string") entries.push({ marker, hosts: fields[0], key });
    }
    parsedKnownHosts = { text, entries };
    return entries;
}

/**
 * The keys a known_hosts file lists for a host known by any of `names` (address, FQDN, short name) on `port`.
 * `@cert-authority` lines are skipped (host certificates are not supported); malformed lines are ignored as ssh does.
 */
export function lookupKnownHosts(text: string, names: readonly string[], port: number): KnownHostsLookup {
    const keys: PublicKey[] = [];
    const revoked: PublicKey[] = [];
    const wanted = names.map((n) => knownHostsName(n, port));
    for (const { marker, hosts, key } of knownHostsEntries(text)) {
        if (marker === "@revoked") revoked.push(key);
        else if (wanted.some((n) => hostFieldMatches(hosts, n)) && !keys.some((k) => k.base64 === key.base64)) keys.push(key);
    }
    const rank = (k: PublicKey) => (HOST_KEY_TYPES as readonly string[]).indexOf(k.type);
    keys.sort((a, b) => rank(a) - rank(b));
    return { keys: keys.filter((k) => !revoked.some((r) => r.base64 === k.base64)) };
}
