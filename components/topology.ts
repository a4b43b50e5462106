// Wires the five components into the documented topology, with explicit dependencies:
// each host's HostKey before anything on it; HostBase first on every host; TimeSync and FirewallOff before the
// services; every EtcdMember after every member host's HostBase (peer names must resolve), its own host's TimeSync
// and FirewallOff, and the member before it (membership changes and restarts go one member at a time).
import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import { type HostsFromValue, type RawConfig, type TopologyConfig, parseConfig } from "./config/index.ts";
import { type Connection } from "./step.ts";
import { HostBase } from "./hostBase.ts";
import { HostKey } from "./resources/hostKey.ts";
import { TimeSync } from "./timeSync.ts";
import { FirewallOff } from "./firewallOff.ts";
import { PrivateRegistry } from "./privateRegistry.ts";
import { EtcdMember, newEtcdClusterToken } from "./etcdMember.ts";
import { ETCD_CLIENT_CERT_ID, Pki, REGISTRY_CERT_ID, etcdCertRequests, etcdMemberCertId, registryCertRequest } from "./resources/pki.ts";
import { renderHostsBlock, renderTimeConfig, timePlan } from "./render.ts";

export interface HostInventoryEntry {
    readonly name: string;
    readonly fqdn: string;
    readonly address: string;
    readonly roles: string[];
    readonly os: pulumi.Output<string>;
}

export interface BuiltTopology {
    readonly hosts: Record<string, HostBase>;
    /** The key each host (and the proxy, as "proxy") must present. */
    readonly hostKeys: Record<string, HostKey>;
    readonly timeSync: Record<string, TimeSync>;
    readonly firewall: Record<string, FirewallOff>;
    readonly registry?: PrivateRegistry;
    readonly etcd: EtcdMember[];
    readonly inventory: HostInventoryEntry[];
    readonly etcdClientEndpoints: string[];
    /** With registryTls: the CA that signed the registry's certificate (every host trusts it). */
    readonly registryCaCert?: pulumi.Output<string>;
    /** With etcdTls: the CA and client certificate and key for etcd clients (secret). */
    readonly etcdClientTls?: pulumi.Output<{ ca: string; cert: string; key: string }>;
}

/**
 * `privateKeyPath`: the file `privateKey` was read from (sshPrivateKeyPath). The plugin's connections then read it there
 * and the state keeps the key only in the step commands' connections (remote.Command takes the key itself).
 */
