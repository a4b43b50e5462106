// Renders the files the program puts on hosts. Pure functions of the validated config: golden-tested.
import { type EtcdMemberSpec, type HostSpec, type TopologyConfig, type TimeImplementation, hostNames } from "./config/index.ts";

const HEADER = "Managed by Pulumi (host-topology). Local changes are overwritten on the next `pulumi up`.";

/** The managed block of /etc/hosts: one line per host, FQDN first, then short name and aliases. */
export function renderHostsBlock(cfg: Pick<TopologyConfig, "domain" | "hosts" | "registry" | "etcdMembers">): string {
    return cfg.hosts.map((h) => `${h.address} ${hostNames(cfg, h).join(" ")}`).join("\n") + "\n";
}

/** The distribution (docker-distribution / docker-registry) config.yml, as documented. */
export function renderRegistryConfig(storageDir: string): string {
    return [
        `# ${HEADER}`,
        "version: 0.1",
        "log:",
        "  fields:",
        "    service: registry",
        "storage:",
        "  cache:",
        "    layerinfo: inmemory",
        "  filesystem:",
        `    rootdirectory: ${storageDir}`,
        "http:",
        "  addr: 127.0.0.1:5000",
        "",
    ].join("\n");
}

/**
 * nginx reverse proxy for the registry: every directive of the notes plus the registry's nginx recipe
 * (Docker-Distribution-Api-Version header, chunked transfer, X-Forwarded-Proto, long read timeout).
 */
/** Where private-registry.sh puts nginx's certificate and key (registryTls). */
export const REGISTRY_TLS_CERT = "/etc/nginx/tls/registry.crt";
export const REGISTRY_TLS_KEY = "/etc/nginx/tls/registry.key";

export function renderNginxSite(serverName: string, auth: boolean, tls = false): string {
    const authLines = auth
        ? ['        auth_basic "Registry realm";', "        auth_basic_user_file /etc/nginx/.ngxpasswd;"]
        : ["        # basic auth is off (registryAuth: false)"];
    return [
        `# ${HEADER}`,
        "map $upstream_http_docker_distribution_api_version $host_topology_registry_api_version {",
        "    '' 'registry/2.0';",
        "}",
        "",
        ...(tls
            ? [
                  "# https only (registryTls): plain http is sent to https.",
                  "server {",
                  "    listen 80;",
                  `    server_name ${serverName};`,
                  "    return 301 https://$host$request_uri;",
                  "}",
                  "",
              ]
            : []),
        "server {",
        ...(tls
            ? [
                  "    listen 443 ssl;",
                  `    server_name ${serverName};`,
                  `    ssl_certificate ${REGISTRY_TLS_CERT};`,
                  `    ssl_certificate_key ${REGISTRY_TLS_KEY};`,
                  "    ssl_protocols TLSv1.2 TLSv1.3;",
              ]
            : ["    listen 80;", `    server_name ${serverName};`]),
        "    client_max_body_size 0;",
        "    chunked_transfer_encoding on;",
        "",
        "    location / {",
        ...authLines,
        "        add_header Docker-Distribution-Api-Version $host_topology_registry_api_version always;",
        "        proxy_pass http://127.0.0.1:5000;",
        "        proxy_next_upstream error timeout invalid_header http_500 http_502 http_503 http_504;",
        "        proxy_redirect off;",
        "        proxy_buffering off;",
        "        proxy_request_buffering off;",
        "        proxy_set_header Host $host;",
        "        proxy_set_header X-Real-IP $remote_addr;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_read_timeout 900;",
        "    }",
        "}",
        "",
    ].join("\n");
}

/** htpasswd line for nginx basic auth; the hash is bcrypt (from @pulumi/random). */
export function renderHtpasswd(user: string, bcryptHash: string): string {
    return `${user}:${bcryptHash}\n`;
}

export interface TimePlan {
    /** Servers this host syncs from. */
    readonly servers: readonly string[];
    /** Addresses allowed to query this host (it serves time), empty for a pure client. */
    readonly serveTo: readonly string[];
}

