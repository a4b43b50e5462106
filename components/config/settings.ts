// Host-side settings that have no section of their own: where the scripts go, how old package lists may be,
// and which firewall units are turned off.
import { type Problems, UNIT, parseDuration, str, stringArray } from "./problems.ts";
import { type RawConfig, DEFAULT_FIREWALL_UNITS } from "./types.ts";

/** Package lists older than this (seconds, 1h unless set) are refreshed before an install. */
export function parsePackageListsMaxAge(raw: RawConfig, p: Problems): number {
    const v = raw.packageListsMaxAge;
    if (v === undefined || v === "") return 3600;
    const d = parseDuration(v);
    if (d === undefined) {
        p.add("packageListsMaxAge", `must be a duration such as 3600, 30m, 1h or 0 (always refresh), got ${JSON.stringify(v)}`);
        return 3600;
    }
    if (d > 999999) {
        p.add("packageListsMaxAge", `must be at most 999999 seconds (11 days), got ${d}`);
        return 3600;
    }
    return d;
}

export function parseScriptDir(raw: RawConfig, p: Problems): string {
    const scriptDir = str(raw, "scriptDir", "/usr/local/lib/host-topology");
    if (!/^\/[A-Za-z0-9._/-]+$/.test(scriptDir) || scriptDir.split("/").includes("..") || scriptDir === "/") {
        p.add("scriptDir", `must be an absolute path of [A-Za-z0-9._-] segments, got ${JSON.stringify(scriptDir)}`);
    }
    return scriptDir;
}

export function parseFirewallUnits(raw: RawConfig, p: Problems): string[] {
    const firewallUnits = stringArray(raw, "firewallUnits", DEFAULT_FIREWALL_UNITS, p);
    firewallUnits.forEach((u, i) => {
        if (!UNIT.test(u)) p.add(`firewallUnits[${i}]`, `must be a systemd unit name, got ${JSON.stringify(u)}`);
    });
    return firewallUnits;
}
