// Parsing and validation of the stack configuration. Pure functions: no Pulumi runtime, no host access,
// so bad input fails at `pulumi preview` before anything is touched, with one error naming every bad key.
// parseConfig calls one parser per section; their order is the order of the problems in the ConfigError.
import { parseEtcdMembers } from "./etcd.ts";
import { checkUniqueNames, hostsSource, parseDomain, parseHosts, pinHostKeys, readKnownHosts } from "./hosts.ts";
import { ConfigError, Problems, bool } from "./problems.ts";
import { parseRegistry } from "./registry.ts";
import { parseFirewallUnits, parsePackageListsMaxAge, parseScriptDir } from "./settings.ts";
import { parseSshAccess, parseSshDial, pinProxyKey } from "./ssh.ts";
import { parseTime } from "./time.ts";
import { type HostKeyPolicy, type HostsFromValue, type RawConfig, type TopologyConfig, CONFIG_KEYS } from "./types.ts";

export {
    type EtcdMemberSpec,
    type HostKeyPolicy,
    type HostSpec,
    type HostsFromSpec,
    type HostsFromValue,
    type ProxySpec,
    type RawConfig,
    type Role,
    type TimeImplementation,
    type TopologyConfig,
    CONFIG_KEYS,
    DEFAULT_FIREWALL_UNITS,
    DEFAULT_TIME_SERVERS,
    ETCD_CLIENT_PORT,
    ETCD_PEER_PORT,
    ROLES,
} from "./types.ts";
export { type ConfigProblem, ConfigError, isDnsName, isIPv4, isLabel, parseDuration, urlProblem } from "./problems.ts";
export { hostNames, parseHostsFrom } from "./hosts.ts";
export { etcdMemberDefaults } from "./etcd.ts";
export { SECRET_CONFIG_KEYS, plaintextSecrets } from "./secrets.ts";

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
    const source = hostsSource(raw, env.hostsFrom, p);
    const domain = parseDomain(raw, p);
    const listed = source.unread ? [] : parseHosts(raw, source.from, p);
    const access = parseSshAccess(raw, p);
    // Keys from a known_hosts file, for hosts (and the proxy) without hostKey: looked up by address, FQDN and name.
    const known = readKnownHosts(raw, env.readFile, p);
    const hosts = pinHostKeys(listed, { domain, list: source.list, port: access.port, policy: access.policy }, known, p);
    const proxy = pinProxyKey(access.proxy, access.policy, known, p);
    const packageListsMaxAge = parsePackageListsMaxAge(raw, p);
    const dial = parseSshDial(raw, env.fileReadable, p);
    const scriptDir = parseScriptDir(raw, p);
    const time = parseTime(raw, hosts, p);
    const firewallUnits = parseFirewallUnits(raw, p);
    const registry = parseRegistry(raw, hosts, domain, p);
    const etcdTls = bool(raw, "etcdTls", false, p);
    const etcdMembers = parseEtcdMembers(raw, hosts, etcdTls, p);
    const driftChecks = bool(raw, "driftChecks", true, p);
    checkUniqueNames(hosts, { domain, registry, etcdMembers }, source.list, p);
    checkKnownKeys(raw, p);

    if (p.list.length > 0) throw new ConfigError(p.list);
    return {
        domain,
        hosts,
        ssh: {
            user: access.user,
            port: access.port,
            privateKeyPath: dial.privateKeyPath,
            dialErrorLimit: dial.dialErrorLimit,
            perDialTimeout: dial.perDialTimeout,
            hostKeyPolicy: access.policy as HostKeyPolicy,
            ...(proxy ? { proxy } : {}),
        },
        packageListsMaxAge,
        scriptDir,
        time,
        firewallUnits,
        registry,
        etcdMembers,
        etcdTls,
        driftChecks,
    };
}

/** A key the program does not know is a typo or a stale setting: say so rather than ignore it. */
function checkKnownKeys(raw: RawConfig, p: Problems): void {
    for (const k of Object.keys(raw)) {
        if (!(CONFIG_KEYS as readonly string[]).includes(k)) p.add(k, `is not a known config key (known: ${CONFIG_KEYS.join(", ")})`);
    }
}
