import * as pulumi from "@pulumi/pulumi";
import { HostBase } from "./hostBase.ts";
import { hostStep } from "./step.ts";

export interface TimeSyncArgs {
    /** Track drift of what this component manages (read over SSH on `pulumi refresh`). Default: true. */
    readonly driftCheck?: boolean;
    /** The host, whose HostBase must be complete first. */
    readonly host: HostBase;
    /** chrony (default) or ntp (ntpsec on Debian 12 / Ubuntu 24.04; not available on EL8/9). */
    readonly implementation?: "chrony" | "ntp";
    /** The daemon's full config file, rendered by renderTimeConfig. */
    readonly config: pulumi.Input<string>;
    /** Further resources to wait for, e.g. the master's TimeSync on nodes that sync from it. */
    readonly after?: pulumi.Resource[];
}

/** Installs, configures and enables the time sync daemon; restarts it only when its config changed. */
export class TimeSync extends pulumi.ComponentResource {
    public readonly implementation: "chrony" | "ntp";

    constructor(name: string, args: TimeSyncArgs, opts?: pulumi.ComponentResourceOptions) {
        super("host-topology:index:TimeSync", name, {}, opts);
        this.implementation = args.implementation ?? "chrony";
        hostStep(this, name, {
            host: args.host,
            script: "time-sync.sh",
            params: { IMPL: this.implementation, CONFIG: args.config },
            driftCheck: args.driftCheck,
            checkAfter: args.host.baseCheck ? [args.host.baseCheck] : [],
            dependsOn: [args.host, ...(args.after ?? [])],
        });
        this.registerOutputs({ implementation: this.implementation });
    }
}