export function buildTopology(
    cfg: TopologyConfig,
    privateKey: pulumi.Input<string>,
    privateKeyPath?: string,
    opts: pulumi.ComponentResourceOptions = {},
): BuiltTopology {
    const hostsBlock = renderHostsBlock(cfg);
    // registryTls: the registry's CA, which every host trusts (HostBase), and nginx's certificate.
    const registryPki = cfg.registry?.tls
        ? new Pki("registry-pki", { caName: "host-topology registry CA", certs: [registryCertRequest(cfg, cfg.registry)] }, opts)
        : undefined;
    // Host keys first: every command of a host waits for its key (and the bastion's; see hostKey.ts).
    const hostKeys: Record<string, HostKey> = {};
    const proxySpec = cfg.ssh.proxy;
    let proxy:
        | pulumi.Output<{
              host: string;
              port: number;
              user: string;
              privateKey: string;
              hostKey: string;
              dialErrorLimit: number;
              perDialTimeout: number;
          }>
        | undefined;
    if (proxySpec) {
        hostKeys.proxy = new HostKey(
            "proxy-hostkey",
            { name: "proxy", host: proxySpec.host, port: proxySpec.port, pinned: proxySpec.hostKey },
            opts,
        );
        proxy = pulumi.all([proxySpec.hostKey ?? hostKeys.proxy.publicKey, pulumi.secret(privateKey)]).apply(([hostKey, key]) => ({
            host: proxySpec.host,
            port: proxySpec.port,
            user: proxySpec.user,
            privateKey: key,
            hostKey,
            dialErrorLimit: cfg.ssh.dialErrorLimit,
            perDialTimeout: cfg.ssh.perDialTimeout,
        }));
    }
    for (const h of cfg.hosts) {
        hostKeys[h.name] = new HostKey(
            `${h.name}-hostkey`,
            {
                name: h.name,
                host: h.address,
                port: cfg.ssh.port,
                pinned: h.hostKey,
                proxy: proxy?.apply((p) => ({ host: p.host, port: p.port, user: p.user, privateKey: p.privateKey, hostKey: p.hostKey })),
            },
            opts,
        );
    }
    const connection = (h: { name: string; address: string; hostKey?: string }): Connection => ({
        host: h.address,
        port: cfg.ssh.port,
        user: cfg.ssh.user,
        privateKey: pulumi.secret(privateKey),
        dialErrorLimit: cfg.ssh.dialErrorLimit,
        perDialTimeout: cfg.ssh.perDialTimeout,
        // A pinned key is known to the program: the connection stays a known value even when the host's HostKey
        // fails (a host down, another key), so with --continue-on-error the engine skips that host's steps (they
        // depend on it) instead of stopping at an incomplete connection. accept-new waits for the recorded key.
        hostKey: h.hostKey ?? hostKeys[h.name].publicKey,
        ...(proxy ? { proxy } : {}),
    });

    const hosts: Record<string, HostBase> = {};
    for (const h of cfg.hosts) {
        hosts[h.name] = new HostBase(
            h.name,
            {
                connection: connection(h),
                privateKeyPath,
                sudo: cfg.ssh.user !== "root",
                packageListsMaxAge: cfg.packageListsMaxAge,
                // Everything the host's components install, in one transaction before they run.
                packages: [
                    cfg.time.implementation,
                    ...(cfg.registry?.host === h.name ? ["registry"] : []),
                    ...(cfg.etcdMembers.some((m) => m.host === h.name) ? ["etcd"] : []),
                ],
                // Its own key (and the bastion's): a host with another key, or down, stops only its own steps.
                after: [hostKeys[h.name], ...(hostKeys.proxy ? [hostKeys.proxy] : [])],
                hostname: h.name,
                fqdn: `${h.name}.${cfg.domain}`,
                hostsBlock,
                scriptDir: cfg.scriptDir,
                trustedCa: registryPki?.caCert,
                driftCheck: cfg.driftChecks,
            },
            opts,
        );
    }

    const master = cfg.hosts.find((h) => h.roles.includes("master"));
    const timeSync: Record<string, TimeSync> = {};
    // The master first: when it serves time, the nodes sync from it.
    const ordered = [...cfg.hosts].sort((a, b) => Number(b.name === master?.name) - Number(a.name === master?.name));
    for (const h of ordered) {
        const fromMaster = cfg.time.serveFromMaster && master !== undefined && master.name !== h.name;
        timeSync[h.name] = new TimeSync(
            `${h.name}-time`,
            {
                host: hosts[h.name],
                implementation: cfg.time.implementation,
                config: renderTimeConfig(cfg.time.implementation, timePlan(cfg, h)),
                after: fromMaster ? [timeSync[master.name]] : [],
                driftCheck: cfg.driftChecks,
            },
            opts,
        );
    }

    const firewall: Record<string, FirewallOff> = {};
    for (const h of cfg.hosts) {
        firewall[h.name] = new FirewallOff(
            `${h.name}-firewall`,
            { host: hosts[h.name], units: cfg.firewallUnits, driftCheck: cfg.driftChecks },
            opts,
        );
    }

    let registry: PrivateRegistry | undefined;
    if (cfg.registry) {
        const r = cfg.registry;
        registry = new PrivateRegistry(
            `${r.host}-registry`,
            {
                host: hosts[r.host],
                serverName: r.serverName,
                auth: r.auth,
                tls: registryPki && registryPki.certFor(REGISTRY_CERT_ID),
                user: r.user,
                storageDir: r.storageDir,
                after: [timeSync[r.host], firewall[r.host]],
                driftCheck: cfg.driftChecks,
            },
            opts,
        );
    }

    const etcd: EtcdMember[] = [];
    let etcdClientTls: BuiltTopology["etcdClientTls"];
    if (cfg.etcdMembers.length > 0) {
        const token = newEtcdClusterToken("etcd-cluster-token", opts);
        const pki = cfg.etcdTls ? new Pki("etcd-pki", { caName: "host-topology etcd CA", certs: etcdCertRequests(cfg) }, opts) : undefined;
        const client = pki?.certFor(ETCD_CLIENT_CERT_ID);
        if (pki && client) {
            etcdClientTls = pulumi.secret(
                pulumi.all([pki.caCert, client.cert, client.key]).apply(([ca, cert, key]) => ({ ca, cert, key })),
            );
        }
        const memberHosts = [...new Set(cfg.etcdMembers.map((m) => m.host))].map((n) => hosts[n]);
        for (const m of cfg.etcdMembers) {
            // One member at a time, in the configured order: the first bootstraps, each next one joins the running
            // cluster, and a change that reaches every member restarts them one by one, each healthy before the next.
            const previous = etcd.length > 0 ? [etcd[etcd.length - 1]] : [];
            etcd.push(
                new EtcdMember(
                    `${m.host}-${m.name}`,
                    {
                        host: hosts[m.host],
                        member: m,
                        members: cfg.etcdMembers,
                        clusterToken: token.result,
                        tls: pki &&
                            client && {
                                ca: pki.caCert,
                                ...pki.certFor(etcdMemberCertId(m.name)),
                                clientCert: client.cert,
                                clientKey: client.key,
                            },
                        after: [...memberHosts, timeSync[m.host], firewall[m.host], ...previous],
                        driftCheck: cfg.driftChecks,
                    },
                    opts,
                ),
            );
        }
    }

    const inventory = cfg.hosts.map((h) => ({
        name: h.name,
        fqdn: `${h.name}.${cfg.domain}`,
        address: h.address,
        roles: [...h.roles],
        os: hosts[h.name].os,
    }));
    return {
        hosts,
        hostKeys,
        timeSync,
        firewall,
        registry,
        etcd,
        inventory,
        etcdClientEndpoints: cfg.etcdMembers.map((m) => m.clientUrl),
        etcdClientTls,
        registryCaCert: registryPki?.caCert,
    };
}

