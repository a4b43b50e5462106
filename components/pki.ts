// Opt-in TLS (etcdTls, registryTls): a private CA and the certificates it issues. A Pki is a Node dynamic
// resource: it is created once by `openssl` on the machine that runs Pulumi and lives in the stack state, where
// the CA key and the private keys are secret outputs. A certificate that is added or whose request changes
// (names, usage) is issued again by the same CA; the others are kept. Nothing of it lives only on a host, so a
// reinstalled host gets its files back from the state.
// etcd: one certificate per member (server and peer, with the member's names and addresses as SANs) and one
// client certificate (etcdctl on the members, and the stack output for other projects). Registry: nginx's
// server certificate, whose CA every host trusts.
import * as pulumi from "@pulumi/pulumi";
import { providerOptions, typeToken } from "./providerResource";
import { EtcdMemberSpec, TopologyConfig, isIPv4 } from "./config";

export interface CertRequest {
    /** Key of the certificate in the outputs. */
    readonly id: string;
    /** Subject common name. */
    readonly cn: string;
    /** subjectAltName entries, e.g. ["DNS:etcd1", "IP:192.168.100.2"]. */
    readonly sans: readonly string[];
    /** extendedKeyUsage, e.g. "serverAuth,clientAuth". */
    readonly usage: string;
}

export interface PkiInputs {
    readonly caName: string;
    readonly certs: readonly CertRequest[];
    /** Validity of the CA and of every certificate, in days. */
    readonly days: number;
}

export interface PkiOutputs extends PkiInputs {
    readonly caCert: string;
    readonly caKey: string;
    /** request id -> certificate / private key (PEM). */
    readonly issued: Record<string, string>;
    readonly keys: Record<string, string>;
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
    return sanList(names);
}

/** subjectAltName entries for names and addresses: IP:… or DNS:…, unique, sorted. */
function sanList(names: readonly string[]): string[] {
    return [...new Set(names.filter((n) => n).map((n) => (isIPv4(n) ? `IP:${n}` : `DNS:${n}`)))].sort();
}

/** Runs openssl in `dir`; a missing openssl is an error that says what needs it. */
function openssl(dir: string, args: string[]): void {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const r = require("child_process").spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (r.error) throw new Error(`TLS (etcdTls/registryTls): cannot run openssl on this machine (${r.error.message}); install openssl`);
    if (r.status !== 0) throw new Error(`TLS (etcdTls/registryTls): openssl ${args.join(" ")} failed: ${r.stderr}`);
}

