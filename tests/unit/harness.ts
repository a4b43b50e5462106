// Pulumi mocks that record every registered resource with its inputs, parent, explicit dependencies and aliases.
// `dependsOn` is not visible in the mocks' newResource args, so the mock monitor's registerResource
// request is wrapped to read it. Import this before any program code.
import * as pulumi from "@pulumi/pulumi";

/** A recorded input: resources of every type are recorded, and each test reads the properties of the type it checks. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- inputs of every resource type, read by tests as the type they check
export type RecordedValue = any;

export interface Recorded {
    type: string;
    name: string;
    urn: string;
    parent: string;
    /** Inputs with secrets unwrapped. */
    inputs: Record<string, RecordedValue>;
    /** Raw serialized inputs (secrets still carry the secret signature). */
    rawInputs: Record<string, RecordedValue>;
    dependencies: string[];
    /** Aliases as the engine receives them: an old URN, or a spec whose empty fields mean this resource's own. */
    aliases: AliasSpec[];
    /** Outputs the engine is asked to keep secret. */
    additionalSecretOutputs: string[];
}

export interface AliasSpec {
    urn: string;
    spec?: { name: string; type: string; stack: string; project: string; parenturn: string; noparent: boolean };
}

export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
export const recorded: Recorded[] = [];

export function resetRecorded(): void {
    recorded.length = 0;
}

/** Whether the serialized value, or anything inside it, is marked secret. */
export function containsSecret(v: unknown): boolean {
    if (v === null || typeof v !== "object") return false;
    if ((v as Record<string, unknown>)["4dabf18193072939515e22adb298388d"] === SECRET_SIG) return true;
    return Object.values(v as Record<string, unknown>).some(containsSecret);
}

/** The mock monitor's registerResource, which setupMocks wraps: the request and callback of the SDK's monitor client. */
type RegisterResource = NonNullable<ReturnType<typeof pulumi.runtime.getMonitor>>["registerResource"];
interface MockMonitor {
    registerResource(req: Parameters<RegisterResource>[0], callback: Parameters<RegisterResource>[3]): void;
}

export function setupMocks(opts: { preview?: boolean; project?: string; stack?: string } = {}): void {
    pulumi.runtime.setMocks(
        {
            newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
                const state: Record<string, unknown> = { ...args.inputs };
                if (args.type === "command:remote:Command") {
                    state.stdout = "";
                    state.stderr = "";
                }
                if (args.type === "host-topology:index:HostScripts") state.os = "debian 12";
                if (args.type === "random:index/randomPassword:RandomPassword") {
                    state.result = "mock-password-0123456789";
                    state.bcryptHash = "$2a$10$mockmockmockmockmockmuZ0z9wC1z2Jm8Xq8c3m0O4H9bLx4i6K";
                }
                if (args.type === "random:index/randomString:RandomString") state.result = "mocktoken0123456789a";
                if (args.type === "random:index/randomBytes:RandomBytes") state.hex = "00".repeat(args.inputs.length ?? 32);
                if (args.type === "host-topology:index:Pki") {
                    const ids: string[] = (args.inputs.certs ?? []).map((c: { id: string }) => c.id);
                    Object.assign(state, {
                        caCert: `mock-ca-cert ${args.name}`,
                        caKey: `mock-ca-key ${args.name}`,
                        issued: Object.fromEntries(ids.map((n) => [n, `mock-cert ${n}`])),
                        keys: Object.fromEntries(ids.map((n) => [n, `mock-key ${n}`])),
                    });
                }
                return { id: `${args.name}-id`, state };
            },
            call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
                throw new Error(`unexpected provider call ${args.token}`);
            },
        },
        opts.project ?? "host-topology",
        opts.stack ?? "test",
        opts.preview ?? false,
    );
    const monitor = pulumi.runtime.getMonitor() as unknown as MockMonitor;
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req, callback) => {
        const rawInputs = req.getObject()?.toJavaScript() ?? {};
        original(req, (err, resp) => {
            if (!err) {
                recorded.push({
                    type: req.getType(),
                    name: req.getName(),
                    urn: resp.getUrn(),
                    parent: req.getParent(),
                    inputs: unwrapSecrets(rawInputs),
                    rawInputs,
                    dependencies: req.getDependenciesList(),
                    aliases: req.getAliasesList().map((a) => a.toObject()),
                    additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
                });
            }
            callback(err, resp);
        });
    };
}

/** Serialized values with the secrets replaced by their plain values. */
export function unwrapSecrets(v: unknown): RecordedValue {
    if (Array.isArray(v)) return v.map(unwrapSecrets);
    const o = v as Record<string, unknown>;
    if (v && typeof v === "object" && !(v instanceof Promise) && !o.__pulumiAsset) {
        if (o["4dabf18193072939515e22adb298388d"] === SECRET_SIG) return unwrapSecrets(o.value);
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
    }
    return v;
}

/** Resolves an Output's value in tests. */
export function valueOf<T>(o: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => o.apply((v) => resolve(v)));
}

/** Waits until every resource registration in flight has reached the monitor. */
export async function settle(): Promise<void> {
    let last = -1;
    let stable = 0;
    while (stable < 5) {
        await new Promise((r) => setTimeout(r, 20));
        stable = recorded.length === last ? stable + 1 : 0;
        last = recorded.length;
    }
}
