// The five components for programs in other languages (Pulumi YAML, Python...): the plugin's `construct` builds the
// same classes a TypeScript program uses, in this process, from the inputs the schema declares.
//
// A component takes its host as a reference to a HostBase (`host: ${master}` in YAML), and `after` as references to
// other components. The engine sends those as URNs; this process constructed them (one plugin process serves a
// whole deployment, and a reference reaches it only after that component's construct returned), so the registered
// resource module below hands back the live object: its connection, scripts and drift check, and `dependsOn` on it
// waits for all its children, as in a TypeScript program.
import * as pulumi from "@pulumi/pulumi";
import * as provider from "@pulumi/pulumi/provider/index.js";
import {
    EtcdMember,
    type EtcdMemberSpec,
    FirewallOff,
    HostBase,
    PrivateRegistry,
    TimeSync,
    Topology,
    type TopologyArgs,
} from "../components/index.ts";
import { CONFIG_KEYS, ConfigError, etcdMemberDefaults } from "../components/config/index.ts";

export const COMPONENTS = ["HostBase", "TimeSync", "FirewallOff", "PrivateRegistry", "EtcdMember", "Topology"] as const;
export type ComponentName = (typeof COMPONENTS)[number];

/** What every component takes besides its own inputs. */
const COMMON = ["after", "driftCheck"] as const;

/** The Topology's settings besides its hosts: the stack config's keys (hostsFrom is the TypeScript program's own). */
const TOPOLOGY_SETTINGS = CONFIG_KEYS.filter(
    (k): k is Exclude<(typeof CONFIG_KEYS)[number], "hosts" | "hostsFrom"> => k !== "hosts" && k !== "hostsFrom",
);

/**
 * The inputs construct reads, by component: the names `build` can read (inputsOf), and those it refuses to go
 * without. They are the schema's inputProperties and requiredInputs, which tests/unit/schema.test.ts holds them to.
 */
export const INPUTS = {
    HostBase: {
        required: ["connection", "hostname", "fqdn", "hostsBlock"],
        optional: ["privateKeyPath", "sudo", "packageListsMaxAge", "packages", "trustedCa", "scriptDir", ...COMMON],
    },
    TimeSync: { required: ["host", "config"], optional: ["implementation", ...COMMON] },
    FirewallOff: { required: ["host"], optional: ["units", ...COMMON] },
    PrivateRegistry: { required: ["host", "serverName"], optional: ["auth", "tls", "user", "storageDir", ...COMMON] },
    EtcdMember: { required: ["host", "member", "members", "clusterToken"], optional: ["tls", "healthTimeout", ...COMMON] },
    // The settings of the program's stack config, by the same names (TopologyArgs); hostsFrom is the program's own.
    Topology: { required: ["hosts"], optional: TOPOLOGY_SETTINGS },
} as const satisfies Record<ComponentName, { required: readonly string[]; optional: readonly string[] }>;

type InputName<T extends ComponentName> = (typeof INPUTS)[T]["required"][number] | (typeof INPUTS)[T]["optional"][number];

const constructed = new Map<string, pulumi.ComponentResource>();

let registered = false;

/** Lets references to this package's components deserialize to the objects this process constructed. */
export function registerComponents(version: string): void {
    if (registered) return;
    registered = true;
    pulumi.runtime.registerResourceModule("host-topology", "index", {
        version,
        construct(name: string, type: string, urn: string): pulumi.Resource {
            const r = constructed.get(urn);
            if (!r) throw new Error(`host-topology: ${type} ${name} is not a component of this deployment (${urn})`);
            return r;
        },
    });
}

class InputError extends Error {}

/** What an Output also has at run time, though the SDK's typings leave it out. */
interface OutputInternals<T> {
    isKnown: Promise<boolean>;
    promise(): Promise<T>;
}

/** A value the component needs before it can build its steps: plain, or an Output known now (also in a preview). */
async function known<T>(v: unknown, what: string): Promise<T> {
    if (!pulumi.Output.isInstance(v)) return v as T;
    const o = v as unknown as OutputInternals<T>;
    if (!(await o.isKnown))
        throw new InputError(`${what} must be known when the program runs (not the output of a resource that does not exist yet)`);
    return (await o.promise()) as T;
}

function hostOf(type: string, name: string, v: unknown): HostBase {
    if (!(v instanceof HostBase))
        throw new InputError(`${type} ${name}: host must be a host-topology:index:HostBase of this program, e.g. host: \${master}`);
    return v;
}

