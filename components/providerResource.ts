// The options of the resources the project's provider plugin serves (provider/): their secret outputs, and the alias
// from the Node dynamic resource each one was before, so that an existing stack updates in place.
import * as pulumi from "@pulumi/pulumi";

export function providerOptions(type: "HostCheck" | "HostKey" | "Pki", opts: pulumi.CustomResourceOptions | undefined, secretOutputs: string[]): pulumi.CustomResourceOptions {
    return {
        ...opts,
        additionalSecretOutputs: secretOutputs,
        aliases: [...(opts?.aliases ?? []), { type: `pulumi-nodejs:dynamic/host-topology:${type}` }],
    };
}
