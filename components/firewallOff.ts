import * as pulumi from "@pulumi/pulumi";
import { HostBase } from "./hostBase.ts";
import { hostStep } from "./step.ts";
import { DEFAULT_FIREWALL_UNITS } from "./config/index.ts";

export interface FirewallOffArgs {
    /** Track drift of what this component manages (read over SSH on `pulumi refresh`). Default: true. */
    readonly driftCheck?: boolean;
    /** The host, whose HostBase must be complete first. */
    readonly host: HostBase;
    /** Units stopped and disabled at boot. Default: firewalld, iptables, ip6tables, ufw. A missing unit is fine. */
    readonly units?: readonly string[];
    /** Further resources to wait for. */
    readonly after?: pulumi.Resource[];
}

/** Stops the host firewalls and keeps them from starting at boot; destroy re-enables those that were enabled. */
export class FirewallOff extends pulumi.ComponentResource {
    public readonly units: readonly string[];

    constructor(name: string, args: FirewallOffArgs, opts?: pulumi.ComponentResourceOptions) {
        super("host-topology:index:FirewallOff", name, {}, opts);
        this.units = args.units ?? DEFAULT_FIREWALL_UNITS;
        hostStep(this, name, {
            host: args.host,
            script: "firewall-off.sh",
            params: { UNITS: this.units.join(" ") },
            driftCheck: args.driftCheck,
            checkAfter: args.host.baseCheck ? [args.host.baseCheck] : [],
            dependsOn: [args.host, ...(args.after ?? [])],
        });
        this.registerOutputs({ units: this.units });
    }
}
