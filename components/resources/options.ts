// The options every resource of the project's provider plugin gets in the program: its secret outputs (the engine
// keeps them secret, the plugin returns them as secrets), and the alias from the Node dynamic resource it was before,
// so that an existing stack updates in place.
import * as pulumi from "@pulumi/pulumi";
import { type PluginResource, SECRET_OUTPUTS } from "../../contract/resources.ts";

export { typeToken } from "../../contract/resources.ts";
/** The types that were Node dynamic resources before the plugin (their state moves here by an alias). */
const WAS_DYNAMIC: readonly PluginResource[] = ["HostCheck", "HostKey", "Pki"];

/**
 * `plain`: outputs of SECRET_OUTPUTS that this resource holds without a secret, e.g. a connection that names the key
 * file (privateKeyPath) instead of holding the key.
 */
export function providerOptions(
    type: PluginResource,
    opts: pulumi.CustomResourceOptions | undefined,
    plain: readonly string[] = [],
): pulumi.CustomResourceOptions {
    return {
        ...opts,
        additionalSecretOutputs: SECRET_OUTPUTS[type].filter((k) => !plain.includes(k)),
        aliases: [...(opts?.aliases ?? []), ...(WAS_DYNAMIC.includes(type) ? dynamicAliases(type, opts?.aliases ?? []) : [])],
    };
}

/**
 * The type it had as a Node dynamic resource, under its parent now and under each parent it had (an alias that names
 * a parent, e.g. the stack's root for a resource the Topology component took over): one alias for both changes.
 */
function dynamicAliases(type: PluginResource, aliases: readonly pulumi.Input<string | pulumi.Alias>[]): pulumi.Alias[] {
    const dynamic = `pulumi-nodejs:dynamic/host-topology:${type}`;
    const parents = aliases.filter((a): a is pulumi.Alias => typeof a === "object" && a !== null && "parent" in a);
    return [{ type: dynamic }, ...parents.map((a) => ({ ...a, type: dynamic }))];
}
