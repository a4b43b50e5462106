// Opt-in etcd TLS (config etcdTls): a private CA, one certificate per member (server and peer, with the
// member's names and addresses as SANs) and one client certificate (etcdctl on the members, and the stack
// output for other projects). An EtcdPki is a Node dynamic resource: it is created once by `openssl` on the
// machine that runs Pulumi and lives in the stack state, where the CA key and the private keys are secret
// outputs. A member added or whose names change gets a new certificate from the same CA; the others keep theirs.
// Nothing of it lives only on a host, so a reinstalled host gets its files back from the state.
import * as pulumi from "@pulumi/pulumi";
import { EtcdMemberSpec, TopologyConfig, isIPv4 } from "./config";

export interface PkiMember {
    readonly name: string;
    /** subjectAltName entries, e.g. ["DNS:etcd1", "IP:192.168.100.2"]. */
    readonly sans: readonly string[];
}

export interface PkiInputs {
    readonly members: readonly PkiMember[];
    /** Validity of the CA and of every certificate, in days. */
    readonly days: number;
}

export interface PkiOutputs extends PkiInputs {
    readonly caCert: string;
    readonly caKey: string;
    /** member name -> certificate / private key (PEM). */
    readonly certs: Record<string, string>;
    readonly keys: Record<string, string>;
    readonly clientCert: string;
    readonly clientKey: string;
}

/**
 * The SANs of a member's certificate: every name and address it is reached by (member name, host name and
 * FQDN, the hosts of its client and peer URLs, the host's address) and localhost, sorted.
 */
export function memberSans(cfg: Pick<TopologyConfig, "domain" | "hosts">, m: EtcdMemberSpec): string[] {
    const host = cfg.hosts.find((h) => h.name === m.host);
    const names = [m.name, m.host, `${m.host}.${cfg.domain}`, "localhost", "127.0.0.1"];
    if (host) names.push(host.address);
    for (const u of [m.clientUrl, m.peerUrl, m.listenPeerUrl]) names.push(/^[a-z]+:\/\/([^/:]+)/i.exec(u)?.[1] ?? "");
    const sans = new Set(names.filter((n) => n).map((n) => (isIPv4(n) ? `IP:${n}` : `DNS:${n}`)));
    return [...sans].sort();
}

/** Runs openssl in `dir`; a missing openssl is an error that says what needs it. */
function openssl(dir: string, args: string[]): void {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const r = require("child_process").spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (r.error) throw new Error(`etcdTls: cannot run openssl on this machine (${r.error.message}); install openssl`);
    if (r.status !== 0) throw new Error(`etcdTls: openssl ${args.join(" ")} failed: ${r.stderr}`);
}

