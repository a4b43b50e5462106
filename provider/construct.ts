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
import { EtcdMember, type EtcdMemberSpec, type EtcdMemberTls, FirewallOff, HostBase, PrivateRegistry, TimeSync, Topology } from "../components/index.ts";
import { CONFIG_KEYS, ConfigError, etcdMemberDefaults } from "../components/config/index.ts";

export const COMPONENTS = ["HostBase", "TimeSync", "FirewallOff", "PrivateRegistry", "EtcdMember", "Topology"] as const;
export type ComponentName = (typeof COMPONENTS)[number];

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
    if (!(await o.isKnown)) throw new InputError(`${what} must be known when the program runs (not the output of a resource that does not exist yet)`);
    return await o.promise();
}

function hostOf(type: string, name: string, v: unknown): HostBase {
    if (!(v instanceof HostBase)) throw new InputError(`${type} ${name}: host must be a host-topology:index:HostBase of this program, e.g. host: \${master}`);
    return v;
}

/** `after` and the resource option dependsOn: components of this deployment as the objects, others by URN. */
async function afterOf(inputs: pulumi.Inputs, opts: pulumi.ComponentResourceOptions): Promise<pulumi.Resource[]> {
    const after = ((await known<unknown[]>(inputs.after, "after")) ?? []) as pulumi.Resource[];
    const deps = (Array.isArray(opts.dependsOn) ? opts.dependsOn : []) as pulumi.Resource[];
    const out: pulumi.Resource[] = [];
    for (const d of [...after, ...deps]) {
        if (!pulumi.Resource.isInstance(d)) throw new InputError(`after: ${JSON.stringify(d)} is not a resource`);
        const urn = await (d.urn as unknown as OutputInternals<string>).promise();
        out.push(constructed.get(urn) ?? d);
    }
    return out;
}

function required(type: string, name: string, inputs: pulumi.Inputs, keys: string[]): void {
    const missing = keys.filter((k) => inputs[k] === undefined || inputs[k] === null);
    if (missing.length > 0) throw new InputError(`${type} ${name}: missing ${missing.join(", ")}`);
}

