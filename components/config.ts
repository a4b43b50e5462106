// Parsing and validation of the stack configuration. Pure functions: no Pulumi runtime, no host access,
// so bad input fails at `pulumi preview` before anything is touched, with one error naming every bad key.
import { keyLine, lookupKnownHosts, parsePublicKey } from "./sshKeys.ts";

export const ROLES = ["master", "node", "etcd", "registry"] as const;
export type Role = (typeof ROLES)[number];
export type TimeImplementation = "chrony" | "ntp";

export interface HostSpec {
    readonly name: string;
    readonly address: string;
    readonly roles: readonly Role[];
    readonly aliases: readonly string[];
    /** The host key every SSH connection must see (`type base64`): from hosts[i].hostKey or sshKnownHostsPath. */
    readonly hostKey?: string;
}

/** strict: every host (and the proxy) needs a pinned key; accept-new: a host without one is trusted on first contact. */
export type HostKeyPolicy = "strict" | "accept-new";

export interface ProxySpec {
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly hostKey?: string;
}

export interface EtcdMemberSpec {
    /** Host the member runs on. */
    readonly host: string;
    /** Member name (ETCD_NAME), also an alias of its host. */
    readonly name: string;
    /** ETCD_LISTEN_CLIENT_URLS / ETCD_ADVERTISE_CLIENT_URLS. */
    readonly clientUrl: string;
    /** ETCD_INITIAL_ADVERTISE_PEER_URLS (name based, as documented: http://etcd1:2380). */
    readonly peerUrl: string;
    /** ETCD_LISTEN_PEER_URLS: the host's own address, so peers on other hosts reach it. */
    readonly listenPeerUrl: string;
    /** ETCD_DATA_DIR. */
    readonly dataDir: string;
}

export interface TopologyConfig {
    readonly domain: string;
    readonly hosts: readonly HostSpec[];
    readonly ssh: {
        readonly user: string;
        readonly port: number;
        readonly privateKeyPath?: string;
        readonly dialErrorLimit: number;
        readonly perDialTimeout: number;
        readonly hostKeyPolicy: HostKeyPolicy;
        /** A bastion every host is reached through (connection.proxy). */
        readonly proxy?: ProxySpec;
    };
    /** Package lists older than this (seconds) are refreshed before an install. */
    readonly packageListsMaxAge: number;
    readonly scriptDir: string;
    readonly time: {
        readonly implementation: TimeImplementation;
        readonly servers: readonly string[];
        readonly serveFromMaster: boolean;
    };
    readonly firewallUnits: readonly string[];
    readonly registry?: {
        readonly host: string;
        readonly serverName: string;
        readonly auth: boolean;
        /** nginx serves https on 443 with a certificate from a private CA that every host trusts; 80 redirects. */
        readonly tls: boolean;
        readonly user: string;
        readonly storageDir: string;
    };
    readonly etcdMembers: readonly EtcdMemberSpec[];
    /** etcd client and peer TLS with a private CA (https URLs, client certificates required). */
    readonly etcdTls: boolean;
    /** Track drift of every managed file and service (read over SSH on `pulumi refresh`). */
    readonly driftChecks: boolean;
}

export interface ConfigProblem {
    /** Config key with its path inside the value, e.g. `hosts[1].address`. */
    readonly propertyPath: string;
    readonly reason: string;
}

