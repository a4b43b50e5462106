// Pulumi mocks that record every registered resource with its inputs, parent, explicit dependencies and aliases.
// `dependsOn` is not visible in the mocks' newResource args, so the mock monitor's registerResource
// request is wrapped to read it. Import this before any program code.
import * as pulumi from "@pulumi/pulumi";

export interface Recorded {
    type: string;
    name: string;
    urn: string;
    parent: string;
    /** Inputs with secrets unwrapped. */
    inputs: Record<string, any>;
    /** Raw serialized inputs (secrets still carry the secret signature). */
    rawInputs: Record<string, any>;
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

export function setupMocks(opts: { preview?: boolean; project?: string; stack?: string } = {}): void {
    pulumi.runtime.setMocks(
        {
            newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: any } {
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
            call(args: pulumi.runtime.MockCallArgs): Record<string, any> {
                throw new Error(`unexpected provider call ${args.token}`);
            },
        },
        opts.project ?? "host-topology",
        opts.stack ?? "test",
        opts.preview ?? false,
    );
    const monitor = (pulumi.runtime as any).getMonitor();
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, callback: any) => {
        const rawInputs = req.getObject()?.toJavaScript() ?? {};
        original(req, (err: any, resp: any) => {
            if (!err) {
                recorded.push({
                    type: req.getType(),
                    name: req.getName(),
                    urn: resp.getUrn(),
                    parent: req.getParent(),
                    inputs: unwrapSecrets(rawInputs),
                    rawInputs,
                    dependencies: req.getDependenciesList(),
                    aliases: req.getAliasesList().map((a: any) => a.toObject()),
                    additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
                });
            }
            callback(err, resp);
        });
    };
}

/** Serialized values with the secrets replaced by their plain values. */
export function unwrapSecrets(v: any): any {
    if (Array.isArray(v)) return v.map(unwrapSecrets);
    if (v && typeof v === "object" && !(v instanceof Promise) && !v.__pulumiAsset) {
        if (v["4dabf18193072939515e22adb298388d"] === SECRET_SIG) return unwrapSecrets(v.value);
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
