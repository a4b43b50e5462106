// provider/schema.json against the two other places that say what the plugin's resources take: the TypeScript types
// (the components' Args, the custom resources' props in contract/) and what provider/construct.ts reads. The schema is
// kept by hand, so a property added to one of them and not to the others fails here, as does a property without a
// description.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import ts from "typescript";
import { recorded, resetRecorded, settle, setupMocks } from "./harness.ts";
setupMocks();
import { COMPONENTS, INPUTS, MEMBER_FIELDS, construct, registerComponents } from "../../provider/construct.ts";

const ROOT = path.join(import.meta.dirname, "..", "..");
const schema = JSON.parse(fs.readFileSync(path.join(ROOT, "provider", "schema.json"), "utf8"));
const TOKEN = "host-topology:index:";

interface Prop {
    type?: string;
    $ref?: string;
    items?: Prop;
    additionalProperties?: Prop;
    description?: string;
    default?: unknown;
    secret?: boolean;
}
type Props = Record<string, Prop>;

/** A property as compared: its kind (an array's with its items', e.g. array<string>) and whether it must be given. */
interface Shape {
    kind: string;
    required: boolean;
}

// ---- the schema's side ----

function schemaKind(p: Prop): string {
    if (p.$ref === "pulumi.json#/Any") return "any";
    if (p.$ref) return "object";
    if (p.type === "integer" || p.type === "number") return "number";
    if (p.type === "array") return `array<${p.items ? schemaKind(p.items) : "any"}>`;
    return p.type ?? "any";
}

/**
 * A property the TypeScript type requires may be optional in the schema when the schema says what it is without one
 * (the program always sets it, e.g. HostKey's verify): a `default`, or "Default:" in its description.
 */
const hasDefault = (p: Prop) => p.default !== undefined || /\bDefault:/.test(p.description ?? "");

function schemaShapes(props: Props, required: readonly string[] | undefined): Record<string, Shape> {
    return Object.fromEntries(Object.entries(props).map(([k, p]) => [k, { kind: schemaKind(p), required: (required ?? []).includes(k) }]));
}

// ---- the TypeScript side, read with the compiler ----

const FILES = [
    "contract/resources.ts",
    "contract/connection.ts",
    "components/hostBase.ts",
    "components/timeSync.ts",
    "components/firewallOff.ts",
    "components/privateRegistry.ts",
    "components/etcdMember.ts",
    "components/config/types.ts",
    "components/step.ts",
    "components/topology.ts",
].map((f) => path.join(ROOT, f));
const config = ts.parseJsonConfigFileContent(ts.readConfigFile(path.join(ROOT, "tsconfig.json"), ts.sys.readFile).config, ts.sys, ROOT);
const program = ts.createProgram(FILES, { ...config.options, noEmit: true });
const checker = program.getTypeChecker();

/** The interface, type alias or class `name` declared in `file` (relative to the checkout). */
function declared(file: string, name: string): ts.Type {
    const sf = program.getSourceFile(path.join(ROOT, file));
    if (!sf) throw new Error(`${file} is not in the program`);
    for (const s of sf.statements) {
        if ((ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s) || ts.isClassDeclaration(s)) && s.name?.text === name) {
            return ts.isClassDeclaration(s) ? checker.getTypeAtLocation(s) : checker.getTypeAtLocation(s.name);
        }
    }
    throw new Error(`${file} declares no ${name}`);
}

const isNullish = (t: ts.Type) => (t.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null | ts.TypeFlags.Void)) !== 0;
const nameOf = (t: ts.Type) => (t.aliasSymbol ?? t.getSymbol())?.getName();

/** The value a property holds: without undefined, and out of pulumi's Input, Output and Promise. */
function valueType(t: ts.Type): ts.Type {
    if (t.isUnion()) {
        const rest = t.types.filter((u) => !isNullish(u) && !["Promise", "OutputInstance"].includes(nameOf(u) ?? ""));
        // `boolean` is the union true | false, and a union of string literals is a string.
        if (rest.length > 1 && rest.every((u) => u.flags & ts.TypeFlags.BooleanLiteral)) return checker.getBooleanType();
        if (rest.length > 1 && rest.every((u) => u.flags & ts.TypeFlags.StringLike)) return checker.getStringType();
        return rest.length === 1 ? valueType(rest[0]) : t;
    }
    if (t.isIntersection()) {
        const out = t.types.find((u) => nameOf(u) === "OutputInstance");
        if (out) return valueType(checker.getTypeArguments(out as ts.TypeReference)[0]);
    }
    if (["Promise", "OutputInstance", "Output"].includes(nameOf(t) ?? "") && (t as ts.TypeReference).target) {
        return valueType(checker.getTypeArguments(t as ts.TypeReference)[0]);
    }
    return t;
}

