// The host key every SSH connection to one host must see. A HostKey (one per host, and one for the bastion) is a
// Node dynamic resource whose `publicKey` output is passed as `connection.hostKey` to every remote.Command and
// CopyToRemote of the host, and to its HostChecks:
// - pinned (hosts[].hostKey, sshKnownHostsPath): publicKey is the pinned key;
// - accept-new without a pinned key: the key the host presents at first contact, recorded in the state.
// At every `pulumi up` (the program sets `verify`) and every refresh, the host's key is read (a key exchange, no login)
// and compared with publicKey before any step on that host runs: every step of a host depends on its HostKey (and
// the bastion's), so a host with another key has all its steps stopped, the error naming the host and both
// fingerprints, while `pulumi up --continue-on-error` still converges the other hosts (so does a host that is down).
// Plain `pulumi preview` never connects (verify is false there and diff compares the state only).
import * as pulumi from "@pulumi/pulumi";
import { providerOptions, typeToken } from "./providerResource";
import { SshProxy, hostKeyMismatch, sshConnect, withDialRetries } from "./sshClient";
import { describeKey } from "./sshKeys";

export interface HostKeyProps {
    /** The host's name in the topology (for messages). */
    name: string;
    host: string;
    port: number;
    /** The pinned key (`type base64`); unset = accept-new (record the first key seen). */
    pinned?: string;
    /** Reach the host through this bastion; its key is checked too. */
    proxy?: SshProxy & { privateKey: string };
    /** true in `pulumi up` (the program is not a preview): read and compare the host's key. */
    verify: boolean;
}

interface HostKeyOuts extends HostKeyProps {
    /** The key in effect (`type base64`). */
    publicKey: string;
    /** Its SHA256 fingerprint. */
    fingerprint: string;
}

/** The key the host presents now (through the proxy if set); retried like a dial; rejects naming the host. */
async function presented(p: HostKeyProps, keyType?: string): Promise<string> {
    const where = `${p.name} (${p.host}:${p.port})`;
    const target = { host: p.host, port: p.port, user: "host-key-scan", privateKey: p.proxy?.privateKey ?? "", proxy: p.proxy, hostKeyType: keyType };
    try {
        return (await withDialRetries(10, () => sshConnect(target, { scanOnly: true, readyTimeoutMs: 15000 }))).hostKey;
    } catch (e: any) {
        if (/no matching host key/i.test(e.message)) throw new Error(`${where}: the host offers no ${keyType} host key, the type of the expected key`);
        if (e.dialError) throw new Error(`${where}: cannot read the host key: ${e.message}`);
        throw e;
    }
}

async function verified(p: HostKeyProps, expected: string): Promise<void> {
    const got = await presented(p, expected.split(" ")[0]);
    if (got.split(" ")[1] !== expected.split(" ")[1]) {
        throw hostKeyMismatch(`${p.name} (${p.host}:${p.port})`, expected, got);
    }
}

export const hostKeyProvider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: HostKeyProps) {
        const publicKey = inputs.pinned ?? (await presented(inputs));
        if (inputs.pinned) await verified(inputs, inputs.pinned);
        const outs: HostKeyOuts = { ...inputs, publicKey, fingerprint: describeKey(publicKey) };
        return { id: `${inputs.host}:${inputs.port}`, outs };
    },
    async read(id: string, props: HostKeyOuts) {
        await verified(props, props.publicKey);
        return { id, props };
    },
    async diff(_id: string, olds: HostKeyOuts, news: HostKeyProps) {
        const moved = olds.host !== news.host || olds.port !== news.port;
        const expected = news.pinned ?? (moved ? undefined : olds.publicKey);
        // Every `up` compares before any step of the host runs; plain preview (verify false) only compares the config
        // with the state. A host that is down or shows another key is an update here, which fails saying why: a
        // failed step (unlike an error in diff, which ends the whole deployment) stops only the steps that depend
        // on it, the host's own, so `pulumi up --continue-on-error` converges the other hosts.
        let unverified = false;
        if (news.verify && expected) unverified = await verified(news, expected).then(() => false, () => true);
        const changed = unverified || moved || expected !== olds.publicKey || JSON.stringify(olds.proxy ?? null) !== JSON.stringify(news.proxy ?? null);
        return { changes: changed, replaces: moved ? ["host", "port"] : [], deleteBeforeReplace: false };
    },
    async update(_id: string, olds: HostKeyOuts, news: HostKeyProps) {
        const publicKey = news.pinned ?? olds.publicKey;
        if (news.verify) await verified(news, publicKey);
        const outs: HostKeyOuts = { ...news, publicKey, fingerprint: describeKey(publicKey) };
        return { outs };
    },
};

export interface HostKeyArgs {
    readonly name: string;
    readonly host: string;
    readonly port: number;
    readonly pinned?: string;
    readonly proxy?: pulumi.Input<SshProxy & { privateKey: string }>;
}

/** The key one host must present (see the file comment). */
export class HostKey extends pulumi.CustomResource {
    /** `type base64`: pass as connection.hostKey. */
    declare public readonly publicKey: pulumi.Output<string>;
    declare public readonly fingerprint: pulumi.Output<string>;

    constructor(name: string, args: HostKeyArgs, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("HostKey"), name, { ...args, verify: !pulumi.runtime.isDryRun(), publicKey: undefined, fingerprint: undefined }, providerOptions("HostKey", opts));
    }
}
