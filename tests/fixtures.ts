import { RawConfig } from "../components/config";

/** The documented topology (Pulumi.dev.yaml), as raw config strings. */
export function documentedRaw(extra: Record<string, string | undefined> = {}): RawConfig {
    return {
        domain: "danran.com",
        hosts: JSON.stringify([
            { name: "master", address: "192.168.100.2", roles: ["master", "etcd", "registry"] },
            { name: "node1", address: "192.168.100.3", roles: ["node"] },
            { name: "node2", address: "192.168.100.4", roles: ["node"] },
        ]),
        sshPrivateKey: "<secret>",
        ...extra,
    };
}