/** One error that lists every problem found in the configuration. */
export class ConfigError extends Error {
    readonly problems: readonly ConfigProblem[];
    constructor(problems: readonly ConfigProblem[]) {
        super(
            `invalid configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
                problems.map((p) => `  - ${p.propertyPath}: ${p.reason}`).join("\n"),
        );
        this.name = "ConfigError";
        this.problems = problems;
    }
}

/** hostsFrom: the hosts list is the output `output` of another stack (a StackReference), e.g. the stack that made the VMs. */
export interface HostsFromSpec {
    /** The stack, as `pulumi stack ls` names it on this backend: `org/project/stack` (or `project/stack`, `stack`). */
    readonly stack: string;
    /** The name of its output that holds the hosts list. */
    readonly output: string;
}

/** What the program read from that stack: the output's value (undefined when the stack has no such output). */
export interface HostsFromValue extends HostsFromSpec {
    readonly value: unknown;
    /** The names of the stack's outputs, for the error when `output` is not one of them. */
    readonly outputs: readonly string[];
}

/** Raw config values as Pulumi hands them over: strings (JSON for arrays/objects), or undefined when unset. */
export type RawConfig = Readonly<Record<string, string | undefined>>;

export const CONFIG_KEYS = [
    "domain",
    "hosts",
    "hostsFrom",
    "sshUser",
    "sshPort",
    "sshPrivateKey",
    "sshPrivateKeyPath",
    "sshDialErrorLimit",
    "sshPerDialTimeout",
    "sshHostKeyPolicy",
    "sshKnownHostsPath",
    "sshProxy",
    "scriptDir",
    "timeImplementation",
    "timeServers",
    "timeServeFromMaster",
    "firewallUnits",
    "registryServerName",
    "registryAuth",
    "registryTls",
    "registryUser",
    "registryStorageDir",
    "etcdMembers",
    "etcdTls",
    "driftChecks",
    "packageListsMaxAge",
] as const;

export const DEFAULT_TIME_SERVERS = ["0.pool.ntp.org", "1.pool.ntp.org", "2.pool.ntp.org", "3.pool.ntp.org"];
export const DEFAULT_FIREWALL_UNITS = ["firewalld", "iptables", "ip6tables", "ufw"];
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;

/**
 * What an etcd member's settings follow from: it listens for peers on its host's address, with its peer URL's scheme
 * and port (2380 without one), and keeps its data in /var/lib/etcd/<name>.etcd (the documented layout).
 */
export function etcdMemberDefaults(name: string, peerUrl: string, address: string): { listenPeerUrl: string; dataDir: string } {
    const port = /:([0-9]+)\/?$/.exec(peerUrl)?.[1] ?? String(ETCD_PEER_PORT);
    return { listenPeerUrl: `${peerUrl.split(":")[0]}://${address}:${port}`, dataDir: `/var/lib/etcd/${name}.etcd` };
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const UNIT = /^[A-Za-z0-9@._-]+$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;

export function isIPv4(s: string): boolean {
    const parts = s.split(".");
    return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/** A host name label: lower case letters, digits and inner hyphens, at most 63 characters. */
export function isLabel(s: string): boolean {
    return LABEL.test(s);
}

/** A DNS name: dot-separated labels, at most 253 characters, not all-numeric (that would be an address). */
export function isDnsName(s: string): boolean {
    if (s.length === 0 || s.length > 253 || s.endsWith(".")) return false;
    const labels = s.split(".");
    return labels.every(isLabel) && !/^[0-9.]+$/.test(s);
}

/** Checks an http(s) URL with a host and a port and nothing else; returns the reason it is bad, or undefined. */
export function urlProblem(s: string): string | undefined {
    const m = /^([a-z][a-z0-9+.-]*):\/\/([^/:?#]+)(?::([0-9]+))?\/?$/i.exec(s);
    if (!m) return `"${s}" is not a URL of the form http://host:port`;
    const [, scheme, host, port] = m;
    if (scheme !== "http" && scheme !== "https") return `"${s}": scheme "${scheme}" is not http or https`;
    if (!isIPv4(host) && !isDnsName(host)) return `"${s}": "${host}" is not an IPv4 address or DNS name`;
    if (port === undefined) return `"${s}" has no port`;
    if (Number(port) < 1 || Number(port) > 65535) return `"${s}": port ${port} is out of range`;
    return undefined;
}

class Problems {
    readonly list: ConfigProblem[] = [];
    add(propertyPath: string, reason: string): void {
        this.list.push({ propertyPath, reason });
    }
}

function parseJson(raw: string | undefined, key: string, p: Problems): unknown {
    if (raw === undefined || raw === "") return undefined;
    try {
        return JSON.parse(raw);
    } catch {
        p.add(key, `is not valid JSON/YAML structured data: ${JSON.stringify(raw.slice(0, 80))}`);
        return undefined;
    }
}

function str(raw: RawConfig, key: string, def: string): string {
    const v = raw[key];
    return v === undefined || v === "" ? def : v;
}

function int(raw: RawConfig, key: string, def: number, min: number, max: number, p: Problems): number {
    const v = raw[key];
    if (v === undefined || v === "") return def;
    if (!/^[0-9]+$/.test(v.trim())) {
        p.add(key, `must be an integer, got ${JSON.stringify(v)}`);
        return def;
    }
    const n = Number(v);
    if (n < min || n > max) p.add(key, `must be between ${min} and ${max}, got ${n}`);
    return n;
}

function bool(raw: RawConfig, key: string, def: boolean, p: Problems): boolean {
    const v = raw[key];
    if (v === undefined || v === "") return def;
    if (v === "true") return true;
    if (v === "false") return false;
    p.add(key, `must be true or false, got ${JSON.stringify(v)}`);
    return def;
}

function stringArray(raw: RawConfig, key: string, def: readonly string[], p: Problems): string[] {
    const v = parseJson(raw[key], key, p);
    if (v === undefined) return [...def];
    if (!Array.isArray(v)) {
        p.add(key, "must be a list of strings");
        return [...def];
    }
    const out: string[] = [];
    v.forEach((x, i) => {
        if (typeof x !== "string") p.add(`${key}[${i}]`, `must be a string, got ${JSON.stringify(x)}`);
        else out.push(x);
    });
    return out;
}

function findDuplicates(values: readonly string[]): Set<string> {
    const seen = new Set<string>();
    const dups = new Set<string>();
    for (const v of values) (seen.has(v) ? dups : seen).add(v);
    return dups;
}

/** A pinned host key: `type base64 [comment]`, stored as `type base64`. */
function hostKeyValue(v: unknown, at: string, p: Problems): string | undefined {
    if (typeof v !== "string") {
        p.add(at, `must be a public key line such as "ssh-ed25519 AAAA...", got ${JSON.stringify(v)}`);
        return undefined;
    }
    const k = parsePublicKey(v);
    if (typeof k === "string") {
        p.add(at, `${k}; got ${JSON.stringify(v.slice(0, 60))}`);
        return undefined;
    }
    return keyLine(k);
}

/** Durations as Ansible and systemd write them: 3600, 90s, 30m, 1h, 2d; 0 = always. */
export function parseDuration(v: string): number | undefined {
    const m = /^([0-9]+)\s*(s|m|h|d)?$/.exec(v.trim());
    if (!m) return undefined;
    return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? "s") as "s" | "m" | "h" | "d"];
}

function parseProxy(raw: RawConfig, defaultUser: string, defaultPort: number, p: Problems): ProxySpec | undefined {
    const v = parseJson(raw.sshProxy, "sshProxy", p);
    if (v === undefined) return undefined;
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
        p.add("sshProxy", "must be an object {host, port?, user?, hostKey?}");
        return undefined;
    }
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!["host", "port", "user", "hostKey"].includes(k)) p.add(`sshProxy.${k}`, "is not a known proxy property (host, port, user, hostKey)");
    if (typeof o.host !== "string" || !(isIPv4(o.host) || isDnsName(o.host))) {
        p.add("sshProxy.host", `must be an IPv4 address or DNS name, got ${JSON.stringify(o.host)}`);
    }
    let port = defaultPort;
    if (o.port !== undefined) {
        if (typeof o.port !== "number" || !Number.isInteger(o.port) || o.port < 1 || o.port > 65535) p.add("sshProxy.port", `must be a port number 1-65535, got ${JSON.stringify(o.port)}`);
        else port = o.port;
    }
    let user = defaultUser;
    if (o.user !== undefined) {
        if (typeof o.user !== "string" || !USER.test(o.user)) p.add("sshProxy.user", `must be a user name, got ${JSON.stringify(o.user)}`);
        else user = o.user;
    }
    const hostKey = o.hostKey === undefined ? undefined : hostKeyValue(o.hostKey, "sshProxy.hostKey", p);
    return { host: typeof o.host === "string" ? o.host : "", port, user, ...(hostKey ? { hostKey } : {}) };
}

/** No hosts list: unset, or the empty list that Pulumi.yaml gives as its default (so a hostsFrom stack needs none). */
function hostsUnset(raw: RawConfig): boolean {
    return raw.hosts === undefined || /^\s*(\[\s*\])?\s*$/.test(raw.hosts);
}

const STACK_NAME = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+){0,2}$/;
const OUTPUT_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function hostsFromSpec(raw: RawConfig, p: Problems): HostsFromSpec | undefined {
    const v = parseJson(raw.hostsFrom, "hostsFrom", p);
    if (v === undefined) return undefined;
    if (!hostsUnset(raw)) {
        p.add("hostsFrom", "and hosts are both set: keep one (hosts lists the hosts here, hostsFrom reads them from another stack)");
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
        p.add("hostsFrom", "must be an object {stack: org/project/stack, output?: hosts}");
        return undefined;
    }
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!["stack", "output"].includes(k)) p.add(`hostsFrom.${k}`, "is not a known hostsFrom property (stack, output)");
    const stack = o.stack;
    const output = o.output ?? "hosts";
    if (typeof stack !== "string" || !STACK_NAME.test(stack)) {
        p.add("hostsFrom.stack", `must be a stack name such as org/project/stack, got ${JSON.stringify(stack)}`);
    }
    if (typeof output !== "string" || !OUTPUT_NAME.test(output)) p.add("hostsFrom.output", `must be an output name such as hosts, got ${JSON.stringify(output)}`);
    return typeof stack === "string" && typeof output === "string" ? { stack, output } : undefined;
}

