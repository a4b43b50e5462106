// The ssh section: who connects on which port, how host keys are checked, the optional bastion (sshProxy),
// the private key and how long and how often a connection is retried.
import { type KnownHosts, hostKeyValue } from "./hosts.ts";
import { type Problems, USER, int, isDnsName, isIPv4, parseJson, str } from "./problems.ts";
import type { ProxySpec, RawConfig } from "./types.ts";

/** The settings parseConfig needs before it pins host keys; policy is checked but left a string, as the user wrote it. */
export interface SshAccess {
    readonly user: string;
    readonly port: number;
    readonly policy: string;
    readonly proxy: ProxySpec | undefined;
}

export function parseSshAccess(raw: RawConfig, p: Problems): SshAccess {
    const user = str(raw, "sshUser", "root");
    if (!USER.test(user)) p.add("sshUser", `must be a user name (root, or a user with passwordless sudo), got ${JSON.stringify(user)}`);
    const port = int(raw, "sshPort", 22, 1, 65535, p);
    const policy = str(raw, "sshHostKeyPolicy", "strict");
    if (policy !== "strict" && policy !== "accept-new")
        p.add("sshHostKeyPolicy", `must be strict or accept-new, got ${JSON.stringify(policy)}`);
    const proxy = parseProxy(raw, user, port, p);
    return { user, port, policy, proxy };
}

function parseProxy(raw: RawConfig, defaultUser: string, defaultPort: number, p: Problems): ProxySpec | undefined {
    const v = parseJson(raw.sshProxy, "sshProxy", p);
    if (v === undefined) return undefined;
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
        p.add("sshProxy", "must be an object {host, port?, user?, hostKey?}");
        return undefined;
    }
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
        if (!["host", "port", "user", "hostKey"].includes(k))
            p.add(`sshProxy.${k}`, "is not a known proxy property (host, port, user, hostKey)");
    }
    if (typeof o.host !== "string" || !(isIPv4(o.host) || isDnsName(o.host))) {
        p.add("sshProxy.host", `must be an IPv4 address or DNS name, got ${JSON.stringify(o.host)}`);
    }
    let port = defaultPort;
    if (o.port !== undefined) {
        if (typeof o.port !== "number" || !Number.isInteger(o.port) || o.port < 1 || o.port > 65535) {
            p.add("sshProxy.port", `must be a port number 1-65535, got ${JSON.stringify(o.port)}`);
        } else port = o.port;
    }
    let user = defaultUser;
    if (o.user !== undefined) {
        if (typeof o.user !== "string" || !USER.test(o.user)) p.add("sshProxy.user", `must be a user name, got ${JSON.stringify(o.user)}`);
        else user = o.user;
    }
    const hostKey = o.hostKey === undefined ? undefined : hostKeyValue(o.hostKey, "sshProxy.hostKey", p);
    return { host: typeof o.host === "string" ? o.host : "", port, user, ...(hostKey ? { hostKey } : {}) };
}

/** Gives the proxy the key known_hosts has for it when sshProxy.hostKey is unset; strict wants one. */
export function pinProxyKey(proxy: ProxySpec | undefined, policy: string, known: KnownHosts, p: Problems): ProxySpec | undefined {
    if (!proxy) return proxy;
    const proxyKey = proxy.hostKey ?? known.key([proxy.host], proxy.port);
    if (!proxyKey && policy === "strict" && proxy.host) {
        p.add(
            "sshProxy.hostKey",
            `no host key pinned for the proxy ${proxy.host}${known.path ? ` and none in ${known.path}` : ""}: ` +
                "set sshProxy.hostKey, or sshHostKeyPolicy: accept-new",
        );
    }
    return { ...proxy, ...(proxyKey ? { hostKey: proxyKey } : {}) };
}

export interface SshDial {
    readonly privateKeyPath: string | undefined;
    readonly dialErrorLimit: number;
    readonly perDialTimeout: number;
}

/** How a connection is retried, and the private key: sshPrivateKey (a secret) or a readable sshPrivateKeyPath. */
export function parseSshDial(raw: RawConfig, fileReadable: ((path: string) => boolean) | undefined, p: Problems): SshDial {
    const dialErrorLimit = int(raw, "sshDialErrorLimit", 30, 1, 1000, p);
    const perDialTimeout = int(raw, "sshPerDialTimeout", 10, 1, 600, p);
    const keyPath = raw.sshPrivateKeyPath || undefined;
    if (!raw.sshPrivateKey && !keyPath) p.add("sshPrivateKey", "set sshPrivateKey (secret) or sshPrivateKeyPath");
    if (!raw.sshPrivateKey && keyPath && fileReadable && !fileReadable(keyPath)) {
        p.add("sshPrivateKeyPath", `${JSON.stringify(keyPath)} is not a readable file (for the local lab: lab/lab.sh up creates it)`);
    }
    return { privateKeyPath: keyPath, dialErrorLimit, perDialTimeout };
}
