// The host-topology provider plugin: HostCheck, HostKey, Pki and HostScripts as custom resources of the engine (instead of Node
// dynamic resources, which keep their serialized code in the state). The engine starts it from PulumiPlugin.yaml
// (runtime: nodejs) with the compiled JS (package.json's main) and talks gRPC to it; one process per deployment
// holds every SSH connection of the drift checks.
import type * as pulumi from "@pulumi/pulumi";
import * as provider from "@pulumi/pulumi/provider/index.js";
import { hostCheckOps } from "./hostCheck.ts";
import { hostKeyOps } from "./hostKey.ts";
import { pkiOps } from "./pki.ts";
import { hostScriptsOps } from "./hostScripts.ts";
import { type Props, type ResourceOps } from "./ops.ts";
import { type PluginResource, SECRET_OUTPUTS, typeToken } from "../contract/resources.ts";

const OPS: Record<PluginResource, ResourceOps> = { HostCheck: hostCheckOps, HostKey: hostKeyOps, Pki: pkiOps, HostScripts: hostScriptsOps };
/** type token -> the resource's operations and the outputs that are secret. */
const RESOURCES: Record<string, { ops: ResourceOps; secret: readonly string[] }> = Object.fromEntries(
    (Object.keys(OPS) as PluginResource[]).map((t) => [typeToken(t), { ops: OPS[t], secret: SECRET_OUTPUTS[t] }]),
);

// The 3.248 Node provider server hands over the request's Struct as is: a secret arrives as this wrapper (and must be
// returned as one to stay secret), an unknown value of a preview as this string.
const SIG = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

const isSecret = (v: unknown): v is { value: unknown } =>
    v !== null && typeof v === "object" && (v as Record<string, unknown>)[SIG] === SECRET_SIG;
/** A deep copy with every secret wrapper replaced by its value, and without a dynamic resource's `__provider`. */
export function unwrap(v: unknown): Props {
    if (isSecret(v)) return unwrap(v.value);
    if (Array.isArray(v)) return v.map(unwrap);
    if (v !== null && typeof v === "object")
        return Object.fromEntries(
            Object.entries(v)
                .filter(([k]) => k !== "__provider")
                .map(([k, x]) => [k, unwrap(x)]),
        );
    return v;
}
export function hasUnknown(v: unknown): boolean {
    if (v === UNKNOWN) return true;
    if (Array.isArray(v)) return v.some(hasUnknown);
    if (v !== null && typeof v === "object") return Object.values(v).some(hasUnknown);
    return false;
}
/** The outputs as the engine gets them: the type's secret properties wrapped. */
export function wire(type: string, outs: Record<string, Props>): Record<string, Props> {
    const secret = new Set(RESOURCES[type].secret);
    const isSecretOut = (k: string, v: unknown) => v !== undefined && secret.has(k) && !(k === "connection" && !keyIn(v));
    return Object.fromEntries(
        Object.entries(outs)
            .filter(([k]) => k !== "__provider")
            .map(([k, v]) => [k, isSecretOut(k, v) ? { [SIG]: SECRET_SIG, value: v } : v]),
    );
}
/** A connection that holds a private key (one with privateKeyPath holds only where to read it, and is plain). */
export const keyIn = (c: unknown): boolean => {
    const k = c as { privateKey?: string; privateKeyPath?: string; proxy?: { privateKey?: string } } | null | undefined;
    return !(k && typeof k === "object" && !k.privateKey && !k.proxy?.privateKey && k.privateKeyPath);
};
function typeOf(urn: string): string {
    const t = urn.split("::")[2]?.split("$").pop() ?? "";
    if (!RESOURCES[t]) throw new Error(`host-topology provider: unknown resource type ${t}`);
    return t;
}

export class HostTopologyProvider implements provider.Provider {
    readonly version: string;
    readonly schema: string;
    constructor(version: string, schema: string) {
        this.version = version;
        this.schema = schema;
    }

    async check(urn: string, _olds: Props, news: Props): Promise<provider.CheckResult> {
        typeOf(urn);
        return { inputs: news, failures: [] };
    }

    async diff(id: string, urn: string, olds: Props, news: Props): Promise<provider.DiffResult> {
        const type = typeOf(urn);
        // State moved here from the dynamic resource (an alias) still holds its serialized code: one update drops it.
        const migrated = "__provider" in (olds ?? {});
        const n = unwrap(news);
        if (hasUnknown(n)) return { changes: true, replaces: [] };
        const d = await RESOURCES[type].ops.diff(id, unwrap(olds), n);
        return { changes: migrated || d.changes !== false, replaces: d.replaces ?? [], deleteBeforeReplace: d.deleteBeforeReplace };
    }

    async create(urn: string, news: Props): Promise<provider.CreateResult> {
        const type = typeOf(urn);
        const r = await RESOURCES[type].ops.create(unwrap(news));
        return { id: r.id, outs: wire(type, r.outs ?? {}) };
    }

    async read(id: string, urn: string, props?: Props): Promise<provider.ReadResult> {
        const type = typeOf(urn);
        const ops = RESOURCES[type].ops;
        if (!ops.read) return { id, props };
        const r = await ops.read(id, unwrap(props));
        return { id: r.id ?? id, props: wire(type, r.props ?? {}) };
    }

    async update(id: string, urn: string, olds: Props, news: Props): Promise<provider.UpdateResult> {
        const type = typeOf(urn);
        const ops = RESOURCES[type].ops;
        const r = ops.update ? await ops.update(id, unwrap(olds), unwrap(news)) : { outs: unwrap(news) };
        return { outs: wire(type, r.outs ?? {}) };
    }

    /** HostBase, TimeSync, FirewallOff, PrivateRegistry and EtcdMember for programs in other languages (construct.ts). */
    async construct(
        name: string,
        type: string,
        inputs: pulumi.Inputs,
        options: pulumi.ComponentResourceOptions,
    ): Promise<provider.ConstructResult> {
        // Loaded on the first construct: the components need the Pulumi SDK's root module, which a plugin serving only
        // custom resources (a TypeScript program) never loads (its start is on the path of every preview).
        const { construct } = await import("./construct.ts");
        return construct(name, type, inputs, options, this.version);
    }

    async delete(id: string, urn: string, props: Props): Promise<void> {
        const type = typeOf(urn);
        await RESOURCES[type].ops.delete?.(id, unwrap(props));
    }
}
