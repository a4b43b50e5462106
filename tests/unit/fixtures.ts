import { type RawConfig } from "../../components/config/index.ts";

/** Host keys of the documented hosts (made for these tests with ssh-keygen -t ed25519). */
export const HOST_KEYS: Record<string, string> = {
    master: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN1gL4pEbJ+pA0x8MRp0imhObB65+/I5zwANfuyrlES8",
    node1: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ4qxSDWKQW3ZjvCBvVIg0kYYRvCfhYzu8i1H1L8YQqr",
    node2: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGPeikZ6I4kaq9DcpaaOrt6eD2xUmsleN9Y1eEeFEIHa",
};

/** The documented topology (Pulumi.dev.yaml), as raw config strings. */
export function documentedRaw(extra: Record<string, string | undefined> = {}): RawConfig {
    return {
        domain: "danran.com",
        hosts: JSON.stringify([
            { name: "master", address: "192.168.100.2", roles: ["master", "etcd", "registry"], hostKey: HOST_KEYS.master },
            { name: "node1", address: "192.168.100.3", roles: ["node"], hostKey: HOST_KEYS.node1 },
            { name: "node2", address: "192.168.100.4", roles: ["node"], hostKey: HOST_KEYS.node2 },
        ]),
        sshPrivateKey: "<secret>",
        ...extra,
    };
}
