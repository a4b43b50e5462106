// The host key every SSH connection to one host must see. A HostKey (one per host, and one for the bastion) is a
// custom resource of the project's provider plugin (provider/hostKey.ts) whose `publicKey` output is passed as
// `connection.hostKey` to every remote.Command of the host, and to its HostScripts and HostChecks:
// - pinned (hosts[].hostKey, sshKnownHostsPath): publicKey is the pinned key;
// - accept-new without a pinned key: the key the host presents at first contact, recorded in the state.
// At every `pulumi up` (the program sets `verify`) and every refresh, the host's key is read (a key exchange, no login)
// and compared with publicKey before any step on that host runs: every step of a host depends on its HostKey (and
// the bastion's), so a host with another key has all its steps stopped, the error naming the host and both
// fingerprints, while `pulumi up --continue-on-error` still converges the other hosts (so does a host that is down).
// Plain `pulumi preview` never connects (verify is false there and diff compares the state only).
import * as pulumi from "@pulumi/pulumi";
import type { SshProxy } from "../../contract/connection.ts";
import { providerOptions, typeToken } from "./options.ts";

export interface HostKeyArgs {
    readonly name: string;
    readonly host: pulumi.Input<string>;
    readonly port: pulumi.Input<number>;
    readonly pinned?: pulumi.Input<string>;
    readonly proxy?: pulumi.Input<SshProxy & { privateKey: string }>;
}

/** The key one host must present (see the file comment). */
export class HostKey extends pulumi.CustomResource {
    /** `type base64`: pass as connection.hostKey. */
    declare public readonly publicKey: pulumi.Output<string>;
    declare public readonly fingerprint: pulumi.Output<string>;

    constructor(name: string, args: HostKeyArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            typeToken("HostKey"),
            name,
            { ...args, verify: !pulumi.runtime.isDryRun(), publicKey: undefined, fingerprint: undefined },
            providerOptions("HostKey", opts),
        );
    }
}
