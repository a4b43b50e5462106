// The four custom resources the plugin serves (provider/) and the program declares (components/resources/): their
// type tokens, the outputs kept secret, and the properties of each, which are what the state holds.
import type { CheckConnection, SshProxy } from "./connection.ts";

export type PluginResource = "HostCheck" | "HostKey" | "Pki" | "HostScripts";

export const SECRET_OUTPUTS: Readonly<Record<PluginResource, readonly string[]>> = {
    HostCheck: ["connection", "secretStdin"],
    HostKey: ["proxy"],
    Pki: ["caKey", "keys"],
    HostScripts: [],
};

export const typeToken = (type: PluginResource) => `host-topology:index:${type}`;

// ---- HostCheck: drift of one host step ----

export interface CheckProps {
    connection: CheckConnection;
    /** e.g. "bash /usr/local/lib/host-topology/etcd.sh" ("sudo -n bash ..." for a user other than root) */
    script: string;
    /** The SSH user is not root: a repair writes the scripts through `sudo -n`. */
    sudo?: boolean;
    /**
     * The step's script, remote path -> sha256 of the program's copy, and its library, the remote directory (ending in
     * "/") -> the library's one digest (LIB_SHA256). A repair puts them back first (a reset host), read from
     * `sourceDir` and checked against these; the state keeps only the hashes.
     */
    files: Record<string, string>;
    /** Where the program's copies are, relative to the project directory (the provider's working directory). */
    sourceDir: string;
    /** The step's parameters (same stdin as apply). */
    stdin: string;
    /** The step's secret parameters, sent after stdin (check and repair then need no file on the host). Secret. */
    secretStdin?: string;
    /** Drifted items, item -> reason. Desired: {}. */
    drift: Record<string, string>;
    /**
     * The same as text, one item a line, a file's diff indented under it (reportOf). Desired: NO_DRIFT. The engine
     * shows a string that is multi-line before and after as a line diff, so a refresh shows the drift line by line.
     */
    report?: string;
}

// ---- HostKey: the key one host must present ----

export interface HostKeyProps {
    /** The host's name in the topology (for messages). */
    name: string;
    host: string;
    port: number;
    /** The pinned key (`type base64`); unset = accept-new (record the first key seen). */
    pinned?: string;
    /** Reach the host through this bastion; its key is checked too. */
    proxy?: SshProxy & { privateKey: string };
    /** true in `pulumi up` (the program is not a preview): read and compare the host's key. */
    verify: boolean;
}

export interface HostKeyOuts extends HostKeyProps {
    /** The key in effect (`type base64`). */
    publicKey: string;
    /** Its SHA256 fingerprint. */
    fingerprint: string;
}

// ---- HostScripts: the scripts of one host ----

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

// ---- Pki: a private CA and its certificates ----

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
