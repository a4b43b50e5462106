import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { HostBase } from "./hostBase.ts";
import { hostStep } from "./step.ts";
import { type EtcdMemberSpec } from "./config/index.ts";
import { ETCD_PKI_DIR, renderEtcdEnv } from "./render.ts";

/** A member's TLS material (etcdTls), from the cluster's Pki. */
export interface EtcdMemberTls {
    readonly ca: pulumi.Input<string>;
    /** The member's certificate (server and peer) and key. */
    readonly cert: pulumi.Input<string>;
    readonly key: pulumi.Input<string>;
    /** The client certificate and key etcdctl uses on the host (health checks, member replacement). */
    readonly clientCert: pulumi.Input<string>;
    readonly clientKey: pulumi.Input<string>;
}

export interface EtcdMemberArgs {
    /** Track drift of what this component manages (read over SSH on `pulumi refresh`). Default: true. */
    readonly driftCheck?: boolean;
    /** The member's host. */
    readonly host: HostBase;
    /** This member (name, URLs, data dir). */
    readonly member: EtcdMemberSpec;
    /** Every member of the cluster, for ETCD_INITIAL_CLUSTER. */
    readonly members: readonly EtcdMemberSpec[];
    /** ETCD_INITIAL_CLUSTER_TOKEN, shared by all members (see newEtcdClusterToken). */
    readonly clusterToken: pulumi.Input<string>;
    /** Client and peer TLS; the URLs in `member` must then be https. Default: none (plain http, as documented). */
    readonly tls?: EtcdMemberTls;
    /** Seconds to wait for the member to report healthy. Default: 300. */
    readonly healthTimeout?: number;
    /** Further resources to wait for: every member's HostBase (peer names must resolve), this host's TimeSync and FirewallOff. */
    readonly after?: pulumi.Resource[];
}

/** A random initial-cluster-token, created once per cluster and kept in the state. */
export function newEtcdClusterToken(name: string, opts?: pulumi.CustomResourceOptions): random.RandomString {
    return new random.RandomString(name, { length: 20, special: false, upper: false }, opts);
}

/**
 * One etcd member: package per OS family, the documented config, enabled at boot, and waits until it is healthy.
 * Destroy stops it and restores the package's config; the data dir is never deleted.
 */
export class EtcdMember extends pulumi.ComponentResource {
    public readonly name: string;
    public readonly clientUrl: string;

    constructor(name: string, args: EtcdMemberArgs, opts?: pulumi.ComponentResourceOptions) {
        super("host-topology:index:EtcdMember", name, {}, opts);
        this.name = args.member.name;
        this.clientUrl = args.member.clientUrl;
        hostStep(this, name, {
            host: args.host,
            script: "etcd-member.sh",
            params: {
                ETCD_ENV: pulumi
                    .output(args.clusterToken)
                    .apply((t) => renderEtcdEnv(args.member, args.members, t, args.tls !== undefined)),
                ...(args.tls
                    ? {
                          PKI_DIR: ETCD_PKI_DIR,
                          TLS_CA: args.tls.ca,
                          TLS_CERT: args.tls.cert,
                          TLS_CLIENT_CERT: args.tls.clientCert,
                      }
                    : {}),
                NAME: args.member.name,
                DATA_DIR: args.member.dataDir,
                CLIENT_URL: args.member.clientUrl,
                PEER_URL: args.member.peerUrl,
                PEER_CLIENT_URLS: args.members
                    .filter((m) => m.name !== args.member.name)
                    .map((m) => m.clientUrl)
                    .join(","),
                HEALTH_TIMEOUT: String(args.healthTimeout ?? 300),
            },
            secretParams: args.tls ? { TLS_KEY: pulumi.secret(args.tls.key), TLS_CLIENT_KEY: pulumi.secret(args.tls.clientKey) } : {},
            driftCheck: args.driftCheck,
            checkAfter: args.host.baseCheck ? [args.host.baseCheck] : [],
            dependsOn: [args.host, ...(args.after ?? [])],
            timeout: "30m",
        });
        this.registerOutputs({ name: this.name, clientUrl: this.clientUrl });
    }
}