/** Runs fn in a private temp dir that is removed afterwards (it holds private keys). */
function inTempDir<T>(fn: (dir: string, write: (f: string, s: string) => void, read: (f: string) => string) => T): T {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const fs = require("fs");
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const path = require("path");
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const dir: string = fs.mkdtempSync(path.join(require("os").tmpdir(), "etcd-pki-"));
    try {
        return fn(
            dir,
            (f, s) => fs.writeFileSync(path.join(dir, f), s, { mode: 0o600 }),
            (f) => fs.readFileSync(path.join(dir, f), "utf8"),
        );
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** A new CA: P-256 key, self-signed, CA:TRUE. */
export function newCa(days: number): { cert: string; key: string } {
    return inTempDir((dir, write, read) => {
        write("ca.cnf", "[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=host-topology etcd CA\n[ext]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n");
        openssl(dir, ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"]);
        openssl(dir, ["req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", String(days), "-config", "ca.cnf", "-extensions", "ext", "-out", "ca.crt"]);
        return { cert: read("ca.crt"), key: read("ca.key") };
    });
}

/** A certificate signed by the CA, with a new P-256 key; `usage` is the extendedKeyUsage. */
export function issueCert(ca: { cert: string; key: string }, cn: string, sans: readonly string[], usage: string, days: number): { cert: string; key: string } {
    return inTempDir((dir, write, read) => {
        write("ca.crt", ca.cert);
        write("ca.key", ca.key);
        const san = sans.length > 0 ? `subjectAltName=${sans.join(",")}\n` : "";
        write("leaf.cnf", `[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=${cn}\n[ext]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=${usage}\n${san}authorityKeyIdentifier=keyid\n`);
        openssl(dir, ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key"]);
        openssl(dir, ["req", "-new", "-key", "leaf.key", "-config", "leaf.cnf", "-out", "leaf.csr"]);
        // eslint-disable-next-line @typescript-eslint/no-var-requires
        const serial = `0x${require("crypto").randomBytes(16).toString("hex")}`;
        openssl(dir, ["x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", serial, "-sha256", "-days", String(days), "-extfile", "leaf.cnf", "-extensions", "ext", "-out", "leaf.crt"]);
        return { cert: read("leaf.crt"), key: read("leaf.key") };
    });
}

/** Member certificates for `members`, keeping those in `old` whose SANs are unchanged. */
function memberCerts(ca: { cert: string; key: string }, inputs: PkiInputs, old?: PkiOutputs): { certs: Record<string, string>; keys: Record<string, string> } {
    const certs: Record<string, string> = {};
    const keys: Record<string, string> = {};
    for (const m of inputs.members) {
        const before = old?.members.find((o) => o.name === m.name);
        if (old && before && JSON.stringify(before.sans) === JSON.stringify(m.sans) && old.days === inputs.days && old.certs[m.name]) {
            certs[m.name] = old.certs[m.name];
            keys[m.name] = old.keys[m.name];
        } else {
            const c = issueCert(ca, m.name, m.sans, "serverAuth,clientAuth", inputs.days);
            certs[m.name] = c.cert;
            keys[m.name] = c.key;
        }
    }
    return { certs, keys };
}

export const etcdPkiProvider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: PkiInputs) {
        const ca = newCa(inputs.days);
        const client = issueCert(ca, "etcd-client", [], "clientAuth", inputs.days);
        const outs: PkiOutputs = { ...inputs, caCert: ca.cert, caKey: ca.key, ...memberCerts(ca, inputs), clientCert: client.cert, clientKey: client.key };
        // eslint-disable-next-line @typescript-eslint/no-var-requires
        return { id: require("crypto").randomBytes(8).toString("hex"), outs };
    },
    async diff(_id: string, olds: PkiOutputs, news: PkiInputs) {
        const changed = JSON.stringify(olds.members) !== JSON.stringify(news.members) || olds.days !== news.days;
        return { changes: changed, replaces: [], deleteBeforeReplace: false };
    },
    async update(_id: string, olds: PkiOutputs, news: PkiInputs) {
        // The CA and the client certificate stay; only new or renamed members get new certificates.
        const ca = { cert: olds.caCert, key: olds.caKey };
        const outs: PkiOutputs = { ...olds, ...news, ...memberCerts(ca, news, olds) };
        return { outs };
    },
};

export interface EtcdPkiArgs {
    readonly members: pulumi.Input<readonly PkiMember[]>;
    /** Default: 3650. */
    readonly days?: pulumi.Input<number>;
}

/** The etcd cluster's CA and certificates (see the file comment). Keys are secret outputs. */
export class EtcdPki extends pulumi.dynamic.Resource {
    declare public readonly caCert: pulumi.Output<string>;
    declare public readonly certs: pulumi.Output<Record<string, string>>;
    declare public readonly keys: pulumi.Output<Record<string, string>>;
    declare public readonly clientCert: pulumi.Output<string>;
    declare public readonly clientKey: pulumi.Output<string>;

    constructor(name: string, args: EtcdPkiArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            etcdPkiProvider,
            name,
            { members: args.members, days: args.days ?? 3650, caCert: undefined, caKey: undefined, certs: undefined, keys: undefined, clientCert: undefined, clientKey: undefined },
            { ...opts, additionalSecretOutputs: ["caKey", "keys", "clientKey"] },
            "host-topology",
            "EtcdPki",
        );
    }
}