/** A member as EtcdMember takes it, with the defaults the stack config gives (config.ts). */
function memberSpec(input: unknown, what: string): EtcdMemberSpec {
    const given = input as Partial<EtcdMemberSpec> | null | undefined;
    for (const k of ["host", "name", "clientUrl", "peerUrl"] as const) {
        if (typeof given?.[k] !== "string" || given[k] === "") throw new InputError(`${what}: ${k} is required (host, name, clientUrl, peerUrl)`);
    }
    const m = given as EtcdMemberSpec;
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

async function build(type: ComponentName, name: string, inputs: pulumi.Inputs, opts: pulumi.ComponentResourceOptions) {
    const flag = (k: string) => known<boolean | undefined>(inputs[k], `${type} ${name}: ${k}`);
    const str = (k: string) => known<string | undefined>(inputs[k], `${type} ${name}: ${k}`);
    const driftCheck = await flag("driftCheck");
    // dependsOn is folded into `after`, which every step of the component waits for.
    const own: pulumi.ComponentResourceOptions = { ...opts, dependsOn: undefined };
    switch (type) {
        case "Topology": {
            // The settings as the program's stack config names them, each known now: the component validates them
            // all, as the stack config is (one error naming every bad setting).
            const args: Record<string, unknown> = {};
            for (const k of CONFIG_KEYS) {
                if (k !== "sshPrivateKey" && inputs[k] !== undefined && inputs[k] !== null) args[k] = await known(inputs[k], `${type} ${name}: ${k}`);
            }
            if (args.hostsFrom !== undefined) throw new InputError(`${type} ${name}: hostsFrom is for the TypeScript program; give hosts (a StackReference's output in your program)`);
            let r: Topology;
            try {
                r = new Topology(name, { ...args, sshPrivateKey: inputs.sshPrivateKey }, own);
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
        case "HostBase": {
            required(type, name, inputs, ["connection", "hostname", "fqdn", "hostsBlock"]);
            const r = new HostBase(
                name,
                {
                    connection: inputs.connection,
                    privateKeyPath: await str("privateKeyPath"),
                    sudo: await flag("sudo"),
                    packageListsMaxAge: await known<number | undefined>(inputs.packageListsMaxAge, `${type} ${name}: packageListsMaxAge`),
                    packages: await known<string[] | undefined>(inputs.packages, `${type} ${name}: packages`),
                    after: await afterOf(inputs, opts),
                    hostname: (await str("hostname"))!,
                    fqdn: (await str("fqdn"))!,
                    hostsBlock: inputs.hostsBlock,
                    trustedCa: inputs.trustedCa,
                    scriptDir: await str("scriptDir"),
                    driftCheck,
                },
                own,
            );
            return { r, state: { os: r.os, hostname: r.hostname, fqdn: r.fqdn } };
        }
        case "TimeSync": {
            required(type, name, inputs, ["host", "config"]);
            const impl = (await str("implementation")) ?? "chrony";
            if (impl !== "chrony" && impl !== "ntp") throw new InputError(`${type} ${name}: implementation must be chrony or ntp, not ${impl}`);
            const r = new TimeSync(name, { host: hostOf(type, name, inputs.host), implementation: impl, config: inputs.config, after: await afterOf(inputs, opts), driftCheck }, own);
            return { r, state: { implementation: r.implementation } };
        }
        case "FirewallOff": {
            required(type, name, inputs, ["host"]);
            const units = await known<string[] | undefined>(inputs.units, `${type} ${name}: units`);
            const r = new FirewallOff(name, { host: hostOf(type, name, inputs.host), units, after: await afterOf(inputs, opts), driftCheck }, own);
            return { r, state: { units: r.units } };
        }
        case "PrivateRegistry": {
            required(type, name, inputs, ["host", "serverName"]);
            const tls = await known<{ cert: string; key: string } | undefined>(inputs.tls, `${type} ${name}: tls`);
            const r = new PrivateRegistry(
                name,
                {
                    host: hostOf(type, name, inputs.host),
                    serverName: (await str("serverName"))!,
                    auth: await flag("auth"),
                    tls: tls && { cert: tls.cert, key: pulumi.secret(tls.key) },
                    user: await str("user"),
                    storageDir: await str("storageDir"),
                    after: await afterOf(inputs, opts),
                    driftCheck,
                },
                own,
            );
            return { r, state: { endpoint: r.endpoint, credentials: r.credentials } };
        }
        case "EtcdMember": {
            required(type, name, inputs, ["host", "member", "members", "clusterToken"]);
            const member = memberSpec(await known(inputs.member, `${type} ${name}: member`), `${type} ${name}: member`);
            const members = ((await known<unknown[]>(inputs.members, `${type} ${name}: members`)) ?? []).map((m, i) => memberSpec(m, `${type} ${name}: members[${i}]`));
            if (!members.some((m) => m.name === member.name)) throw new InputError(`${type} ${name}: members must include the member ${member.name}`);
            const tls = inputs.tls === undefined ? undefined : await known<EtcdMemberTls>(inputs.tls, `${type} ${name}: tls`);
            const r = new EtcdMember(
                name,
                {
                    host: hostOf(type, name, inputs.host),
                    member,
                    members,
                    clusterToken: inputs.clusterToken,
                    tls: tls && { ca: tls.ca, cert: tls.cert, key: pulumi.secret(tls.key), clientCert: tls.clientCert, clientKey: pulumi.secret(tls.clientKey) },
                    healthTimeout: await known<number | undefined>(inputs.healthTimeout, `${type} ${name}: healthTimeout`),
                    after: await afterOf(inputs, opts),
                    driftCheck,
                },
                own,
            );
            return { r, state: { name: r.name, clientUrl: r.clientUrl } };
        }
    }
}

/** The plugin's construct: one of the five components, or an error that names the input at fault. */
export async function construct(name: string, token: string, inputs: pulumi.Inputs, opts: pulumi.ComponentResourceOptions, version: string): Promise<provider.ConstructResult> {
    // The first construct comes before any reference to a component (a reference names one constructed earlier).
    registerComponents(version);
    const type = token.replace(/^host-topology:index:/, "") as ComponentName;
    if (!token.startsWith("host-topology:index:") || !COMPONENTS.includes(type)) throw new Error(`host-topology provider: unknown component type ${token}`);
    const { r, state } = await build(type, name, inputs, opts);
    constructed.set(await (r.urn as unknown as OutputInternals<string>).promise(), r);
    return { urn: r.urn, state };
}