/** Runs fn in a private temp dir that is removed afterwards (it holds private keys). */
function inTempDir<T>(fn: (dir: string, write: (f: string, s: string) => void, read: (f: string) => string) => T): T {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const fs = require("fs");
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const path = require("path");
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const dir: string = fs.mkdtempSync(path.join(require("os").tmpdir(), "host-topology-pki-"));
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
export function newCa(name: string, days: number): { cert: string; key: string } {
    return inTempDir((dir, write, read) => {
        write("ca.cnf", `[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=${name}\n[ext]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n`);
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

/** Certificates for `certs`, keeping those in `old` whose request is unchanged. */
function issueAll(ca: { cert: string; key: string }, inputs: PkiInputs, old?: PkiOutputs): { certs: Record<string, string>; keys: Record<string, string> } {
    const certs: Record<string, string> = {};
    const keys: Record<string, string> = {};
    for (const c of inputs.certs) {
        const before = old?.certs.find((o) => o.id === c.id);
        if (old && before && JSON.stringify(before) === JSON.stringify(c) && old.days === inputs.days && old.issued[c.id]) {
            certs[c.id] = old.issued[c.id];
            keys[c.id] = old.keys[c.id];
        } else {
            const issued = issueCert(ca, c.cn, c.sans, c.usage, inputs.days);
            certs[c.id] = issued.cert;
            keys[c.id] = issued.key;
        }
    }
    return { certs, keys };
}

export const pkiProvider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: PkiInputs) {
        const ca = newCa(inputs.caName, inputs.days);
        const { certs, keys } = issueAll(ca, inputs);
        const outs: PkiOutputs = { ...inputs, caCert: ca.cert, caKey: ca.key, issued: certs, keys };
        // eslint-disable-next-line @typescript-eslint/no-var-requires
        return { id: require("crypto").randomBytes(8).toString("hex"), outs };
    },
    async diff(_id: string, olds: PkiOutputs, news: PkiInputs) {
        const changed = JSON.stringify(olds.certs) !== JSON.stringify(news.certs) || olds.days !== news.days || olds.caName !== news.caName;
        // A new CA name is a new CA (every holder of the old one must change): replace; the rest updates in place.
        return { changes: changed, replaces: olds.caName !== news.caName ? ["caName"] : [], deleteBeforeReplace: false };
    },
    async update(_id: string, olds: PkiOutputs, news: PkiInputs) {
        // The CA stays; only new or changed certificates are issued again.
        const { certs, keys } = issueAll({ cert: olds.caCert, key: olds.caKey }, news, olds);
        const outs: PkiOutputs = { ...olds, ...news, issued: certs, keys };
        return { outs };
    },
};

export interface PkiArgs {
    /** The CA's common name. */
    readonly caName: pulumi.Input<string>;
    readonly certs: pulumi.Input<readonly CertRequest[]>;
    /** Default: 3650. */
    readonly days?: pulumi.Input<number>;
}

/** A private CA and the certificates it issued (see the file comment). Private keys are secret outputs. */
export class Pki extends pulumi.CustomResource {
    declare public readonly caCert: pulumi.Output<string>;
    /** request id -> certificate / private key (PEM). */
    declare public readonly issued: pulumi.Output<Record<string, string>>;
    declare public readonly keys: pulumi.Output<Record<string, string>>;

    constructor(name: string, args: PkiArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            typeToken("Pki"),
            name,
            { caName: args.caName, certs: args.certs, days: args.days ?? 3650, caCert: undefined, caKey: undefined, issued: undefined, keys: undefined },
            providerOptions("Pki", opts),
        );
    }

    /** The certificate and key issued for request `id`. */
    certFor(id: string): { cert: pulumi.Output<string>; key: pulumi.Output<string> } {
        return { cert: this.issued.apply((c) => c[id]), key: pulumi.secret(this.keys.apply((k) => k[id])) };
    }
}

/** The request id of etcd member `name`'s certificate, and of the etcd client certificate. */
export const etcdMemberCertId = (name: string) => `etcd-member/${name}`;
export const ETCD_CLIENT_CERT_ID = "etcd-client";
/** The request id of the registry's server certificate. */
export const REGISTRY_CERT_ID = "registry";

/** nginx's certificate for the registry: its server name, short name, the host's names and address. */
export function registryCertRequest(cfg: Pick<TopologyConfig, "domain" | "hosts">, r: { host: string; serverName: string }): CertRequest {
    const host = cfg.hosts.find((h) => h.name === r.host);
    const names = [r.serverName, r.serverName.split(".")[0], r.host, `${r.host}.${cfg.domain}`, ...(host ? [host.address] : [])];
    return { id: REGISTRY_CERT_ID, cn: r.serverName, sans: sanList(names), usage: "serverAuth" };
}

/** The etcd cluster's certificates: one per member (server and peer) and one client certificate. */
export function etcdCertRequests(cfg: Pick<TopologyConfig, "domain" | "hosts" | "etcdMembers">): CertRequest[] {
    return [
        ...cfg.etcdMembers.map((m) => ({ id: etcdMemberCertId(m.name), cn: m.name, sans: memberSans(cfg, m), usage: "serverAuth,clientAuth" })),
        { id: ETCD_CLIENT_CERT_ID, cn: "etcd-client", sans: [], usage: "clientAuth" },
    ];
}
