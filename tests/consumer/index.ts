// Another team's project: reads the host-topology stack's outputs through a StackReference and uses them from the
// machine that runs Pulumi: etcd's version over its client URL, the registry's catalog with and without the
// registry credentials. The credentials stay secret in this project's outputs and state. Before it talks to the
// registry host, the plugin's HostKey checks that host presents the key the topology pinned (a key exchange, no login).
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { HostKey } from "../../components/hostKey.ts";

interface HostInfo {
    name: string;
    address: string;
    roles: string[];
}

const config = new pulumi.Config();
const hosts = new pulumi.StackReference(config.require("topologyStack"));

const inventory = hosts.requireOutput("inventory") as pulumi.Output<HostInfo[]>;
const etcdEndpoints = hosts.requireOutput("etcdClientEndpoints") as pulumi.Output<string[]>;
const registryEndpoint = hosts.requireOutput("registryEndpoint") as pulumi.Output<string>;
const credentials = hosts.requireOutput("registryCredentials") as pulumi.Output<{ username: string; password: string } | null>;

// The registry's name is known on the hosts, not here: curl is told the registry host's address.
const registryHost = inventory.apply((hs) => hs.find((h) => h.roles.includes("registry"))!);
const registryAddress = registryHost.address;
const hostKeys = hosts.requireOutput("hostKeys") as pulumi.Output<Record<string, string>>;
const registryKey = new HostKey("registry-hostkey", {
    name: "registry",
    host: registryAddress,
    port: 22,
    pinned: pulumi.all([hostKeys, registryHost]).apply(([keys, h]) => keys[h.name]),
});

const probe = new command.local.Command("probe", {
    // Values travel in the environment of a local process (the password never appears on a command line).
    environment: {
        ETCD: etcdEndpoints.apply((e) => e[0]),
        REGISTRY: registryEndpoint,
        REGISTRY_ADDRESS: registryAddress,
        REGISTRY_USER: credentials.apply((c) => c?.username ?? ""),
        REGISTRY_PASSWORD: credentials.apply((c) => c?.password ?? ""),
    },
    create: [
        "set -eu",
        'host=${REGISTRY#*://}; port=80; case "$REGISTRY" in https://*) port=443;; esac',
        'resolve="--resolve $host:$port:$REGISTRY_ADDRESS"',
        'printf "etcd %s\\n" "$(curl -fsS --max-time 10 "$ETCD/version")"',
        'printf "anonymous %s\\n" "$(curl -sS --max-time 10 $resolve -o /dev/null -w "%{http_code}" "$REGISTRY/v2/_catalog")"',
        'printf "authenticated %s\\n" "$(curl -sS --max-time 10 $resolve -o /dev/null -w "%{http_code}" -u "$REGISTRY_USER:$REGISTRY_PASSWORD" "$REGISTRY/v2/_catalog")"',
    ].join("\n"),
}, { dependsOn: [registryKey] });

/** e.g. "etcd {"etcdserver":"3.4.23",...}\nanonymous 401\nauthenticated 200" */
export const probeResult = probe.stdout;
export const etcdEndpoint = etcdEndpoints.apply((e) => e[0]);
export const registry = registryEndpoint;
export const registryHostKey = registryKey.fingerprint;
export const registryCredentials = credentials;
