// Drift detection, the program's side: a HostCheck per host step is a custom resource of the project's provider
// plugin (provider/hostCheck.ts does the checks over SSH: read on refresh, repair on `up --refresh`).
import * as pulumi from "@pulumi/pulumi";
import type { SshTarget } from "../provider/sshClient.ts";
import { providerOptions, typeToken } from "./providerResource.ts";

export interface CheckConnection extends SshTarget {
    /** Failed connection attempts tolerated (as remote.Command's dialErrorLimit). Default: 10. */
    dialErrorLimit?: number;
    /** Seconds one connection attempt may take until the session is ready (as remote.Command's). Default: 10. */
    perDialTimeout?: number;
}

export interface CheckProps {
    connection: CheckConnection;
    /** e.g. "bash /usr/local/lib/host-topology/etcd.sh" ("sudo -n bash ..." for a user other than root) */
    script: string;
    /** The SSH user is not root: a repair writes the scripts through `sudo -n`. */
    sudo?: boolean;
    /**
     * The step's script and lib.sh, remote path -> sha256 of the program's copy. A repair puts them back first (a
     * reset host), read from `sourceDir` and checked against these hashes; the state keeps only the hashes.
     */
    files: Record<string, string>;
    /** Where the program's copies are, relative to the project directory (the provider's working directory). */
    sourceDir: string;
    /** The step's parameters (same stdin as apply). */
    stdin: string;
    /** The step's secret parameters, sent after stdin (check and repair then need no file on the host). Secret. */
    secretStdin?: string;
    /** Drifted items, item -> reason. Desired: {}. */
    drift: Record<string, string>;
    /**
     * The same as text, one item a line, a file's diff indented under it (reportOf). Desired: NO_DRIFT. The engine
     * shows a string that is multi-line before and after as a line diff, so a refresh shows the drift line by line.
     */
    report?: string;
}

export { NO_DRIFT, putFileCommand } from "./checkFormat.ts";
import { NO_DRIFT } from "./checkFormat.ts";

export interface HostCheckArgs {
    readonly connection: pulumi.Input<CheckConnection>;
    readonly script: pulumi.Input<string>;
    readonly sudo?: boolean;
    readonly files: pulumi.Input<Record<string, string>>;
    readonly sourceDir: pulumi.Input<string>;
    readonly stdin: pulumi.Input<string>;
    readonly secretStdin?: pulumi.Input<string>;
    /** The connection names its key file (privateKeyPath) and holds no key: it is not a secret. */
    readonly plainConnection?: boolean;
}

/** Tracks drift of one host step (see the file comment). */
export class HostCheck extends pulumi.CustomResource {
    declare public readonly drift: pulumi.Output<Record<string, string>>;
    declare public readonly report: pulumi.Output<string>;

    constructor(name: string, args: HostCheckArgs, opts?: pulumi.CustomResourceOptions) {
        const { plainConnection, ...inputs } = args;
        super(typeToken("HostCheck"), name, { ...inputs, drift: {}, report: NO_DRIFT }, providerOptions("HostCheck", opts, plainConnection ? ["connection"] : []));
    }
}
