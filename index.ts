// Reads the stack config, validates all of it before any resource exists, builds the topology, exports.
import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import { CONFIG_KEYS, ConfigError, RawConfig, buildTopology, keepOwnStackFrames, parseConfig, plainStackTraces } from "./components";

keepOwnStackFrames();
plainStackTraces();

const project = pulumi.getProject();
const config = new pulumi.Config();

// Every key of this project's namespace, so unknown (misspelt) keys are reported too.
const raw: Record<string, string | undefined> = {};
for (const full of Object.keys(pulumi.runtime.allConfig())) {
    if (full.startsWith(`${project}:`)) raw[full.slice(project.length + 1)] = undefined;
}
for (const key of [...CONFIG_KEYS, ...Object.keys(raw)]) {
    raw[key] = key === "sshPrivateKey" ? (config.getSecret(key) ? "<secret>" : undefined) : config.get(key);
}

function readable(path: string): boolean {
    try {
        fs.accessSync(path, fs.constants.R_OK);
        return fs.statSync(path).isFile();
    } catch {
        return false;
    }
}

let cfg;
try {
    cfg = parseConfig(raw as RawConfig, { fileReadable: readable, readFile: (p) => fs.readFileSync(p, "utf8") });
} catch (e) {
    if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
    throw e;
}

const keySecret = config.getSecret("sshPrivateKey");
const privateKey: pulumi.Output<string> = keySecret ?? pulumi.secret(fs.readFileSync(cfg.ssh.privateKeyPath!, "utf8"));

// A key from a file stays there: the plugin's connections read it at each use (only remote.Command keeps a copy).
const topology = buildTopology(cfg, privateKey, keySecret ? undefined : cfg.ssh.privateKeyPath);

// Outputs that do not apply to a stack are null (a StackReference reads null; undefined would be dropped with a
// warning at every run).

/** name, fqdn, address, roles and OS of every host. */
export const inventory = topology.inventory;
/** The SSH host key of every host (and of the proxy as "proxy"), `type base64`: pinned or recorded at first contact. */
export const hostKeys = pulumi.all(Object.fromEntries(Object.entries(topology.hostKeys).map(([n, k]) => [n, k.publicKey])));
/** etcd client URLs, e.g. ["http://192.168.100.2:2379"]. */
export const etcdClientEndpoints = topology.etcdClientEndpoints;
/** With etcdTls: {ca, cert, key} (PEM) of a client certificate the members accept (secret); null otherwise. */
export const etcdClientTls = topology.etcdClientTls ?? null;
/** The registry through nginx, e.g. "http://registry.danran.com" (port 80); null without a registry host. */
export const registryEndpoint = topology.registry?.endpoint ?? null;
/** With registryTls: the CA (PEM) that signed the registry's certificate; every host trusts it. null otherwise. */
export const registryCaCert = topology.registryCaCert ?? null;
/** Basic-auth credentials of the registry {username, password} (secret); null when registryAuth is false. */
export const registryCredentials = topology.registry ? topology.registry.credentials.apply((c) => c ?? null) : null;
