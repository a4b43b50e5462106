// The shapes of the parsed stack configuration, the config keys the program knows and their plain defaults.
// Types and constants only, so every parser file and every importer can share them without a cycle.

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