/** `after` and the resource option dependsOn: components of this deployment as the objects, others by URN. */
async function afterOf(input: unknown, opts: pulumi.ComponentResourceOptions): Promise<pulumi.Resource[]> {
    const after = ((await known<unknown[]>(input, "after")) ?? []) as pulumi.Resource[];
    const deps = (Array.isArray(opts.dependsOn) ? opts.dependsOn : []) as pulumi.Resource[];
    const out: pulumi.Resource[] = [];
    for (const d of [...after, ...deps]) {
        if (!pulumi.Resource.isInstance(d)) throw new InputError(`after: ${JSON.stringify(d)} is not a resource`);
        const urn = await (d.urn as unknown as OutputInternals<string>).promise();
        out.push(constructed.get(urn) ?? d);
    }
    return out;
}

/**
 * A component's inputs, readable by the names INPUTS lists for it only (a name read without being listed there does not
 * type-check), once those it requires are there.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the engine's inputs are untyped until each is checked where read
type Untyped = any;

function inputsOf<T extends ComponentName>(type: T, name: string, inputs: pulumi.Inputs): Readonly<Record<InputName<T>, Untyped>> {
    const missing = INPUTS[type].required.filter((k) => inputs[k] === undefined || inputs[k] === null);
    if (missing.length > 0) throw new InputError(`${type} ${name}: missing ${missing.join(", ")}`);
    return inputs as Record<InputName<T>, Untyped>;
}

/** What an etcd member of `member` and `members` holds: the schema's type EtcdMemberSpec. */
export const MEMBER_FIELDS = { required: ["host", "name", "clientUrl", "peerUrl"], optional: ["listenPeerUrl", "dataDir"] } as const;

/** A member as EtcdMember takes it, with the defaults the stack config gives (config.ts). */
function memberSpec(m: Untyped, what: string): EtcdMemberSpec {
    for (const k of MEMBER_FIELDS.required) {
        if (typeof m?.[k] !== "string" || m[k] === "")
            throw new InputError(`${what}: ${k} is required (${MEMBER_FIELDS.required.join(", ")})`);
    }
    // The member's own address is its client URL's host (its HostBase's address is an output, not known here).
    const defaults = etcdMemberDefaults(m.name, m.peerUrl, new URL(m.clientUrl).hostname);
    return {
        host: m.host,
        name: m.name,
        clientUrl: m.clientUrl,
        peerUrl: m.peerUrl,
        listenPeerUrl: m.listenPeerUrl ?? defaults.listenPeerUrl,
        dataDir: m.dataDir ?? defaults.dataDir,
    };
}

/** The Topology: the settings by the stack config's names, the five components per host out. */
async function topologyOf(name: string, inputs: pulumi.Inputs, own: pulumi.ComponentResourceOptions) {
    const type = "Topology";
    const at = (k: string) => `${type} ${name}: ${k}`;
    // Every setting known now (they shape the topology); the component validates them all, as the stack
    // config is: one error naming every bad setting.
    const input = inputsOf(type, name, inputs);
    const args: Record<string, unknown> = {};
    for (const k of INPUTS.Topology.optional)
        if (k !== "sshPrivateKey" && input[k] !== undefined && input[k] !== null) args[k] = await known(input[k], at(k));
    args.hosts = await known(input.hosts, at("hosts"));
    let r: Topology;
    try {
        r = new Topology(name, { ...(args as unknown as TopologyArgs), sshPrivateKey: input.sshPrivateKey }, own);
    } catch (e) {
        if (e instanceof ConfigError) throw new InputError(`${type} ${name}: ${e.message}`);
        throw e;
    }
    const state = {
        inventory: r.inventory,
        hostKeys: r.hostKeys,
        etcdClientEndpoints: r.etcdClientEndpoints,
        etcdClientTls: r.etcdClientTls,
        registryEndpoint: r.registryEndpoint,
        registryCaCert: r.registryCaCert,
        registryCredentials: r.registryCredentials,
    };
    return { r, state };
}

