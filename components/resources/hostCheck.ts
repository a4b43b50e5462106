// Drift detection, the program's side: a HostCheck per host step is a custom resource of the project's provider
// plugin (provider/hostCheck.ts does the checks over SSH: read on refresh, repair on `up --refresh`).
import * as pulumi from "@pulumi/pulumi";
import type { CheckConnection } from "../../contract/connection.ts";
import { providerOptions, typeToken } from "./options.ts";

export { NO_DRIFT, putFileCommand } from "../../contract/checkFormat.ts";
import { NO_DRIFT } from "../../contract/checkFormat.ts";

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
        super(
            typeToken("HostCheck"),
            name,
            { ...inputs, drift: {}, report: NO_DRIFT },
            providerOptions("HostCheck", opts, plainConnection ? ["connection"] : []),
        );
    }
}
