import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { HostBase } from "./hostBase.ts";
import { hostStep } from "./step.ts";
import { renderHtpasswd, renderNginxSite, renderRegistryConfig } from "./render.ts";

export interface PrivateRegistryArgs {
    /** Track drift of what this component manages (read over SSH on `pulumi refresh`). Default: true. */
    readonly driftCheck?: boolean;
    /** The registry host, whose HostBase must be complete first. */
    readonly host: HostBase;
    /** Name nginx serves the registry on, e.g. registry.danran.com. */
    readonly serverName: string;
    /** HTTP basic auth in nginx. Default: false (as in the notes, where it is commented out). */
    readonly auth?: boolean;
    /** nginx's certificate and key (registryTls): https on 443, port 80 redirects. Default: none (http on 80). */
    readonly tls?: { readonly cert: pulumi.Input<string>; readonly key: pulumi.Input<string> };
    /** Basic-auth user. Default: "registry". */
    readonly user?: string;
    /** Registry storage, never deleted by the program. Default: /var/lib/registry. */
    readonly storageDir?: string;
    /** Further resources to wait for (the host's TimeSync and FirewallOff). */
    readonly after?: pulumi.Resource[];
}

/**
 * A private registry (docker-distribution / docker-registry) on 127.0.0.1:5000 behind an nginx reverse proxy on :80.
 */
export class PrivateRegistry extends pulumi.ComponentResource {
    /** `http://<serverName>` (port 80), or `https://<serverName>` (port 443) with tls. */
    public readonly endpoint: pulumi.Output<string>;
    /** Basic-auth credentials (secret), undefined when auth is off. */
    public readonly credentials: pulumi.Output<{ username: string; password: string } | undefined>;

    constructor(name: string, args: PrivateRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
        super("host-topology:index:PrivateRegistry", name, {}, opts);
        const user = args.user ?? "registry";
        const auth = args.auth ?? false;
        const storageDir = args.storageDir ?? "/var/lib/registry";

        const secrets: Record<string, pulumi.Input<string>> = {};
        this.credentials = pulumi.output(undefined);
        if (auth) {
            const password = new random.RandomPassword(`${name}-password`, { length: 32, special: false }, { parent: this });
            secrets.HTPASSWD = pulumi.secret(password.bcryptHash.apply((h) => renderHtpasswd(user, h)));
            this.credentials = pulumi.secret(password.result.apply((p) => ({ username: user, password: p })));
        }
        if (args.tls) secrets.TLS_KEY = pulumi.secret(args.tls.key);
        hostStep(this, name, {
            host: args.host,
            script: "private-registry.sh",
            params: {
                REGISTRY_CONFIG: renderRegistryConfig(storageDir),
                NGINX_CONF: renderNginxSite(args.serverName, auth, args.tls !== undefined),
                ...(args.tls ? { TLS_CERT: args.tls.cert } : {}),
                ...(auth ? {} : { HTPASSWD: "" }),
                STORAGE_DIR: storageDir,
            },
            secretParams: secrets,
            driftCheck: args.driftCheck,
            checkAfter: args.host.baseCheck ? [args.host.baseCheck] : [],
            dependsOn: [args.host, ...(args.after ?? [])],
        });
        this.endpoint = pulumi.output(`${args.tls ? "https" : "http"}://${args.serverName}`);
        this.registerOutputs({ endpoint: this.endpoint, credentials: this.credentials });
    }
}
