// Reads the stack config, validates all of it before any resource exists, builds the topology, exports.
// With hostsFrom, the hosts list is another stack's output: it is read first, then validated like an inline list.
import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import {
    CONFIG_KEYS,
    ConfigError,
    type HostsFromSpec,
    type HostsFromValue,
    type RawConfig,
    Topology,
    parseHostsFrom,
    plaintextSecrets,
} from "./components/index.ts";

/** A ConfigError as the engine shows a program's error: the message alone, no stack trace. */
function configured<T>(f: () => T): T {
    try {
        return f();
    } catch (e) {
        if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
        throw e;
    }
}

/** The output `from.output` of stack `from.stack` (a StackReference, read at preview too), and the stack's output names. */
async function readHostsFrom(from: HostsFromSpec): Promise<HostsFromValue> {
    const ref = new pulumi.StackReference("hosts-from", { name: from.stack });
    // A stack that does not exist fails the StackReference's read itself: `unknown stack "org/project/stack"`.
    const details = await ref.getOutputDetails(from.output);
    const value = details.value ?? details.secretValue;
    const outputs = value === undefined ? Object.keys(await new Promise<Record<string, unknown>>((r) => ref.outputs.apply(r))).sort() : [];
    return { ...from, value, outputs };
}

/** Refuses a secret setting that the stack file holds in plain text (teams commit that file), saying how to fix it. */
function refusePlaintextSecrets(project: string, stack: string): void {
    const file = `Pulumi.${stack}.yaml`;
    const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
    const keys = plaintextSecrets(text, project);
    if (keys.length === 0) return;
    throw new pulumi.RunError(
        keys
            .map(
                (k) =>
                    `${file}: ${project}:${k} is stored in plain text; store it encrypted, then check the file's history:\n` +
                    `    pulumi config set --secret --stack ${stack} ${k} < ~/.ssh/id_ed25519`,
            )
            .join("\n"),
    );
}

// An ES module: hostsFrom's list is awaited at the top level, before any resource exists.
const project = pulumi.getProject();
const config = new pulumi.Config();
refusePlaintextSecrets(project, pulumi.getStack());

// Every key of this project's namespace, so unknown (misspelt) keys are reported too.
const raw: Record<string, string | undefined> = {};
for (const full of Object.keys(pulumi.runtime.allConfig())) {
    if (full.startsWith(`${project}:`)) raw[full.slice(project.length + 1)] = undefined;
}
for (const key of [...CONFIG_KEYS, ...Object.keys(raw)]) {
    raw[key] = key === "sshPrivateKey" ? (config.getSecret(key) ? "<secret>" : undefined) : config.get(key);
}

const from = configured(() => parseHostsFrom(raw as RawConfig));
// Awaited with or without hostsFrom, so that every resource is made after an await: the stack the SDK keeps with each
// resource in the state then ends at this file instead of running on through the SDK's runner (5 frames a resource,
// 6% of the stored state at 24 hosts, which the engine writes again after every step; docs/bench.md).
const hostsFrom = await (from ? readHostsFrom(from) : undefined);
// The stack config as it is (text; sshPrivateKey the secret itself): the Topology component validates all of it.
const topology = configured(
    () => new Topology("topology", { stackConfig: raw as RawConfig, sshPrivateKey: config.getSecret("sshPrivateKey"), hostsFrom }),
);

// The stack outputs are the topology's (null where one does not apply: a StackReference reads null).
/** name, fqdn, address, roles and OS of every host. */
export const inventory = topology.inventory;
/** The SSH host key of every host (and of the proxy as "proxy"), `type base64`: pinned or recorded at first contact. */
export const hostKeys = topology.hostKeys;
/** etcd client URLs, e.g. ["http://192.168.100.2:2379"]. */
export const etcdClientEndpoints = topology.etcdClientEndpoints;
/** With etcdTls: {ca, cert, key} (PEM) of a client certificate the members accept (secret); null otherwise. */
export const etcdClientTls = topology.etcdClientTls;
/** The registry through nginx, e.g. "http://registry.danran.com" (port 80); null without a registry host. */
export const registryEndpoint = topology.registryEndpoint;
/** With registryTls: the CA (PEM) that signed the registry's certificate; every host trusts it. null otherwise. */
export const registryCaCert = topology.registryCaCert;
/** Basic-auth credentials of the registry {username, password} (secret); null when registryAuth is false. */
export const registryCredentials = topology.registryCredentials;
