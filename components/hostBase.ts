import * as pulumi from "@pulumi/pulumi";
import {
    type Connection,
    type HostContext,
    LIB_FILES,
    SCRIPTS_DIR,
    STAGING_DIR,
    checkConnection,
    hostStep,
    scriptSha256,
    scriptsSourceDir,
} from "./step.ts";
import { HostScripts, scriptFiles } from "./resources/hostScripts.ts";

export interface HostBaseArgs {
    /** Track drift of what this component manages (read over SSH on `pulumi refresh`). Default: true. */
    readonly driftCheck?: boolean;
    /** SSH connection to the host: root, or a user with passwordless sudo (set `sudo`). */
    readonly connection: pulumi.Input<Connection>;
    /** The connection's user is not root: commands run through `sudo -n`. Default: false. */
    readonly sudo?: boolean;
    /**
     * The file that connection.privateKey was read from, absolute or relative to the directory the plugin works in (the
     * checkout, which is the TypeScript program's project directory; provider/main.ts). The plugin's connections
     * (the scripts, the drift checks) then read the key there at each use instead of keeping a copy in the state.
     * Default: they keep the key (secret).
     */
    readonly privateKeyPath?: string;
    /** Package lists older than this (seconds) are refreshed before an install. Default: 3600. */
    readonly packageListsMaxAge?: number;
    /**
     * What the host's components will install, as package sets of the family table (`chrony`, `ntp`, `registry`,
     * `etcd`): installed in one transaction by the host's first contact, before any step runs (each step then only
     * configures). A set left out is installed by its step. Default: none.
     */
    readonly packages?: string[];
    /** Resources every command on the host waits for (its HostKey and the bastion's: a wrong key stops the host's steps). */
    readonly after?: pulumi.Input<pulumi.Resource>[];
    /** Short host name, set as the hostname. */
    readonly hostname: string;
    /** Fully qualified name, `<hostname>.<domain>`. */
    readonly fqdn: string;
    /** The managed /etc/hosts block: every host of the topology with its FQDN and aliases. */
    readonly hostsBlock: pulumi.Input<string>;
    /** A CA certificate (PEM) the host trusts system-wide, e.g. the registry's (registryTls). Default: none. */
    readonly trustedCa?: pulumi.Input<string>;
    /** Remote directory for the host scripts. Default: /usr/local/lib/host-topology. */
    readonly scriptDir?: string;
}

const PACKAGE_SETS = ["chrony", "ntp", "registry", "etcd"];

/** HostScripts' package inputs: the sets sorted and once each, the lists' age only when not the default. */
function packageArgs(packages: readonly string[] | undefined, maxAge: number): { packages?: string[]; packageListsMaxAge?: number } {
    if (!packages?.length) return {};
    const bad = packages.filter((p) => !PACKAGE_SETS.includes(p));
    if (bad.length > 0) throw new Error(`HostBase packages: unknown ${bad.join(", ")} (known: ${PACKAGE_SETS.join(", ")})`);
    return { packages: [...new Set(packages)].sort(), ...(maxAge === 3600 ? {} : { packageListsMaxAge: maxAge }) };
}

/**
 * The base of every host: the host scripts (every component's; putting them waits for sshd, checks sudo and reads the
 * OS), the hostname and the managed /etc/hosts block. Everything else on the host depends on it, so names resolve.
 */
export class HostBase extends pulumi.ComponentResource implements HostContext {
    /** `ID VERSION_ID` from the host's /etc/os-release, read by its HostScripts. */
    public readonly os: pulumi.Output<string>;
    public readonly hostname: string;
    public readonly fqdn: string;
    public readonly connection: pulumi.Input<Connection>;
    public readonly scriptDir: string;
    public readonly sudo: boolean;
    public readonly privateKeyPath?: string;
    public readonly scripts: HostScripts;
    public readonly commonParams: Readonly<Record<string, string>>;
    /** Drift check of the hosts step; the host's other checks repair after it (it restores the scripts). */
    public readonly baseCheck?: pulumi.Resource;

    constructor(name: string, args: HostBaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("host-topology:index:HostBase", name, {}, opts);
        this.hostname = args.hostname;
        this.fqdn = args.fqdn;
        this.connection = args.connection;
        this.scriptDir = args.scriptDir ?? "/usr/local/lib/host-topology";
        this.sudo = args.sudo ?? false;
        this.privateKeyPath = args.privateKeyPath || undefined;
        // Only a non-default age is a parameter: stacks on the default keep their steps' stdin (no re-run).
        const maxAge = args.packageListsMaxAge ?? 3600;
        this.commonParams = maxAge === 3600 ? {} : { PKG_LISTS_MAX_AGE: String(maxAge) };

        // The host's first contact: waits for sshd (connection.dialErrorLimit), checks sudo, reads the OS, puts the scripts.
        this.scripts = new HostScripts(
            `${name}-scripts`,
            {
                connection: checkConnection(args.connection, this.privateKeyPath),
                dir: this.sudo ? STAGING_DIR : this.scriptDir,
                files: scriptFiles(SCRIPTS_DIR, scriptSha256),
                sourceDir: scriptsSourceDir(),
                ...(this.sudo ? { sudo: true } : {}),
                ...packageArgs(args.packages, maxAge),
            },
            // No custom timeout: the plugin bounds the wait itself (dialErrorLimit attempts of perDialTimeout each).
            { parent: this, dependsOn: args.after },
        );
        const step = hostStep(this, `${name}-hosts`, {
            host: this,
            script: "host-base.sh",
            installAlso: LIB_FILES,
            params: {
                HOSTNAME: args.hostname,
                FQDN: args.fqdn,
                HOSTS_BLOCK: args.hostsBlock,
                PURGE_SCRIPTS: "1",
                ...(args.trustedCa ? { TRUSTED_CA: args.trustedCa } : {}),
            },
            driftCheck: args.driftCheck,
            dependsOn: [this.scripts],
        });
        this.baseCheck = step.check;
        this.os = this.scripts.os;
        this.registerOutputs({ os: this.os });
    }
}