function tsKind(t: ts.Type): string {
    const v = valueType(t);
    if (v.flags & ts.TypeFlags.Any) return "any";
    if (v.flags & ts.TypeFlags.StringLike) return "string";
    if (v.flags & ts.TypeFlags.NumberLike) return "number";
    if (v.flags & ts.TypeFlags.BooleanLike) return "boolean";
    if (checker.isArrayType(v) || checker.isTupleType(v)) {
        const item = checker.getTypeArguments(v as ts.TypeReference)[0];
        // An array of resources (`after`) is Any in the schema: a reference to any resource.
        const itemKind = tsKind(item);
        return `array<${itemKind === "object" && isResource(item) ? "any" : itemKind}>`;
    }
    return "object";
}

const isResource = (t: ts.Type) => checker.getPropertiesOfType(valueType(t)).some((p) => p.getName() === "urn");

/** Whether a value of `t` may be undefined, also inside an Output (PrivateRegistry's credentials). */
function mayBeUndefined(t: ts.Type): boolean {
    if (t.isUnion()) return t.types.some((u) => isNullish(u) || mayBeUndefined(u));
    const out = t.isIntersection() ? t.types.find((u) => nameOf(u) === "OutputInstance") : nameOf(t) === "OutputInstance" ? t : undefined;
    return out !== undefined && mayBeUndefined(checker.getTypeArguments(out as ts.TypeReference)[0]);
}

/** A property is required when it is not optional and its value cannot be undefined. */
function tsShapes(t: ts.Type): Record<string, Shape> {
    return Object.fromEntries(
        checker.getPropertiesOfType(valueType(t)).map((p) => {
            const pt = checker.getTypeOfSymbol(p);
            const optional = (p.flags & ts.SymbolFlags.Optional) !== 0 || mayBeUndefined(pt);
            return [p.getName(), { kind: tsKind(pt), required: !optional }];
        }),
    );
}

/** The type of property `prop` of `t`. */
function propType(t: ts.Type, prop: string): ts.Type {
    const p = checker.getPropertyOfType(valueType(t), prop);
    if (!p) throw new Error(`no property ${prop}`);
    return checker.getTypeOfSymbol(p);
}

/**
 * The differences between the schema's properties and the TypeScript type's, one line each. `leftOut`: TypeScript
 * properties the schema leaves out on purpose; `compareRequired` false: kinds only (a custom resource's outputs).
 */
function differences(
    props: Props,
    required: readonly string[] | undefined,
    t: ts.Type,
    leftOut: readonly string[] = [],
    compareRequired = true,
) {
    const want = schemaShapes(props, required);
    const have = tsShapes(t);
    const out: string[] = [];
    for (const k of Object.keys(have)) {
        if (!(k in want) && !leftOut.includes(k)) out.push(`${k}: in the TypeScript type, not in the schema`);
    }
    for (const [k, w] of Object.entries(want)) {
        const h = have[k];
        if (!h) {
            out.push(`${k}: in the schema, not in the TypeScript type`);
            continue;
        }
        if (h.kind !== w.kind) out.push(`${k}: ${w.kind} in the schema, ${h.kind} in TypeScript`);
        if (!compareRequired) continue;
        if (w.required && !h.required) out.push(`${k}: required in the schema, optional in TypeScript`);
        if (!w.required && h.required && !hasDefault(props[k]))
            out.push(`${k}: optional in the schema without a default, required in TypeScript`);
    }
    return out;
}