/**
 * The hostsFrom setting, checked on its own (the program reads the other stack only when it is valid): undefined when
 * unset; throws a ConfigError when it is malformed or set together with hosts.
 */
export function parseHostsFrom(raw: RawConfig): HostsFromSpec | undefined {
    const p = new Problems();
    const spec = hostsFromSpec(raw, p);
    if (p.list.length > 0) throw new ConfigError(p.list);
    return spec;
}

/** The property path of the hosts list in errors: `hosts`, or `hostsFrom(<stack>).<output>` for another stack's output. */
function hostsPath(from: HostsFromSpec | undefined): string {
    return from ? `hostsFrom(${from.stack}).${from.output}` : "hosts";
}

function parseHosts(raw: RawConfig, from: HostsFromValue | undefined, p: Problems): HostSpec[] {
    const list = hostsPath(from);
    let v: unknown;
    if (from) {
        v = from.value;
        if (v === undefined) {
            p.add("hostsFrom.output", `stack ${from.stack} has no output "${from.output}" (its outputs: ${from.outputs.join(", ") || "none"})`);
            return [];
        }
    } else {
        if (hostsUnset(raw)) {
            p.add("hosts", "is required: a list of {name, address, roles} (or hostsFrom: another stack's output)");
            return [];
        }
        v = parseJson(raw.hosts, "hosts", p);
        if (v === undefined) return [];
    }
    if (!Array.isArray(v) || v.length === 0) {
        p.add(list, `must be a non-empty list of {name, address, roles}, got ${JSON.stringify(v)?.slice(0, 80)}`);
        return [];
    }
    const hosts: HostSpec[] = [];
    v.forEach((h: unknown, i) => {
        const at = `${list}[${i}]`;
        if (typeof h !== "object" || h === null || Array.isArray(h)) {
            p.add(at, "must be an object {name, address, roles}");
            return;
        }
        const o = h as Record<string, unknown>;
        for (const k of Object.keys(o)) {
            if (!["name", "address", "roles", "aliases", "hostKey"].includes(k)) p.add(`${at}.${k}`, "is not a known host property");
        }
        const name = o.name;
        if (typeof name !== "string" || !isLabel(name)) {
            p.add(`${at}.name`, `must be a host name label (a-z, 0-9, '-'), got ${JSON.stringify(name)}`);
        }
        const address = o.address;
        if (typeof address !== "string" || !isIPv4(address)) {
            p.add(`${at}.address`, `must be an IPv4 address, got ${JSON.stringify(address)}`);
        }
        let roles: Role[] = [];
        if (o.roles === undefined) {
            p.add(`${at}.roles`, `is required: a list of ${ROLES.join("|")}`);
        } else if (!Array.isArray(o.roles)) {
            p.add(`${at}.roles`, `must be a list of ${ROLES.join("|")}`);
        } else {
            o.roles.forEach((r: unknown, j) => {
                if (typeof r !== "string" || !(ROLES as readonly string[]).includes(r)) {
                    p.add(`${at}.roles[${j}]`, `unknown role ${JSON.stringify(r)} (known: ${ROLES.join(", ")})`);
                }
            });
            roles = o.roles.filter((r): r is Role => (ROLES as readonly string[]).includes(r as string));
            for (const d of findDuplicates(roles)) p.add(`${at}.roles`, `role "${d}" is listed twice`);
        }
        let aliases: string[] = [];
        if (o.aliases !== undefined) {
            if (!Array.isArray(o.aliases)) p.add(`${at}.aliases`, "must be a list of names");
            else {
                o.aliases.forEach((a: unknown, j) => {
                    if (typeof a !== "string" || !isDnsName(a)) p.add(`${at}.aliases[${j}]`, `must be a DNS name, got ${JSON.stringify(a)}`);
                });
                aliases = o.aliases.filter((a): a is string => typeof a === "string");
            }
        }
        const hostKey = o.hostKey === undefined ? undefined : hostKeyValue(o.hostKey, `${at}.hostKey`, p);
        hosts.push({
            name: typeof name === "string" ? name : "",
            address: typeof address === "string" ? address : "",
            roles,
            aliases,
            ...(hostKey ? { hostKey } : {}),
        });
    });
    for (const d of findDuplicates(hosts.map((h) => h.name).filter((n) => n))) {
        p.add(list, `host name "${d}" is used by more than one host`);
    }
    for (const d of findDuplicates(hosts.map((h) => h.address).filter((a) => a))) {
        p.add(list, `address ${d} is used by more than one host`);
    }
    for (const role of ["master", "registry"] as const) {
        const n = hosts.filter((h) => h.roles.includes(role)).length;
        if (n > 1) p.add(list, `role "${role}" is given to ${n} hosts; at most one is supported`);
    }
    return hosts;
}

