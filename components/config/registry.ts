// The private registry: its settings are checked whether or not a host has role registry,
// and make a registry only when one does.
import { type Problems, bool, isDnsName, str } from "./problems.ts";
import type { HostSpec, RawConfig, TopologyConfig } from "./types.ts";

export function parseRegistry(raw: RawConfig, hosts: readonly HostSpec[], domain: string, p: Problems): TopologyConfig["registry"] {
    const registryHost = hosts.find((h) => h.roles.includes("registry"));
    const serverName = str(raw, "registryServerName", `registry.${domain}`);
    if (!isDnsName(serverName)) p.add("registryServerName", `must be a DNS name, got ${JSON.stringify(serverName)}`);
    const auth = bool(raw, "registryAuth", false, p);
    const tls = bool(raw, "registryTls", false, p);
    const user = str(raw, "registryUser", "registry");
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(user))
        p.add("registryUser", `must be 1-64 characters of [A-Za-z0-9._-], got ${JSON.stringify(user)}`);
    const storageDir = str(raw, "registryStorageDir", "/var/lib/registry");
    if (!/^\/[A-Za-z0-9._/-]+$/.test(storageDir) || storageDir.split("/").includes("..")) {
        p.add("registryStorageDir", `must be an absolute path, got ${JSON.stringify(storageDir)}`);
    }
    return registryHost ? { host: registryHost.name, serverName, auth, tls, user, storageDir } : undefined;
}
