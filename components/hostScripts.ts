// The scripts of one host, the program's side: every script of components/scripts/ goes to the host as one custom
// resource of the project's provider plugin (provider/hostScripts.ts puts them over its pooled SSH connection),
// instead of an upload per step. It is the host's first contact too: it waits for sshd (connection.dialErrorLimit),
// checks sudo for a non-root user, and reads the OS. The state keeps only the scripts' hashes and the OS; the
// connection (it holds the private key, or names its file) is an input only.
import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import type { CheckConnection } from "./hostCheck.ts";
import { providerOptions, typeToken } from "./providerResource.ts";

export interface ScriptsProps {
    connection: CheckConnection;
    /** Remote directory the scripts go to: the host's script dir, or a non-root user's staging dir (relative: home). */
    dir: string;
    /** File name -> sha256 of the program's copy. */
    files: Record<string, string>;
    /** Where the program's copies are, relative to the project directory (the provider's working directory). */
    sourceDir: string;
    /** The user is not root: sudo must work without a password (checked first, a clear error otherwise). */
    sudo?: boolean;
    /** Package sets of the family table (packages.sh: chrony, ntp, registry, etcd), installed at once after the put. */
    packages?: string[];
    /** Package lists older than this (seconds) are refreshed before that install; only when not the default 3600. */
    packageListsMaxAge?: number;
}

export interface HostScriptsArgs {
    readonly connection: pulumi.Input<CheckConnection>;
    readonly dir: string;
    readonly files: Record<string, string>;
    readonly sourceDir: string;
    readonly sudo?: boolean;
    readonly packages?: string[];
    readonly packageListsMaxAge?: number;
}

/** Every host script, file name -> sha256 (sorted by name). */
export function scriptFiles(scriptsDir: string, sha256: (file: string) => string): Record<string, string> {
    const names = fs.readdirSync(scriptsDir).filter((f) => f.endsWith(".sh")).sort();
    return Object.fromEntries(names.map((f) => [f, sha256(f)]));
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