function parseEtcdMembers(raw: RawConfig, hosts: readonly HostSpec[], tls: boolean, p: Problems): EtcdMemberSpec[] {
    const v = parseJson(raw.etcdMembers, "etcdMembers", p);
    let entries: { at: string; o: Record<string, unknown> }[];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) {
        entries = hosts.filter((h) => h.roles.includes("etcd")).map((h) => ({ at: "hosts", o: { host: h.name } }));
    } else if (!Array.isArray(v)) {
        p.add("etcdMembers", "must be a list of {host, name?, clientUrl?, peerUrl?}");
        return [];
    } else {
        entries = [];
        v.forEach((e: unknown, i) => {
            const at = `etcdMembers[${i}]`;
            if (typeof e === "string") entries.push({ at, o: { host: e } });
            else if (typeof e === "object" && e !== null && !Array.isArray(e)) entries.push({ at, o: e as Record<string, unknown> });
            else p.add(at, `must be a host name or {host, name?, clientUrl?, peerUrl?}, got ${JSON.stringify(e)}`);
        });
    }
    const byName = new Map(hosts.map((h) => [h.name, h]));
    const members: EtcdMemberSpec[] = [];
    entries.forEach(({ at, o }, i) => {
        for (const k of Object.keys(o)) {
            if (!["host", "name", "clientUrl", "peerUrl"].includes(k)) p.add(`${at}.${k}`, "is not a known etcd member property");
        }
        const hostName = o.host;
        const host = typeof hostName === "string" ? byName.get(hostName) : undefined;
        if (!host) {
            p.add(`${at}.host`, `${JSON.stringify(hostName)} is not one of the hosts (${hosts.map((h) => h.name).join(", ")})`);
            return;
        }
        const name = o.name === undefined ? `etcd${i + 1}` : o.name;
        if (typeof name !== "string" || !isLabel(name)) {
            p.add(`${at}.name`, `must be a name label, got ${JSON.stringify(name)}`);
            return;
        }
        const want = tls ? "https" : "http";
        const urls: Record<"clientUrl" | "peerUrl", string> = {
            clientUrl: `${want}://${host.address}:${ETCD_CLIENT_PORT}`,
            peerUrl: `${want}://${name}:${ETCD_PEER_PORT}`,
        };
        for (const k of ["clientUrl", "peerUrl"] as const) {
            if (o[k] === undefined) continue;
            const u = o[k];
            const why = typeof u === "string" ? urlProblem(u) : `must be a URL string, got ${JSON.stringify(u)}`;
            if (why) p.add(`${at}.${k}`, why);
            else if (!(u as string).startsWith(`${want}://`)) p.add(`${at}.${k}`, `"${u}" must be ${want}:// when etcdTls is ${tls}`);
            else urls[k] = u as string;
        }
        members.push({ host: host.name, name, clientUrl: urls.clientUrl, peerUrl: urls.peerUrl, ...etcdMemberDefaults(name, urls.peerUrl, host.address) });
    });
    if (members.length > 0 && members.length % 2 === 0) {
        p.add("etcdMembers", `${members.length} members: an etcd cluster needs an odd number of members (1, 3, 5, ...)`);
    }
    for (const d of findDuplicates(members.map((m) => m.host))) p.add("etcdMembers", `host "${d}" has more than one member`);
    for (const d of findDuplicates(members.map((m) => m.name))) p.add("etcdMembers", `member name "${d}" is used twice`);
    return members;
}

