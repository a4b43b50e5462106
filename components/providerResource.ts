// The resources the project's provider plugin serves (provider/): their type tokens, the outputs that are secret
// (the resources ask the engine to keep them secret, the plugin returns them as secrets), and the options each one
// gets, with the alias from the Node dynamic resource it was before, so that an existing stack updates in place.
import * as pulumi from "@pulumi/pulumi";

export type PluginResource = "HostCheck" | "HostKey" | "Pki" | "HostScripts";

export const SECRET_OUTPUTS: Readonly<Record<PluginResource, readonly string[]>> = {
    HostCheck: ["connection", "secretStdin"],
    HostKey: ["proxy"],
    Pki: ["caKey", "keys"],
    HostScripts: [],
};

/** The types that were Node dynamic resources before the plugin (their state moves here by an alias). */
const WAS_DYNAMIC: readonly PluginResource[] = ["HostCheck", "HostKey", "Pki"];

export const typeToken = (type: PluginResource) => `host-topology:index:${type}`;

/**
 * `plain`: outputs of SECRET_OUTPUTS that this resource holds without a secret, e.g. a connection that names the key
 * file (privateKeyPath) instead of holding the key.
 */
export function providerOptions(type: PluginResource, opts: pulumi.CustomResourceOptions | undefined, plain: readonly string[] = []): pulumi.CustomResourceOptions {
    return {
        ...opts,
        additionalSecretOutputs: SECRET_OUTPUTS[type].filter((k) => !plain.includes(k)),
        aliases: [...(opts?.aliases ?? []), ...(WAS_DYNAMIC.includes(type) ? [{ type: `pulumi-nodejs:dynamic/host-topology:${type}` }] : [])],
    };
}