// What each resource and type of the schema is, in TypeScript. The custom resources take the properties their state
// holds (contract/resources.ts); a component, its Args.
const RESOURCE_INPUTS: Record<string, () => ts.Type> = {
    HostCheck: () => declared("contract/resources.ts", "CheckProps"),
    HostKey: () => declared("contract/resources.ts", "HostKeyProps"),
    HostScripts: () => declared("contract/resources.ts", "ScriptsProps"),
    Pki: () => declared("contract/resources.ts", "PkiInputs"),
    HostBase: () => declared("components/hostBase.ts", "HostBaseArgs"),
    TimeSync: () => declared("components/timeSync.ts", "TimeSyncArgs"),
    FirewallOff: () => declared("components/firewallOff.ts", "FirewallOffArgs"),
    PrivateRegistry: () => declared("components/privateRegistry.ts", "PrivateRegistryArgs"),
    EtcdMember: () => declared("components/etcdMember.ts", "EtcdMemberArgs"),
    Topology: () => declared("components/topology.ts", "TopologyArgs"),
};
// HostScripts' outputs are what provider/hostScripts.ts makes of its inputs (outsOf), with no type of their own.
const RESOURCE_OUTPUTS: Record<string, () => ts.Type> = {
    HostCheck: () => declared("contract/resources.ts", "CheckProps"),
    HostKey: () => declared("contract/resources.ts", "HostKeyOuts"),
    Pki: () => declared("contract/resources.ts", "PkiOutputs"),
    HostBase: () => declared("components/hostBase.ts", "HostBase"),
    TimeSync: () => declared("components/timeSync.ts", "TimeSync"),
    FirewallOff: () => declared("components/firewallOff.ts", "FirewallOff"),
    PrivateRegistry: () => declared("components/privateRegistry.ts", "PrivateRegistry"),
    EtcdMember: () => declared("components/etcdMember.ts", "EtcdMember"),
    Topology: () => declared("components/topology.ts", "Topology"),
};
// The HostBase's connection is @pulumi/command's: the schema leaves out what the plugin's connections cannot use.
const NOT_FOR_THE_PLUGIN = ["password", "privateKeyPassword", "agentSocketPath"];
const TYPES: Record<string, { ts: () => ts.Type; leftOut?: readonly string[] }> = {
    Connection: { ts: () => declared("components/step.ts", "Connection"), leftOut: NOT_FOR_THE_PLUGIN },
    ProxyConnection: {
        ts: () => propType(declared("components/step.ts", "Connection"), "proxy"),
        // The plugin dials the bastion with the host's connection's retry settings.
        leftOut: [...NOT_FOR_THE_PLUGIN, "dialErrorLimit", "perDialTimeout"],
    },
    SshConnection: { ts: () => declared("contract/connection.ts", "CheckConnection") },
    SshProxy: { ts: () => declared("contract/connection.ts", "SshProxy") },
    HostKeyProxy: { ts: () => propType(declared("contract/resources.ts", "HostKeyProps"), "proxy") },
    EtcdMemberSpec: { ts: () => declared("components/config/types.ts", "EtcdMemberSpec") },
    RegistryTls: { ts: () => propType(declared("components/privateRegistry.ts", "PrivateRegistryArgs"), "tls") },
    EtcdTls: { ts: () => declared("components/etcdMember.ts", "EtcdMemberTls") },
    RegistryCredentials: { ts: () => propType(declared("components/privateRegistry.ts", "PrivateRegistry"), "credentials") },
    CertRequest: { ts: () => declared("contract/resources.ts", "CertRequest") },
    Host: { ts: () => declared("components/topology.ts", "TopologyHost") },
    TopologyEtcdMember: { ts: () => declared("components/topology.ts", "TopologyEtcdMember") },
    TopologyProxy: { ts: () => declared("components/topology.ts", "TopologyProxy") },
    InventoryEntry: { ts: () => declared("components/topology.ts", "HostInventoryEntry") },
    EtcdClientTls: { ts: () => propType(declared("components/topology.ts", "BuiltTopology"), "etcdClientTls") },
};

interface SchemaResource {
    isComponent?: boolean;
    description?: string;
    inputProperties: Props;
    requiredInputs?: string[];
    properties: Props;
    required?: string[];
}
const resources = schema.resources as Record<string, SchemaResource>;
const types = schema.types as Record<string, { description?: string; properties: Props; required?: string[] }>;
const nameOfToken = (tok: string) => tok.slice(TOKEN.length);

