// How problems are collected (all of them, into one ConfigError) and the readers and checks of single values
// that every section's parser shares: JSON, strings, integers, booleans, lists, names, URLs and durations.
import type { RawConfig } from "./types.ts";

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

/** The problems found so far, in the order they were found: ConfigError lists them in that order. */
export class Problems {
    readonly list: ConfigProblem[] = [];
    add(propertyPath: string, reason: string): void {
        this.list.push({ propertyPath, reason });
    }
}

export const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const UNIT = /^[A-Za-z0-9@._-]+$/;
export const USER = /^[a-z_][a-z0-9_-]{0,31}$/;

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

/** Durations as Ansible and systemd write them: 3600, 90s, 30m, 1h, 2d; 0 = always. */
export function parseDuration(v: string): number | undefined {
    const m = /^([0-9]+)\s*(s|m|h|d)?$/.exec(v.trim());
    if (!m) return undefined;
    return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? "s") as "s" | "m" | "h" | "d"];
}

export function parseJson(raw: string | undefined, key: string, p: Problems): unknown {
    if (raw === undefined || raw === "") return undefined;
    try {
        return JSON.parse(raw);
    } catch {
        p.add(key, `is not valid JSON/YAML structured data: ${JSON.stringify(raw.slice(0, 80))}`);
        return undefined;
    }
}

export function str(raw: RawConfig, key: string, def: string): string {
    const v = raw[key];
    return v === undefined || v === "" ? def : v;
}

export function int(raw: RawConfig, key: string, def: number, min: number, max: number, p: Problems): number {
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

export function bool(raw: RawConfig, key: string, def: boolean, p: Problems): boolean {
    const v = raw[key];
    if (v === undefined || v === "") return def;
    if (v === "true") return true;
    if (v === "false") return false;
    p.add(key, `must be true or false, got ${JSON.stringify(v)}`);
    return def;
}

export function stringArray(raw: RawConfig, key: string, def: readonly string[], p: Problems): string[] {
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

export function findDuplicates(values: readonly string[]): Set<string> {
    const seen = new Set<string>();
    const dups = new Set<string>();
    for (const v of values) (seen.has(v) ? dups : seen).add(v);
    return dups;
}