/** A host of the topology, as the stack config's `hosts` holds it. */
export interface TopologyHost {
    readonly name: string;
    readonly address: string;
    readonly roles: readonly string[];
    readonly aliases?: readonly string[];
    readonly hostKey?: string;
}

/** An etcd member of the topology, as the stack config's `etcdMembers` holds it (defaults from the host). */
export interface TopologyEtcdMember {
    readonly host: string;
    readonly name?: string;
    readonly clientUrl?: string;
    readonly peerUrl?: string;
}

/** The bastion, as the stack config's `sshProxy` holds it. */
export interface TopologyProxy {
    readonly host: string;
    readonly port?: number;
    readonly user?: string;
    readonly hostKey?: string;
}

/**
 * The settings of a topology by the names of the program's stack config (Pulumi.yaml documents each), as values.
 * Validated as the stack config is, before any resource exists: one error names every bad setting.
 */
export interface TopologyArgs {
    readonly hosts: readonly TopologyHost[];
    readonly domain?: string;
    readonly sshUser?: string;
    readonly sshPort?: number;
    /** The SSH private key (a secret); or sshPrivateKeyPath, a file read at each use. */
    readonly sshPrivateKey?: pulumi.Input<string>;
    readonly sshPrivateKeyPath?: string;
    readonly sshDialErrorLimit?: number;
    readonly sshPerDialTimeout?: number;
    readonly sshHostKeyPolicy?: string;
    readonly sshKnownHostsPath?: string;
    readonly sshProxy?: TopologyProxy;
    readonly packageListsMaxAge?: string;
    readonly scriptDir?: string;
    readonly timeImplementation?: string;
    readonly timeServers?: readonly string[];
    readonly timeServeFromMaster?: boolean;
    readonly firewallUnits?: readonly string[];
    readonly registryServerName?: string;
    readonly registryAuth?: boolean;
    readonly registryTls?: boolean;
    readonly registryUser?: string;
    readonly registryStorageDir?: string;
    readonly etcdMembers?: readonly TopologyEtcdMember[];
    readonly etcdTls?: boolean;
    readonly driftChecks?: boolean;
}

/** The program's stack config as it is: text, as Pulumi.<stack>.yaml holds it (lists and objects as JSON). */
export interface TopologyStackConfig {
    readonly stackConfig: RawConfig;
    readonly sshPrivateKey?: pulumi.Input<string>;
    /** With hostsFrom: the other stack's output, read by the program (a StackReference) before the topology. */
    readonly hostsFrom?: HostsFromValue;
}

