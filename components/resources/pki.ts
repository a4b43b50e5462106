// Opt-in TLS (etcdTls, registryTls): a private CA and the certificates it issues. A Pki is a custom resource of
// the project's provider plugin (provider/pki.ts): it is created once by `openssl` on the machine that runs Pulumi and lives in the stack state, where
// the CA key and the private keys are secret outputs. A certificate that is added or whose request changes
// (names, usage) is issued again by the same CA; the others are kept. Nothing of it lives only on a host, so a
// reinstalled host gets its files back from the state.
// etcd: one certificate per member (server and peer, with the member's names and addresses as SANs) and one
// client certificate (etcdctl on the members, and the stack output for other projects). Registry: nginx's
// server certificate, whose CA every host trusts.
import * as pulumi from "@pulumi/pulumi";
import type { CertRequest } from "../../contract/resources.ts";
import { providerOptions, typeToken } from "./options.ts";
import { type EtcdMemberSpec, type TopologyConfig, isIPv4 } from "../config/index.ts";

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
            {
                caName: args.caName,
                certs: args.certs,
                days: args.days ?? 3650,
                caCert: undefined,
                caKey: undefined,
                issued: undefined,
                keys: undefined,
            },
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
        ...cfg.etcdMembers.map((m) => ({
            id: etcdMemberCertId(m.name),
            cn: m.name,
            sans: memberSans(cfg, m),
            usage: "serverAuth,clientAuth",
        })),
        { id: ETCD_CLIENT_CERT_ID, cn: "etcd-client", sans: [], usage: "clientAuth" },
    ];
}
