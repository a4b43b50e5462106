// The plugin's SSH client (HostCheck, HostKey; one pooled connection per host): ssh2, with the same host key and bastion as the
// remote.Command connections. A host whose key is not the expected one is refused during the key exchange, before
// authentication, with both fingerprints named.
import * as fs from "fs";
import { describeKey } from "../contract/sshKeys.ts";
import { createRequire } from "module";
import type { SshTarget } from "../contract/connection.ts";
import type * as ssh2 from "ssh2";

/** CommonJS modules loaded as the SDK loads them (this file is an ES module). */
const require = createRequire(import.meta.url);

export interface SshSession {
    /** An authenticated ssh2 Client (undefined after a scan). */
    conn: ssh2.Client | undefined;
    /** The key the host presented (`type base64`). */
    hostKey: string;
    close(): void;
}

/** ssh2's host key algorithm names for a key type (an RSA key signs with SHA-2 where the server can). */
export function serverHostKeyAlgorithms(keyType?: string): string[] {
    if (keyType === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
    if (keyType) return [keyType];
    return ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256"];
}

/** The error for a host that presents another key (`type base64`) than the one pinned or recorded. */
export function hostKeyMismatch(where: string, expected: string, got: string): Error {
    return Object.assign(
        new Error(
            `${where}: host key mismatch: the host presented ${describeKey(got)}, but ${describeKey(expected)} is expected. ` +
                `Refusing to connect: nothing was run on it. If the host was reinstalled, pin its new key (hosts[].hostKey or ` +
                `sshKnownHostsPath; that replaces a key recorded by accept-new too); otherwise another machine answers at this address.`,
        ),
        { hostKeyMismatch: true },
    );
}

/** One SSH connection: to the target, or to the proxy; `sock` is the tunnel through the proxy. */
type Hop = Omit<SshTarget, "proxy"> & { sock?: ssh2.ClientChannel };

/**
 * Runs `dial` up to `attempts` times, one second apart, while it fails with a dialError (refused, unreachable, timed
 * out, rejected login); then the error says how many attempts were made. Other errors (a wrong host key) end it at once.
 */
export async function withDialRetries<T>(attempts: number, dial: () => Promise<T>): Promise<T> {
    for (let i = 1; ; i++) {
        try {
            return await dial();
        } catch (caught) {
            const e = caught as Error & { dialError?: boolean };
            if (!e.dialError || i >= Math.max(1, attempts)) {
                if (e.dialError) e.message = `${e.message} (after ${i} attempt${i === 1 ? "" : "s"})`;
                throw e;
            }
            await new Promise((r) => setTimeout(r, 1000));
        }
    }
}

/** Connects one hop; rejects with dialError on a failed connection, hostKeyMismatch on a wrong key. */
function connectHop(
    h: Hop,
    where: string,
    readyTimeoutMs: number,
    authenticate: boolean,
): Promise<{ conn: ssh2.Client | undefined; hostKey: string }> {
    const { Client } = require("ssh2") as typeof ssh2;
    const expected = h.hostKey ? h.hostKey.split(/\s+/) : undefined;
    return new Promise((resolve, reject) => {
        const conn = new Client();
        let seen: string | undefined;
        let mismatch: Error | undefined;
        let settled = false;
        const fail = (e: Error) => {
            if (settled) return;
            settled = true;
            conn.end();
            reject(e);
        };
        conn.on("ready", () => {
            settled = true;
            resolve({ conn, hostKey: seen! });
        });
        conn.on("error", (e: Error) => {
            if (!authenticate && seen && !mismatch && !settled) {
                // A scan refused the handshake after reading the key: that is its result.
                settled = true;
                conn.end();
                return resolve({ conn: undefined, hostKey: seen });
            }
            fail(mismatch ?? Object.assign(new Error(`${where}: ssh: ${e.message}`), { dialError: true }));
        });
        conn.on("close", () =>
            fail(
                mismatch ?? Object.assign(new Error(`${where}: ssh: connection closed before the session was ready`), { dialError: true }),
            ),
        );
        conn.connect({
            host: h.host,
            port: h.port,
            sock: h.sock,
            username: h.user,
            privateKey: h.privateKey || undefined,
            readyTimeout: readyTimeoutMs,
            algorithms: { serverHostKey: serverHostKeyAlgorithms(expected?.[0] ?? h.hostKeyType) as ssh2.ServerHostKeyAlgorithm[] },
            hostVerifier: (key: Buffer) => {
                const b64 = key.toString("base64");
                const type = key.subarray(4, 4 + key.readUInt32BE(0)).toString("latin1");
                seen = `${type} ${b64}`;
                if (expected && expected[1] !== b64) {
                    mismatch = hostKeyMismatch(where, h.hostKey!, seen);
                    return false;
                }
                // A scan (no authentication wanted) ends the handshake here: the key is all it needs.
                return authenticate;
            },
            // A host that vanishes mid-command (no RST) is noticed within about 2 min. 30 s was too short: a lab host
            // whose gateway MAC had changed under it stayed silent that long.
            keepaliveInterval: 15000,
            keepaliveCountMax: 8,
        });
        // Each packet leaves at once (TCP_NODELAY): ssh2 writes a command's channel open, request, data and EOF as
        // small packets, and with Nagle's algorithm each one after the first waited for the host's delayed ACK,
        // 40 ms per command on a LAN (48 ms against 2.6 ms for `true` on a lab host). Applied when the socket
        // connects; through a bastion the tunnel has no socket of its own, and the bastion's connection gets it.
        conn.setNoDelay(true);
    });
}

/** The target's private key: privateKey, else the content of privateKeyPath (an unreadable file fails, naming it). */
export function privateKeyOf(t: Pick<SshTarget, "host" | "port" | "privateKey" | "privateKeyPath">): string {
    if (t.privateKey || !t.privateKeyPath) return t.privateKey;
    try {
        return fs.readFileSync(t.privateKeyPath, "utf8");
    } catch (e) {
        throw new Error(
            `${t.host}:${t.port}: cannot read the SSH private key ${t.privateKeyPath} (relative to ${process.cwd()}): ${(e as Error).message}`,
        );
    }
}

/**
 * Opens an authenticated session to `t` (through its proxy if set), verifying every host key on the way.
 * With `scanOnly`, stops after the target's key exchange and returns the key it presented (no login on the target;
 * the proxy, if any, is logged into to open the tunnel).
 */
export async function sshConnect(t: SshTarget, opts: { readyTimeoutMs?: number; scanOnly?: boolean } = {}): Promise<SshSession> {
    const readyTimeoutMs = opts.readyTimeoutMs ?? 20000;
    const where = `${t.host}:${t.port}`;
    // Read only where a hop logs in (a scan without a proxy needs no key).
    const privateKey = !opts.scanOnly || t.proxy ? privateKeyOf(t) : t.privateKey;
    let proxyConn: ssh2.Client | undefined;
    let sock: ssh2.ClientChannel | undefined;
    if (t.proxy) {
        const pw = `${t.proxy.host}:${t.proxy.port} (proxy)`;
        const proxy = (await connectHop({ ...t.proxy, privateKey }, pw, readyTimeoutMs, true)).conn!;
        proxyConn = proxy;
        sock = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
            proxy.forwardOut("127.0.0.1", 0, t.host, t.port, (e: Error | undefined, stream: ssh2.ClientChannel) => {
                if (e) {
                    proxy.end();
                    reject(Object.assign(new Error(`${where}: ssh through the proxy ${pw}: ${e.message}`), { dialError: true }));
                } else resolve(stream);
            }),
        );
    }
    try {
        const hop = await connectHop({ ...t, privateKey, sock }, where, readyTimeoutMs, !opts.scanOnly);
        return {
            conn: hop.conn,
            hostKey: hop.hostKey,
            close: () => {
                hop.conn?.end();
                proxyConn?.end();
            },
        };
    } catch (e) {
        proxyConn?.end();
        throw e;
    }
}