/** What each host syncs from: the master serves the others when serveFromMaster is on. */
export function timePlan(cfg: Pick<TopologyConfig, "hosts" | "time">, host: HostSpec): TimePlan {
    const master = cfg.hosts.find((h) => h.roles.includes("master"));
    if (!cfg.time.serveFromMaster || !master) return { servers: cfg.time.servers, serveTo: [] };
    if (master.name === host.name) {
        return { servers: cfg.time.servers, serveTo: cfg.hosts.filter((h) => h.name !== master.name).map((h) => h.address) };
    }
    return { servers: [master.address], serveTo: [] };
}

export function renderTimeConfig(impl: TimeImplementation, plan: TimePlan): string {
    return impl === "chrony" ? renderChrony(plan) : renderNtp(plan);
}

function renderChrony(plan: TimePlan): string {
    const lines = [`# ${HEADER}`];
    for (const s of plan.servers) lines.push(`server ${s} iburst`);
    lines.push("makestep 1.0 3", "rtcsync");
    if (plan.serveTo.length > 0) {
        lines.push("# Serve time to the other hosts, also while no upstream server is reachable.");
        for (const a of plan.serveTo) lines.push(`allow ${a}`);
        lines.push("local stratum 10");
    }
    return lines.join("\n") + "\n";
}

function renderNtp(plan: TimePlan): string {
    const lines = [`# ${HEADER}`];
    for (const s of plan.servers) lines.push(`server ${s} iburst`);
    lines.push("restrict default kod nomodify nopeer noquery limited", "restrict 127.0.0.1", "restrict ::1");
    for (const a of plan.serveTo) lines.push(`restrict ${a} mask 255.255.255.255 nomodify notrap`);
    return lines.join("\n") + "\n";
}

/** Where etcd-member.sh puts a member's TLS files (etcdTls): ca.crt, member.crt, member.key, client.crt, client.key. */
export const ETCD_PKI_DIR = "/etc/etcd/pki";

/** The etcd environment file (/etc/etcd/etcd.conf on EL, /etc/default/etcd on Debian/Ubuntu). */
export function renderEtcdEnv(member: EtcdMemberSpec, all: readonly EtcdMemberSpec[], token: string, tls = false): string {
    const q = (k: string, v: string) => `${k}="${v}"`;
    const tlsLines = tls
        ? [
              // Client and peer TLS with the cluster's CA; both sides must show a certificate it signed.
              q("ETCD_CERT_FILE", `${ETCD_PKI_DIR}/member.crt`),
              q("ETCD_KEY_FILE", `${ETCD_PKI_DIR}/member.key`),
              q("ETCD_TRUSTED_CA_FILE", `${ETCD_PKI_DIR}/ca.crt`),
              q("ETCD_CLIENT_CERT_AUTH", "true"),
              q("ETCD_PEER_CERT_FILE", `${ETCD_PKI_DIR}/member.crt`),
              q("ETCD_PEER_KEY_FILE", `${ETCD_PKI_DIR}/member.key`),
              q("ETCD_PEER_TRUSTED_CA_FILE", `${ETCD_PKI_DIR}/ca.crt`),
              q("ETCD_PEER_CLIENT_CERT_AUTH", "true"),
          ]
        : [];
    return [
        `# ${HEADER}`,
        q("ETCD_NAME", member.name),
        q("ETCD_DATA_DIR", member.dataDir),
        q("ETCD_LISTEN_PEER_URLS", member.listenPeerUrl),
        q("ETCD_LISTEN_CLIENT_URLS", member.clientUrl),
        q("ETCD_INITIAL_ADVERTISE_PEER_URLS", member.peerUrl),
        q("ETCD_ADVERTISE_CLIENT_URLS", member.clientUrl),
        q("ETCD_INITIAL_CLUSTER", all.map((m) => `${m.name}=${m.peerUrl}`).join(",")),
        q("ETCD_INITIAL_CLUSTER_TOKEN", token),
        ...tlsLines,
        // ETCD_INITIAL_CLUSTER_STATE is etcd's default "new"; etcd-member.sh sets "existing" (systemd drop-in) when it
        // replaces a member whose host lost its data.
        "",
    ].join("\n");
}