/**
 * Parses and validates the raw stack config. Returns the typed topology, or throws one ConfigError that
 * lists every problem with its property path.
 */
export function parseConfig(
    raw: RawConfig,
    env: {
        fileReadable?: (path: string) => boolean;
        readFile?: (path: string) => string;
        /** With hostsFrom set: the other stack's output, as the program read it. */
        hostsFrom?: HostsFromValue;
    } = {},
): TopologyConfig {
    const p = new Problems();
    const from = hostsFromSpec(raw, p);
    if (from && (env.hostsFrom?.stack !== from.stack || env.hostsFrom?.output !== from.output)) {
        p.add("hostsFrom", `the output "${from.output}" of stack ${from.stack} was not read (the program reads it before parseConfig)`);
    }
    const hostsFrom = from && env.hostsFrom;
    const list = hostsPath(hostsFrom);

    const domain = str(raw, "domain", "danran.com");
    if (!isDnsName(domain) || !domain.includes(".")) p.add("domain", `must be a DNS domain such as danran.com, got ${JSON.stringify(domain)}`);

    let hosts = from && !hostsFrom ? [] : parseHosts(raw, hostsFrom, p);

    const sshUser = str(raw, "sshUser", "root");
    if (!USER.test(sshUser)) p.add("sshUser", `must be a user name (root, or a user with passwordless sudo), got ${JSON.stringify(sshUser)}`);
    const sshPort = int(raw, "sshPort", 22, 1, 65535, p);
    const policy = str(raw, "sshHostKeyPolicy", "strict");
    if (policy !== "strict" && policy !== "accept-new") p.add("sshHostKeyPolicy", `must be strict or accept-new, got ${JSON.stringify(policy)}`);
    let proxy = parseProxy(raw, sshUser, sshPort, p);
    // Keys from a known_hosts file, for hosts (and the proxy) without hostKey: looked up by address, FQDN and name.
    const knownHostsPath = raw.sshKnownHostsPath || undefined;
    let knownHosts: string | undefined;
    if (knownHostsPath && env.readFile) {
        try {
            knownHosts = env.readFile(knownHostsPath);
        } catch (e) {
            p.add("sshKnownHostsPath", `${JSON.stringify(knownHostsPath)} cannot be read: ${(e as Error).message.split("\n")[0]}`);
        }
    }
    const known = (names: string[], port: number): string | undefined => {
        if (knownHosts === undefined) return undefined;
        const found = lookupKnownHosts(knownHosts, names, port);
        return found.keys.length > 0 ? keyLine(found.keys[0]) : undefined;
    };
    hosts = hosts.map((h, i) => {
        const hostKey = h.hostKey ?? known([h.address, `${h.name}.${domain}`, h.name], sshPort);
        if (!hostKey && policy === "strict" && h.name && h.address) {
            p.add(
                `${list}[${i}].hostKey`,
                `no host key pinned for ${h.name} (${h.address})${knownHostsPath ? ` and none in ${knownHostsPath}` : ""}: ` +
                    `set ${list}[${i}].hostKey to its "ssh-ed25519 AAAA..." line (ssh-keyscan -t ed25519 ${h.address}), or sshHostKeyPolicy: accept-new`,
            );
        }
        return { ...h, ...(hostKey ? { hostKey } : {}) };
    });
    if (proxy) {
        const proxyKey = proxy.hostKey ?? known([proxy.host], proxy.port);
        if (!proxyKey && policy === "strict" && proxy.host) {
            p.add("sshProxy.hostKey", `no host key pinned for the proxy ${proxy.host}${knownHostsPath ? ` and none in ${knownHostsPath}` : ""}: set sshProxy.hostKey, or sshHostKeyPolicy: accept-new`);
        }
        proxy = { ...proxy, ...(proxyKey ? { hostKey: proxyKey } : {}) };
    }
    let packageListsMaxAge = 3600;
    if (raw.packageListsMaxAge !== undefined && raw.packageListsMaxAge !== "") {
        const d = parseDuration(raw.packageListsMaxAge);
        if (d === undefined) p.add("packageListsMaxAge", `must be a duration such as 3600, 30m, 1h or 0 (always refresh), got ${JSON.stringify(raw.packageListsMaxAge)}`);
        else if (d > 999999) p.add("packageListsMaxAge", `must be at most 999999 seconds (11 days), got ${d}`);
        else packageListsMaxAge = d;
    }
    const dialErrorLimit = int(raw, "sshDialErrorLimit", 30, 1, 1000, p);
    const perDialTimeout = int(raw, "sshPerDialTimeout", 10, 1, 600, p);
    const keyPath = raw.sshPrivateKeyPath || undefined;
    if (!raw.sshPrivateKey && !keyPath) p.add("sshPrivateKey", "set sshPrivateKey (secret) or sshPrivateKeyPath");
    if (!raw.sshPrivateKey && keyPath && env.fileReadable && !env.fileReadable(keyPath)) {
        p.add("sshPrivateKeyPath", `${JSON.stringify(keyPath)} is not a readable file (for the local lab: lab/lab.sh up creates it)`);
    }

    const scriptDir = str(raw, "scriptDir", "/usr/local/lib/host-topology");
    if (!/^\/[A-Za-z0-9._/-]+$/.test(scriptDir) || scriptDir.split("/").includes("..") || scriptDir === "/") {
        p.add("scriptDir", `must be an absolute path of [A-Za-z0-9._-] segments, got ${JSON.stringify(scriptDir)}`);
    }

    const implementation = str(raw, "timeImplementation", "chrony");
    if (implementation !== "chrony" && implementation !== "ntp") {
        p.add("timeImplementation", `must be chrony or ntp, got ${JSON.stringify(implementation)}`);
    }
    const servers = stringArray(raw, "timeServers", DEFAULT_TIME_SERVERS, p);
    servers.forEach((s, i) => {
        if (!isIPv4(s) && !isDnsName(s)) p.add(`timeServers[${i}]`, `must be a DNS name or IPv4 address, got ${JSON.stringify(s)}`);
    });
    for (const d of findDuplicates(servers)) p.add("timeServers", `server "${d}" is listed twice`);
    const serveFromMaster = bool(raw, "timeServeFromMaster", false, p);
    if (serveFromMaster && hosts.length > 0 && !hosts.some((h) => h.roles.includes("master"))) {
        p.add("timeServeFromMaster", "is true but no host has role master");
    }
    if (!serveFromMaster && servers.length === 0) p.add("timeServers", "is empty and timeServeFromMaster is false: hosts would have no time source");

    const firewallUnits = stringArray(raw, "firewallUnits", DEFAULT_FIREWALL_UNITS, p);
    firewallUnits.forEach((u, i) => {
        if (!UNIT.test(u)) p.add(`firewallUnits[${i}]`, `must be a systemd unit name, got ${JSON.stringify(u)}`);
    });

    let registry: TopologyConfig["registry"];
    const registryHost = hosts.find((h) => h.roles.includes("registry"));
    const serverName = str(raw, "registryServerName", `registry.${domain}`);
    if (!isDnsName(serverName)) p.add("registryServerName", `must be a DNS name, got ${JSON.stringify(serverName)}`);
    const auth = bool(raw, "registryAuth", false, p);
    const registryTls = bool(raw, "registryTls", false, p);
    const user = str(raw, "registryUser", "registry");
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(user)) p.add("registryUser", `must be 1-64 characters of [A-Za-z0-9._-], got ${JSON.stringify(user)}`);
    const storageDir = str(raw, "registryStorageDir", "/var/lib/registry");
    if (!/^\/[A-Za-z0-9._/-]+$/.test(storageDir) || storageDir.split("/").includes("..")) {
        p.add("registryStorageDir", `must be an absolute path, got ${JSON.stringify(storageDir)}`);
    }
    if (registryHost) registry = { host: registryHost.name, serverName, auth, tls: registryTls, user, storageDir };

    const etcdTls = bool(raw, "etcdTls", false, p);
    const etcdMembers = parseEtcdMembers(raw, hosts, etcdTls, p);
    const driftChecks = bool(raw, "driftChecks", true, p);

    // Every name that goes into /etc/hosts must be unique across hosts.
    const names: [string, string][] = [];
    for (const h of hosts) {
        for (const n of hostNames({ domain, registry, etcdMembers }, h)) names.push([n, h.name]);
    }
    const owner = new Map<string, string>();
    for (const [n, h] of names) {
        const o = owner.get(n);
        if (o !== undefined && o !== h) p.add(list, `name "${n}" would resolve to both ${o} and ${h}`);
        owner.set(n, h);
    }

    for (const k of Object.keys(raw)) {
        if (!(CONFIG_KEYS as readonly string[]).includes(k)) p.add(k, `is not a known config key (known: ${CONFIG_KEYS.join(", ")})`);
    }

    if (p.list.length > 0) throw new ConfigError(p.list);
    return {
        domain,
        hosts,
        ssh: {
            user: sshUser,
            port: sshPort,
            privateKeyPath: keyPath,
            dialErrorLimit,
            perDialTimeout,
            hostKeyPolicy: policy as HostKeyPolicy,
            ...(proxy ? { proxy } : {}),
        },
        packageListsMaxAge,
        scriptDir,
        time: { implementation: implementation as TimeImplementation, servers, serveFromMaster },
        firewallUnits,
        registry,
        etcdMembers,
        etcdTls,
        driftChecks,
    };
}