function readableFile(p: string): boolean {
    try {
        fs.accessSync(p, fs.constants.R_OK);
        return fs.statSync(p).isFile();
    } catch {
        return false;
    }
}

/** The settings as the stack config gives them (text): lists and objects as JSON, the key only as "given". */
export function rawConfigOf(args: TopologyArgs): RawConfig {
    const raw: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(args)) {
        if (k === "sshPrivateKey") raw[k] = v === undefined || v === "" ? undefined : "<secret>";
        else raw[k] = v === undefined || v === null ? undefined : typeof v === "string" ? v : JSON.stringify(v);
    }
    return raw;
}

const fromStackConfig = (args: TopologyArgs | TopologyStackConfig): args is TopologyStackConfig => "stackConfig" in args;

/**
 * The documented topology as one component: the hosts list and the settings in, the five components per host out,
 * wired as buildTopology wires them, with the stack outputs as its outputs. The program's index.ts and the plugin's
 * construct (other languages) both build it, so there is one path from settings to hosts.
 *
 * Its resources were the stack's own children before it existed: each has an alias to that parent, so a stack
 * deployed before takes them over in place.
 */
export class Topology extends pulumi.ComponentResource {
    /** name, fqdn, address, roles and OS of every host. */
    declare public readonly inventory: pulumi.Output<{ name: string; fqdn: string; address: string; roles: string[]; os: string }[]>;
    /** The SSH host key of every host (and of the proxy as "proxy"), `type base64`. */
    declare public readonly hostKeys: pulumi.Output<Record<string, string>>;
    declare public readonly etcdClientEndpoints: pulumi.Output<string[]>;
    declare public readonly etcdClientTls: pulumi.Output<{ ca: string; cert: string; key: string } | null>;
    declare public readonly registryEndpoint: pulumi.Output<string | null>;
    declare public readonly registryCaCert: pulumi.Output<string | null>;
    declare public readonly registryCredentials: pulumi.Output<{ username: string; password: string } | null>;
    /** What was built: the components by host, for a program that adds its own resources to them. */
    public readonly built: BuiltTopology;

    /** The settings as values (other languages, a program of its own), or the program's stack config as it is. */
    constructor(name: string, args: TopologyArgs | TopologyStackConfig, opts?: pulumi.ComponentResourceOptions) {
        super("host-topology:index:Topology", name, {}, opts);
        const raw = fromStackConfig(args) ? args.stackConfig : rawConfigOf(args);
        const hostsFrom = fromStackConfig(args) ? args.hostsFrom : undefined;
        const cfg = parseConfig(raw, { fileReadable: readableFile, readFile: (p) => fs.readFileSync(p, "utf8"), hostsFrom });
        const keyGiven = args.sshPrivateKey !== undefined && args.sshPrivateKey !== "";
        const privateKey = keyGiven ? pulumi.secret(args.sshPrivateKey!) : pulumi.secret(fs.readFileSync(cfg.ssh.privateKeyPath!, "utf8"));
        // A key from a file stays there: the plugin's connections read it at each use (only remote.Command keeps a copy).
        const t = buildTopology(cfg, privateKey, keyGiven ? undefined : cfg.ssh.privateKeyPath, {
            parent: this,
            aliases: [{ parent: pulumi.rootStackResource }],
        });
        this.built = t;
        // What does not apply to a topology is null (a StackReference reads null; undefined would be dropped).
        const outputs = {
            inventory: pulumi.output(t.inventory),
            hostKeys: pulumi.all(Object.fromEntries(Object.entries(t.hostKeys).map(([n, k]) => [n, k.publicKey]))),
            etcdClientEndpoints: pulumi.output(t.etcdClientEndpoints),
            etcdClientTls: pulumi.output(t.etcdClientTls ?? null),
            registryEndpoint: pulumi.output(t.registry?.endpoint ?? null),
            registryCaCert: pulumi.output(t.registryCaCert ?? null),
            registryCredentials: t.registry ? t.registry.credentials.apply((c) => c ?? null) : pulumi.output(null),
        };
        Object.assign(this, outputs);
        this.registerOutputs(outputs);
    }
}
