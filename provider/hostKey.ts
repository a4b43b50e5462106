// Host keys, the plugin's side of components/resources/hostKey.ts (see there): read a host's key with a key exchange (no
// login) and compare it with the pinned or recorded one.
import type { HostKeyOuts, HostKeyProps } from "../contract/resources.ts";
import { describeKey } from "../contract/sshKeys.ts";
import { type ResourceOps } from "./ops.ts";
import { hostKeyMismatch, sshConnect, withDialRetries } from "./sshClient.ts";

/** The key the host presents now (through the proxy if set); retried like a dial; rejects naming the host. */
async function presented(p: HostKeyProps, keyType?: string): Promise<string> {
    const where = `${p.name} (${p.host}:${p.port})`;
    const target = {
        host: p.host,
        port: p.port,
        user: "host-key-scan",
        privateKey: p.proxy?.privateKey ?? "",
        proxy: p.proxy,
        hostKeyType: keyType,
    };
    try {
        return (await withDialRetries(10, () => sshConnect(target, { scanOnly: true, readyTimeoutMs: 15000 }))).hostKey;
    } catch (caught) {
        const e = caught as Error & { dialError?: boolean };
        if (/no matching host key/i.test(e.message))
            throw new Error(`${where}: the host offers no ${keyType} host key, the type of the expected key`);
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

export const hostKeyOps: ResourceOps = {
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
        if (news.verify && expected)
            unverified = await verified(news, expected).then(
                () => false,
                () => true,
            );
        const changed =
            unverified || moved || expected !== olds.publicKey || JSON.stringify(olds.proxy ?? null) !== JSON.stringify(news.proxy ?? null);
        return { changes: changed, replaces: moved ? ["host", "port"] : [], deleteBeforeReplace: false };
    },
    async update(_id: string, olds: HostKeyOuts, news: HostKeyProps) {
        const publicKey = news.pinned ?? olds.publicKey;
        if (news.verify) await verified(news, publicKey);
        const outs: HostKeyOuts = { ...news, publicKey, fingerprint: describeKey(publicKey) };
        return { outs };
    },
};
