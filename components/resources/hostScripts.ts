// The scripts of one host, the program's side: every file of host/ goes to the host as one custom
// resource of the project's provider plugin (provider/hostScripts.ts puts them over its pooled SSH connection),
// instead of an upload per step. It is the host's first contact too: it waits for sshd (connection.dialErrorLimit),
// checks sudo for a non-root user, and reads the OS. The state keeps only the scripts' hashes and the OS; the
// connection (it holds the private key, or names its file) is an input only.
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import type { CheckConnection } from "../../contract/connection.ts";
import { providerOptions, typeToken } from "./options.ts";

export interface HostScriptsArgs {
    readonly connection: pulumi.Input<CheckConnection>;
    readonly dir: string;
    readonly files: Record<string, string>;
    readonly sourceDir: string;
    readonly sudo?: boolean;
    readonly packages?: string[];
    readonly packageListsMaxAge?: number;
}

/** Every host script and the library's files, path relative to host/ (e.g. `lib/step.sh`) -> sha256, sorted. */
export function scriptFiles(scriptsDir: string, sha256: (file: string) => string): Record<string, string> {
    const names = (dir: string): string[] =>
        fs
            .readdirSync(path.join(scriptsDir, dir))
            .filter((f) => f.endsWith(".sh"))
            .map((f) => path.posix.join(dir, f));
    return Object.fromEntries([...names("."), ...names("lib")].sort().map((f) => [f, sha256(f)]));
}

/** The scripts of one host (see the file comment). A script that changed is put again by an update. */
export class HostScripts extends pulumi.CustomResource {
    declare public readonly dir: pulumi.Output<string>;
    declare public readonly files: pulumi.Output<Record<string, string>>;
    /** `user@host:port hostKey` (and the bastion's) the scripts were put on: no private key. */
    declare public readonly target: pulumi.Output<string>;
    /** `ID VERSION_ID` of the host's /etc/os-release, e.g. `debian 12`, read when the scripts were put. */
    declare public readonly os: pulumi.Output<string>;

    constructor(name: string, args: HostScriptsArgs, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("HostScripts"), name, { ...args, os: undefined }, providerOptions("HostScripts", opts));
    }
}
