// The etcd members: given one by one in etcdMembers, or one per host with role etcd, with the URLs,
// listen address and data directory each one follows from.
import { type Problems, findDuplicates, isLabel, parseJson, urlProblem } from "./problems.ts";
import { type EtcdMemberSpec, type HostSpec, type RawConfig, ETCD_CLIENT_PORT, ETCD_PEER_PORT } from "./types.ts";

/**
 * What an etcd member's settings follow from: it listens for peers on its host's address, with its peer URL's scheme
 * and port (2380 without one), and keeps its data in /var/lib/etcd/<name>.etcd (the documented layout).
 */
export function etcdMemberDefaults(name: string, peerUrl: string, address: string): { listenPeerUrl: string; dataDir: string } {
    const port = /:([0-9]+)\/?$/.exec(peerUrl)?.[1] ?? String(ETCD_PEER_PORT);
    return { listenPeerUrl: `${peerUrl.split(":")[0]}://${address}:${port}`, dataDir: `/var/lib/etcd/${name}.etcd` };
}

/** One entry of etcdMembers (or of the default list), with its property path for errors. */
interface EtcdEntry {
    readonly at: string;
    readonly o: Record<string, unknown>;
}

export function parseEtcdMembers(raw: RawConfig, hosts: readonly HostSpec[], tls: boolean, p: Problems): EtcdMemberSpec[] {
    const entries = etcdEntries(raw, hosts, p);
    const among = { hosts, byName: new Map(hosts.map((h) => [h.name, h])) };
    const members: EtcdMemberSpec[] = [];
    entries.forEach((entry, i) => {
        const member = etcdMember(entry, i, among, tls, p);
        if (member) members.push(member);
    });
    if (members.length > 0 && members.length % 2 === 0) {
        p.add("etcdMembers", `${members.length} members: an etcd cluster needs an odd number of members (1, 3, 5, ...)`);
    }
    for (const d of findDuplicates(members.map((m) => m.host))) p.add("etcdMembers", `host "${d}" has more than one member`);
    for (const d of findDuplicates(members.map((m) => m.name))) p.add("etcdMembers", `member name "${d}" is used twice`);
    return members;
}

/** The entries of etcdMembers; unset or empty, one per host with role etcd. A value that is not a list gives none. */
function etcdEntries(raw: RawConfig, hosts: readonly HostSpec[], p: Problems): EtcdEntry[] {
    const v = parseJson(raw.etcdMembers, "etcdMembers", p);
    if (v === undefined || (Array.isArray(v) && v.length === 0)) {
        return hosts.filter((h) => h.roles.includes("etcd")).map((h) => ({ at: "hosts", o: { host: h.name } }));
    }
    if (!Array.isArray(v)) {
        p.add("etcdMembers", "must be a list of {host, name?, clientUrl?, peerUrl?}");
        return [];
    }
    const entries: EtcdEntry[] = [];
    v.forEach((e: unknown, i) => {
        const at = `etcdMembers[${i}]`;
        if (typeof e === "string") entries.push({ at, o: { host: e } });
        else if (typeof e === "object" && e !== null && !Array.isArray(e)) entries.push({ at, o: e as Record<string, unknown> });
        else p.add(at, `must be a host name or {host, name?, clientUrl?, peerUrl?}, got ${JSON.stringify(e)}`);
    });
    return entries;
}

/** The i-th member; undefined when its host or name is bad (a bad URL is reported and the default kept). */
function etcdMember(
    { at, o }: EtcdEntry,
    i: number,
    among: { hosts: readonly HostSpec[]; byName: ReadonlyMap<string, HostSpec> },
    tls: boolean,
    p: Problems,
): EtcdMemberSpec | undefined {
    for (const k of Object.keys(o)) {
        if (!["host", "name", "clientUrl", "peerUrl"].includes(k)) p.add(`${at}.${k}`, "is not a known etcd member property");
    }
    const hostName = o.host;
    const host = typeof hostName === "string" ? among.byName.get(hostName) : undefined;
    if (!host) {
        p.add(`${at}.host`, `${JSON.stringify(hostName)} is not one of the hosts (${among.hosts.map((h) => h.name).join(", ")})`);
        return undefined;
    }
    const name = o.name === undefined ? `etcd${i + 1}` : o.name;
    if (typeof name !== "string" || !isLabel(name)) {
        p.add(`${at}.name`, `must be a name label, got ${JSON.stringify(name)}`);
        return undefined;
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
    return {
        host: host.name,
        name,
        clientUrl: urls.clientUrl,
        peerUrl: urls.peerUrl,
        ...etcdMemberDefaults(name, urls.peerUrl, host.address),
    };
}
