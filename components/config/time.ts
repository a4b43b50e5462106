// The time section: chrony or ntp, the servers every host syncs from, and whether the master serves the others.
import { type Problems, bool, findDuplicates, isDnsName, isIPv4, str, stringArray } from "./problems.ts";
import { type HostSpec, type RawConfig, type TimeImplementation, type TopologyConfig, DEFAULT_TIME_SERVERS } from "./types.ts";

export function parseTime(raw: RawConfig, hosts: readonly HostSpec[], p: Problems): TopologyConfig["time"] {
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
    if (!serveFromMaster && servers.length === 0)
        p.add("timeServers", "is empty and timeServeFromMaster is false: hosts would have no time source");
    return { implementation: implementation as TimeImplementation, servers, serveFromMaster };
}