describe("provider schema: the same inputs as the TypeScript types and construct, every property described", () => {
    it("names every resource and type this test knows, and every $ref resolves", () => {
        expect(Object.keys(resources).map(nameOfToken).sort()).to.deep.equal(Object.keys(RESOURCE_INPUTS).sort());
        expect(Object.keys(types).map(nameOfToken).sort()).to.deep.equal(Object.keys(TYPES).sort());
        const refs = JSON.stringify(schema).match(/"\$ref":"#\/[^"]*"/g) ?? [];
        for (const r of refs) {
            const [, kind, tok] = /#\/(types|resources)\/([^"]*)/.exec(r)!;
            expect(schema[kind], r).to.have.property(tok);
        }
    });

    for (const [name, tsType] of Object.entries(RESOURCE_INPUTS)) {
        it(`${name}: inputProperties and requiredInputs as the TypeScript type`, () => {
            const r = resources[TOKEN + name];
            expect(differences(r.inputProperties, r.requiredInputs, tsType())).to.deep.equal([]);
        });
    }

    for (const [name, tsType] of Object.entries(RESOURCE_OUTPUTS)) {
        it(`${name}: properties (outputs) as the TypeScript type`, () => {
            const r = resources[TOKEN + name];
            // A component's class has more public fields than its outputs; a custom resource's state has no required list.
            const leftOut = r.isComponent ? Object.keys(tsShapes(tsType())).filter((k) => !(k in r.properties)) : [];
            expect(differences(r.properties, r.required, tsType(), leftOut, r.isComponent === true)).to.deep.equal([]);
        });
    }

    for (const [name, t] of Object.entries(TYPES)) {
        it(`type ${name}: its properties and required list as the TypeScript type`, () => {
            const s = types[TOKEN + name];
            expect(differences(s.properties, s.required, t.ts(), t.leftOut)).to.deep.equal([]);
        });
    }

    it("construct reads the components' inputProperties, and refuses to go without their requiredInputs", () => {
        expect([...COMPONENTS].sort()).to.deep.equal(
            Object.keys(resources)
                .filter((t) => resources[t].isComponent)
                .map(nameOfToken)
                .sort(),
        );
        for (const c of COMPONENTS) {
            const r = resources[TOKEN + c];
            expect([...INPUTS[c].required, ...INPUTS[c].optional].sort(), c).to.deep.equal(Object.keys(r.inputProperties).sort());
            expect([...INPUTS[c].required].sort(), c).to.deep.equal([...(r.requiredInputs ?? [])].sort());
        }
        const member = types[`${TOKEN}EtcdMemberSpec`];
        expect([...MEMBER_FIELDS.required, ...MEMBER_FIELDS.optional].sort()).to.deep.equal(Object.keys(member.properties).sort());
        expect([...MEMBER_FIELDS.required].sort()).to.deep.equal([...(member.required ?? [])].sort());
    });

    it("construct reads every input the schema declares (objects' too) and returns the schema's outputs as its state", async () => {
        registerComponents("0.2.0");
        resetRecorded();
        const read = new Map<string, Set<string>>();
        /** `v`, recording under `what` the properties construct reads of it (not the SDK's probes: is it an Output, a promise). */
        const watched = <T extends object>(what: string, v: T): T => {
            read.set(what, new Set());
            const probe = (k: string) => k === "then" || k.startsWith("__");
            return new Proxy(v, {
                get: (o: T, k) => (
                    typeof k === "string" && !probe(k) && read.get(what)!.add(k),
                    (o as Record<string | symbol, unknown>)[k]
                ),
            });
        };
        const built: Record<string, string[]> = {};
        const run = async (type: string, inputs: Record<string, unknown>) => {
            const r = await construct(`x-${type}`, TOKEN + type, watched(type, inputs), {}, "0.2.0");
            built[type] = Object.keys(r.state ?? {}).sort();
            return r;
        };
        const hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEN0WfoGVumrPR/1FAM8fbWxdv/4UK8lF6ox8J/Jz1Er";
        const base = await run("HostBase", {
            connection: { host: "192.168.100.2", privateKey: "key", hostKey },
            privateKeyPath: "id_ed25519",
            hostname: "master",
            fqdn: "master.danran.com",
            hostsBlock: "192.168.100.2 master.danran.com master\n",
            sudo: false,
            packageListsMaxAge: 3600,
            packages: ["chrony"],
            trustedCa: "CA",
            scriptDir: "/usr/local/lib/host-topology",
            after: [],
            driftCheck: true,
        });
        const { deserializeProperty } = (await import("@pulumi/pulumi/runtime/rpc.js")) as { deserializeProperty: (v: unknown) => unknown };
        const urn = await (base.urn as unknown as { promise(): Promise<string> }).promise();
        const host = deserializeProperty({
            "4dabf18193072939515e22adb298388d": "5cf8f73096256a8f31e491e813e4eb8e",
            urn,
            packageVersion: "0.2.0",
        });
        const common = { host, after: [], driftCheck: true };
        await run("TimeSync", { ...common, implementation: "chrony", config: "server a iburst\n" });
        await run("FirewallOff", { ...common, units: ["ufw"] });
        const registryTls = watched("PrivateRegistry.tls", { cert: "CERT", key: "KEY" });
        const registry = { serverName: "registry.danran.com", auth: true, tls: registryTls, user: "registry", storageDir: "/srv" };
        await run("PrivateRegistry", { ...common, ...registry });
        const member = watched("EtcdMember.member", {
            host: "master",
            name: "etcd1",
            clientUrl: "https://192.168.100.2:2379",
            peerUrl: "https://etcd1:2380",
            listenPeerUrl: "https://192.168.100.2:2380",
            dataDir: "/var/lib/etcd/etcd1.etcd",
        });
        const etcdTls = watched("EtcdMember.tls", { ca: "CA", cert: "C", key: "K", clientCert: "CC", clientKey: "CK" });
        await run("EtcdMember", { ...common, member, members: [member], clusterToken: "t", tls: etcdTls, healthTimeout: 300 });
        // Every setting the stack config has (values as TopologyArgs takes them).
        await run("Topology", {
            hosts: [{ name: "master", address: "192.168.100.2", roles: ["master", "etcd", "registry"], hostKey }],
            domain: "danran.com",
            sshUser: "root",
            sshPort: 22,
            sshPrivateKey: "key",
            sshPrivateKeyPath: "",
            sshDialErrorLimit: 30,
            sshPerDialTimeout: 10,
            sshHostKeyPolicy: "strict",
            sshKnownHostsPath: "",
            sshProxy: { host: "192.168.100.2", hostKey },
            packageListsMaxAge: "1h",
            scriptDir: "/usr/local/lib/host-topology",
            timeImplementation: "chrony",
            timeServers: ["0.pool.ntp.org"],
            timeServeFromMaster: true,
            firewallUnits: ["ufw"],
            registryServerName: "",
            registryAuth: true,
            registryTls: true,
            registryUser: "registry",
            registryStorageDir: "/var/lib/registry",
            etcdMembers: [{ host: "master" }],
            etcdTls: true,
            driftChecks: true,
        });
        await settle();
        expect(recorded.length).to.be.greaterThan(0);

        const readOf = (what: string) => [...(read.get(what) ?? [])].sort();
        for (const c of COMPONENTS) {
            expect(readOf(c), `${c}: inputs read`).to.deep.equal(Object.keys(resources[TOKEN + c].inputProperties).sort());
            expect(built[c], `${c}: state`).to.deep.equal(Object.keys(resources[TOKEN + c].properties).sort());
        }
        expect(readOf("EtcdMember.member")).to.deep.equal(Object.keys(types[`${TOKEN}EtcdMemberSpec`].properties).sort());
        expect(readOf("EtcdMember.tls")).to.deep.equal(Object.keys(types[`${TOKEN}EtcdTls`].properties).sort());
        expect(readOf("PrivateRegistry.tls")).to.deep.equal(Object.keys(types[`${TOKEN}RegistryTls`].properties).sort());
    });

    it("no default the SDK generators cannot write: gen-sdk's Python emits a multi-line string as a broken literal", () => {
        const multiLine = (JSON.stringify(schema).match(/"default":"(?:[^"\\]|\\.)*\\n(?:[^"\\]|\\.)*"/g) ?? []).map((d) => d.slice(0, 60));
        expect(multiLine).to.deep.equal([]);
    });

    it("describes every resource, type and property; a default is said in the description too", () => {
        const missing: string[] = [];
        const check = (where: string, props: Props) => {
            for (const [k, p] of Object.entries(props ?? {})) {
                if (!p.description?.trim()) missing.push(`${where}.${k}: no description`);
                const said = /\bDefault:/.test(p.description ?? "");
                if (p.default !== undefined && !said) missing.push(`${where}.${k}: default ${JSON.stringify(p.default)} not described`);
            }
        };
        for (const [tok, r] of Object.entries(resources)) {
            if (!r.description?.trim()) missing.push(`${tok}: no description`);
            check(`${tok} inputProperties`, r.inputProperties);
            check(`${tok} properties`, r.properties);
        }
        for (const [tok, t] of Object.entries(types)) {
            if (!t.description?.trim()) missing.push(`${tok}: no description`);
            check(tok, t.properties);
        }
        expect(missing).to.deep.equal([]);
    });
});