async function build(type: ComponentName, name: string, inputs: pulumi.Inputs, opts: pulumi.ComponentResourceOptions) {
    // dependsOn is folded into `after` (the components'), or into the Topology's own resources' options.
    if (type === "Topology") return topologyOf(name, inputs, { ...opts });
    const at = (k: string) => `${type} ${name}: ${k}`;
    const flag = (v: unknown, k: string) => known<boolean | undefined>(v, at(k));
    const str = (v: unknown, k: string) => known<string | undefined>(v, at(k));
    const common = inputs as Readonly<Record<(typeof COMMON)[number], Untyped>>;
    const driftCheck = await flag(common.driftCheck, "driftCheck");
    const after = () => afterOf(common.after, opts);
    // dependsOn is folded into `after`, which every step of the component waits for.
    const own: pulumi.ComponentResourceOptions = { ...opts, dependsOn: undefined };
    switch (type) {
        case "HostBase": {
            const input = inputsOf(type, name, inputs);
            const r = new HostBase(
                name,
                {
                    connection: input.connection,
                    privateKeyPath: await str(input.privateKeyPath, "privateKeyPath"),
                    sudo: await flag(input.sudo, "sudo"),
                    packageListsMaxAge: await known<number | undefined>(input.packageListsMaxAge, at("packageListsMaxAge")),
                    packages: await known<string[] | undefined>(input.packages, at("packages")),
                    after: await after(),
                    hostname: (await str(input.hostname, "hostname"))!,
                    fqdn: (await str(input.fqdn, "fqdn"))!,
                    hostsBlock: input.hostsBlock,
                    trustedCa: input.trustedCa,
                    scriptDir: await str(input.scriptDir, "scriptDir"),
                    driftCheck,
                },
                own,
            );
            return { r, state: { os: r.os, hostname: r.hostname, fqdn: r.fqdn } };
        }
        case "TimeSync": {
            const input = inputsOf(type, name, inputs);
            const impl = (await str(input.implementation, "implementation")) ?? "chrony";
            if (impl !== "chrony" && impl !== "ntp")
                throw new InputError(`${type} ${name}: implementation must be chrony or ntp, not ${impl}`);
            const host = hostOf(type, name, input.host);
            const r = new TimeSync(name, { host, implementation: impl, config: input.config, after: await after(), driftCheck }, own);
            return { r, state: { implementation: r.implementation } };
        }
        case "FirewallOff": {
            const input = inputsOf(type, name, inputs);
            const units = await known<string[] | undefined>(input.units, at("units"));
            const r = new FirewallOff(name, { host: hostOf(type, name, input.host), units, after: await after(), driftCheck }, own);
            return { r, state: { units: r.units } };
        }
        case "PrivateRegistry": {
            const input = inputsOf(type, name, inputs);
            const tls = await known<{ cert: string; key: string } | undefined>(input.tls, at("tls"));
            const r = new PrivateRegistry(
                name,
                {
                    host: hostOf(type, name, input.host),
                    serverName: (await str(input.serverName, "serverName"))!,
                    auth: await flag(input.auth, "auth"),
                    tls: tls && { cert: tls.cert, key: pulumi.secret(tls.key) },
                    user: await str(input.user, "user"),
                    storageDir: await str(input.storageDir, "storageDir"),
                    after: await after(),
                    driftCheck,
                },
                own,
            );
            return { r, state: { endpoint: r.endpoint, credentials: r.credentials } };
        }
        case "EtcdMember": {
            const input = inputsOf(type, name, inputs);
            const member = memberSpec(await known(input.member, at("member")), at("member"));
            const all = (await known<unknown[]>(input.members, at("members"))) ?? [];
            const members = all.map((m, i) => memberSpec(m, at(`members[${i}]`)));
            if (!members.some((m) => m.name === member.name))
                throw new InputError(`${at("members")} must include the member ${member.name}`);
            const tls = input.tls === undefined ? undefined : await known<Untyped>(input.tls, at("tls"));
            const r = new EtcdMember(
                name,
                {
                    host: hostOf(type, name, input.host),
                    member,
                    members,
                    clusterToken: input.clusterToken,
                    tls: tls && {
                        ca: tls.ca,
                        cert: tls.cert,
                        key: pulumi.secret(tls.key),
                        clientCert: tls.clientCert,
                        clientKey: pulumi.secret(tls.clientKey),
                    },
                    healthTimeout: await known<number | undefined>(input.healthTimeout, at("healthTimeout")),
                    after: await after(),
                    driftCheck,
                },
                own,
            );
            return { r, state: { name: r.name, clientUrl: r.clientUrl } };
        }
    }
}

/** The plugin's construct: one of the five components, or an error that names the input at fault. */
export async function construct(
    name: string,
    token: string,
    inputs: pulumi.Inputs,
    opts: pulumi.ComponentResourceOptions,
    version: string,
): Promise<provider.ConstructResult> {
    // The first construct comes before any reference to a component (a reference names one constructed earlier).
    registerComponents(version);
    const type = token.replace(/^host-topology:index:/, "") as ComponentName;
    if (!token.startsWith("host-topology:index:") || !COMPONENTS.includes(type))
        throw new Error(`host-topology provider: unknown component type ${token}`);
    const { r, state } = await build(type, name, inputs, opts);
    constructed.set(await (r.urn as unknown as OutputInternals<string>).promise(), r);
    return { urn: r.urn, state };
}