/**
 * Every name a host answers to, in /etc/hosts order: FQDN, short name, etcd member names, registry names, aliases.
 */
export function hostNames(cfg: Pick<TopologyConfig, "domain" | "registry" | "etcdMembers">, h: HostSpec): string[] {
    const out = [`${h.name}.${cfg.domain}`, h.name];
    for (const m of cfg.etcdMembers) if (m.host === h.name) out.push(m.name);
    if (cfg.registry?.host === h.name) {
        const short = cfg.registry.serverName.split(".")[0];
        out.push(short, cfg.registry.serverName);
    }
    out.push(...h.aliases);
    return [...new Set(out)];
}

/** Config keys that hold a secret and must be stored encrypted (`pulumi config set --secret`). */
export const SECRET_CONFIG_KEYS = ["sshPrivateKey"] as const;

/**
 * The keys of SECRET_CONFIG_KEYS that a stack file (Pulumi.<stack>.yaml, as text) holds in plain text: any value of
 * `<project>:<key>` but a `secure:` one. (Not declared `secret: true` in Pulumi.yaml, which would make the key required in
 * every stack: the program refuses a plaintext value itself.)
 */
export function plaintextSecrets(stackFile: string, project: string): string[] {
    const lines = stackFile.split("\n");
    const found: string[] = [];
    for (const key of SECRET_CONFIG_KEYS) {
        const i = lines.findIndex((l) => new RegExp(`^\\s+${project}:${key}:(\\s|$)`).test(l));
        if (i < 0) continue;
        const rest = lines[i].slice(lines[i].indexOf(`${key}:`) + key.length + 1).replace(/\s+#.*$/, "").trim();
        const next = lines.slice(i + 1).find((l) => l.trim() !== "" && !l.trim().startsWith("#")) ?? "";
        const secure = rest === "" ? /^\s+secure:\s*\S/.test(next) : /^\{\s*secure:\s*\S/.test(rest);
        if (!secure) found.push(key);
    }
    return found;
}
