// The hosts: the domain they are named in, the list from `hosts` or from another stack's output (hostsFrom),
// the host key each one must show (pinned, or looked up in a known_hosts file), and the names each answers to.
import { keyLine, lookupKnownHosts, parsePublicKey } from "../../contract/sshKeys.ts";
import { ConfigError, Problems, findDuplicates, isDnsName, isIPv4, isLabel, parseJson, str } from "./problems.ts";
import { type HostSpec, type HostsFromSpec, type HostsFromValue, type RawConfig, type Role, type TopologyConfig, ROLES } from "./types.ts";

export function parseDomain(raw: RawConfig, p: Problems): string {
    const domain = str(raw, "domain", "danran.com");
    if (!isDnsName(domain) || !domain.includes("."))
        p.add("domain", `must be a DNS domain such as danran.com, got ${JSON.stringify(domain)}`);
    return domain;
}

/** A pinned host key: `type base64 [comment]`, stored as `type base64`. */
export function hostKeyValue(v: unknown, at: string, p: Problems): string | undefined {
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
    for (const k of Object.keys(o)) {
        if (!["stack", "output"].includes(k)) p.add(`hostsFrom.${k}`, "is not a known hostsFrom property (stack, output)");
    }
    const stack = o.stack;
    const output = o.output ?? "hosts";
    if (typeof stack !== "string" || !STACK_NAME.test(stack)) {
        p.add("hostsFrom.stack", `must be a stack name such as org/project/stack, got ${JSON.stringify(stack)}`);
    }
    if (typeof output !== "string" || !OUTPUT_NAME.test(output)) {
        p.add("hostsFrom.output", `must be an output name such as hosts, got ${JSON.stringify(output)}`);
    }
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

/** Where parseConfig takes the hosts list from, once hostsFrom is checked against the output the program read. */
export interface HostsSource {
    /** hostsFrom is set but its output was not read: there is no list to parse. */
    readonly unread: boolean;
    /** The other stack's output, when hostsFrom is set and it was read. */
    readonly from: HostsFromValue | undefined;
    /** The property path of the list in errors. */
    readonly list: string;
}

export function hostsSource(raw: RawConfig, read: HostsFromValue | undefined, p: Problems): HostsSource {
    const from = hostsFromSpec(raw, p);
    if (from && (read?.stack !== from.stack || read?.output !== from.output)) {
        p.add("hostsFrom", `the output "${from.output}" of stack ${from.stack} was not read (the program reads it before parseConfig)`);
    }
    const hostsFrom = from && read;
    return { unread: Boolean(from && !hostsFrom), from: hostsFrom, list: hostsPath(hostsFrom) };
}

export function parseHosts(raw: RawConfig, from: HostsFromValue | undefined, p: Problems): HostSpec[] {
    const list = hostsPath(from);
    let v: unknown;
    if (from) {
        v = from.value;
        if (v === undefined) {
            p.add(
                "hostsFrom.output",
                `stack ${from.stack} has no output "${from.output}" (its outputs: ${from.outputs.join(", ") || "none"})`,
            );
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
        const host = parseHost(h, `${list}[${i}]`, p);
        if (host) hosts.push(host);
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

/** One entry of the hosts list, at `at`; undefined when it is not an object at all (a bad field still gives a host). */
function parseHost(h: unknown, at: string, p: Problems): HostSpec | undefined {
    if (typeof h !== "object" || h === null || Array.isArray(h)) {
        p.add(at, "must be an object {name, address, roles}");
        return undefined;
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
    const roles = hostRoles(o.roles, at, p);
    const aliases = hostAliases(o.aliases, at, p);
    const hostKey = o.hostKey === undefined ? undefined : hostKeyValue(o.hostKey, `${at}.hostKey`, p);
    return {
        name: typeof name === "string" ? name : "",
        address: typeof address === "string" ? address : "",
        roles,
        aliases,
        ...(hostKey ? { hostKey } : {}),
    };
}

function hostRoles(v: unknown, at: string, p: Problems): Role[] {
    if (v === undefined) {
        p.add(`${at}.roles`, `is required: a list of ${ROLES.join("|")}`);
        return [];
    }
    if (!Array.isArray(v)) {
        p.add(`${at}.roles`, `must be a list of ${ROLES.join("|")}`);
        return [];
    }
    v.forEach((r: unknown, j) => {
        if (typeof r !== "string" || !(ROLES as readonly string[]).includes(r)) {
            p.add(`${at}.roles[${j}]`, `unknown role ${JSON.stringify(r)} (known: ${ROLES.join(", ")})`);
        }
    });
    const roles = v.filter((r): r is Role => (ROLES as readonly string[]).includes(r as string));
    for (const d of findDuplicates(roles)) p.add(`${at}.roles`, `role "${d}" is listed twice`);
    return roles;
}

function hostAliases(v: unknown, at: string, p: Problems): string[] {
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
        p.add(`${at}.aliases`, "must be a list of names");
        return [];
    }
    v.forEach((a: unknown, j) => {
        if (typeof a !== "string" || !isDnsName(a)) p.add(`${at}.aliases[${j}]`, `must be a DNS name, got ${JSON.stringify(a)}`);
    });
    return v.filter((a): a is string => typeof a === "string");
}

/** Host keys from a known_hosts file (sshKnownHostsPath), for the hosts (and the proxy) that pin none themselves. */
export interface KnownHosts {
    /** The file, named in the error for a host without a key. */
    readonly path: string | undefined;
    /** The first key the file holds for any of the names at that port. */
    readonly key: (names: string[], port: number) => string | undefined;
}

export function readKnownHosts(raw: RawConfig, readFile: ((path: string) => string) | undefined, p: Problems): KnownHosts {
    const path = raw.sshKnownHostsPath || undefined;
    let text: string | undefined;
    if (path && readFile) {
        try {
            text = readFile(path);
        } catch (e) {
            p.add("sshKnownHostsPath", `${JSON.stringify(path)} cannot be read: ${(e as Error).message.split("\n")[0]}`);
        }
    }
    const key = (names: string[], port: number): string | undefined => {
        if (text === undefined) return undefined;
        const found = lookupKnownHosts(text, names, port);
        return found.keys.length > 0 ? keyLine(found.keys[0]) : undefined;
    };
    return { path, key };
}

/** Gives each host without hostKey the one known_hosts has for it (by address, FQDN and name); strict wants one for each. */
export function pinHostKeys(
    hosts: readonly HostSpec[],
    at: { domain: string; list: string; port: number; policy: string },
    known: KnownHosts,
    p: Problems,
): HostSpec[] {
    const { domain, list, port, policy } = at;
    return hosts.map((h, i) => {
        const hostKey = h.hostKey ?? known.key([h.address, `${h.name}.${domain}`, h.name], port);
        if (!hostKey && policy === "strict" && h.name && h.address) {
            p.add(
                `${list}[${i}].hostKey`,
                `no host key pinned for ${h.name} (${h.address})${known.path ? ` and none in ${known.path}` : ""}: ` +
                    `set ${list}[${i}].hostKey to its "ssh-ed25519 AAAA..." line (ssh-keyscan -t ed25519 ${h.address}), ` +
                    `or sshHostKeyPolicy: accept-new`,
            );
        }
        return { ...h, ...(hostKey ? { hostKey } : {}) };
    });
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

/** Every name that goes into /etc/hosts must be unique across hosts. */
export function checkUniqueNames(
    hosts: readonly HostSpec[],
    cfg: Pick<TopologyConfig, "domain" | "registry" | "etcdMembers">,
    list: string,
    p: Problems,
): void {
    const names: [string, string][] = [];
    for (const h of hosts) {
        for (const n of hostNames(cfg, h)) names.push([n, h.name]);
    }
    const owner = new Map<string, string>();
    for (const [n, h] of names) {
        const o = owner.get(n);
        if (o !== undefined && o !== h) p.add(list, `name "${n}" would resolve to both ${o} and ${h}`);
        owner.set(n, h);
    }
}
