// The one mechanism every component uses to change a host: run a script of host/ (the host's
// HostScripts put them all there) with its parameters as data on stdin, never spliced into the command line and
// never in the environment (which only reaches hosts whose sshd has AcceptEnv).
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as random from "@pulumi/random";
import type { CheckConnection } from "../contract/connection.ts";
import { HostCheck, putFileCommand } from "./resources/hostCheck.ts";
import { SECRET_PARAMS_HEADER, encodeParams, secretsDigest } from "../contract/params.ts";
import { DEFAULT_PER_DIAL_TIMEOUT } from "../contract/checkFormat.ts";
import { libraryDigest, libraryFiles } from "../contract/library.ts";

export { encodeParams } from "../contract/params.ts";
export { SUDO_CHECK } from "../contract/checkFormat.ts";

/** The host scripts: one per component, and their library (lib/). */
export const SCRIPTS_DIR = path.join(import.meta.dirname, "..", "host");

/** The library every script sources (host/lib/), by name: the order its one digest (LIB_SHA256) covers. */
export const LIB_FILES = libraryFiles(path.join(SCRIPTS_DIR, "lib")).map((f) => `lib/${f}`);

export type Connection = command.types.input.remote.ConnectionArgs;

/** What a step needs of its host: HostBase provides it. */
export interface HostContext {
    readonly connection: pulumi.Input<Connection>;
    /** Remote directory holding the scripts. */
    readonly scriptDir: string;
    /** Puts every script on the host (a non-root user's into STAGING_DIR): each step runs after it. */
    readonly scripts: pulumi.Resource;
    /** The SSH user is not root: scripts run through `sudo -n`, and go to ~/.host-topology first. */
    readonly sudo: boolean;
    /** Parameters every step of the host gets (e.g. PKG_LISTS_MAX_AGE when not the default). */
    readonly commonParams: Readonly<Record<string, string>>;
    /** The file connection.privateKey was read from: the plugin's connections read it there (checkConnection). */
    readonly privateKeyPath?: string;
}

/**
 * The host scripts' directory as the plugin finds it: relative to the project directory, where program and plugin
 * run, when the scripts are in it (this project); else absolute (the plugin's own, when it constructs the components
 * for a program in another language).
 */
export function scriptsSourceDir(): string {
    const rel = path.relative(process.cwd(), SCRIPTS_DIR);
    return rel.startsWith("..") || path.isAbsolute(rel) ? SCRIPTS_DIR : rel || ".";
}

/** Where a non-root user's scripts land (relative: the user's home, for SFTP and the shell alike). */
export const STAGING_DIR = ".host-topology";

const shaCache = new Map<string, string>();

/** sha256 of a file of host/, e.g. `time-sync.sh` or `lib/step.sh`. */
export function scriptSha256(file: string): string {
    let sha = shaCache.get(file);
    if (sha === undefined) {
        sha = crypto
            .createHash("sha256")
            .update(fs.readFileSync(path.join(SCRIPTS_DIR, file)))
            .digest("hex");
        shaCache.set(file, sha);
    }
    return sha;
}

/** The library's one digest, as lib/step.sh's lib_sha256 computes it: sha256 of its files, one after another. */
export function libSha256(): string {
    let sha = shaCache.get("lib/");
    if (sha === undefined) {
        sha = libraryDigest(LIB_FILES.map((f) => fs.readFileSync(path.join(SCRIPTS_DIR, f))));
        shaCache.set("lib/", sha);
    }
    return sha;
}

/** Where a step's secret parameters are kept on its host (root only, 0600): read by the step's apply and check. */
export function secretsFile(name: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`bad step name ${name}`);
    return `/var/lib/host-topology/secrets/${name}`;
}

/**
 * Who applied a step, recorded on the host with what it applied (the library's owner records, lib/step.sh): project, stack and step
 * name. A step's `remove` leaves the host alone when another step has applied there since, e.g. the same host's
 * step under a new name (a renamed host, a reordered etcd member): Pulumi creates that one first and deletes the
 * old one at the end.
 */
export function stepOwner(name: string): string {
    return `${pulumi.getProject()}/${pulumi.getStack()}/${name}`;
}

/**
 * The connection as the plugin's resources take it (HostCheck, HostScripts): remote.Command's defaults filled in.
 * With `privateKeyPath` (the file the key was read from), it names that file instead of holding the key: the plugin
 * reads the key at each dial, and the connection, which then holds nothing secret, is plain in the state.
 */
export function checkConnection(connection: pulumi.Input<Connection>, privateKeyPath?: string): pulumi.Output<CheckConnection> {
    const c = pulumi.output(connection).apply((c) => ({
        host: c.host,
        port: c.port ?? 22,
        user: c.user ?? "root",
        ...(privateKeyPath ? { privateKey: "", privateKeyPath } : { privateKey: c.privateKey ?? "" }),
        dialErrorLimit: c.dialErrorLimit ?? 10,
        // Only when not the default: the connections in earlier states stay the same (no update of every check).
        ...(c.perDialTimeout !== undefined && c.perDialTimeout !== DEFAULT_PER_DIAL_TIMEOUT ? { perDialTimeout: c.perDialTimeout } : {}),
        ...(c.hostKey ? { hostKey: c.hostKey } : {}),
        ...(c.proxy
            ? {
                  proxy: {
                      host: c.proxy.host,
                      port: c.proxy.port ?? 22,
                      user: c.proxy.user ?? "root",
                      ...(c.proxy.hostKey ? { hostKey: c.proxy.hostKey } : {}),
                  },
              }
            : {}),
    }));
    // Every secret of the connection (the key, the bastion's connection) was left out above.
    return privateKeyPath ? pulumi.unsecret(c) : c;
}

export interface HostStepArgs {
    readonly host: HostContext;
    /** Script file name in host/, e.g. `time-sync.sh`. */
    readonly script: string;
    /** Parameters, plain text in the state and the preview: none may be secret (see secretParams). */
    readonly params: Readonly<Record<string, pulumi.Input<string>>>;
    /**
     * Secret parameters (private keys, the htpasswd line): a command of their own puts them on the host (root only),
     * so that they stay secret in the state without hiding the plain parameters' changes; the step's plain stdin
     * carries only their keyed digest.
     */
    readonly secretParams?: Readonly<Record<string, pulumi.Input<string>>>;
    /** Resources that must exist before the script runs. */
    readonly dependsOn: pulumi.Input<pulumi.Resource>[];
    /** Timeout for one run of the script, e.g. "20m". */
    readonly timeout?: string;
    /** Track drift of what the step manages with a HostCheck (read on refresh). Default: true. */
    readonly driftCheck?: boolean;
    /** HostChecks to repair before this one (the host's base: hosts file and scripts). */
    readonly checkAfter?: pulumi.Resource[];
    /** Further files of host/ a non-root user's step installs from the staging dir with its own (HostBase: the library). */
    readonly installAlso?: string[];
}

export interface HostStep {
    readonly run: command.remote.Command;
    /** Puts the secret parameters on the host (with secretParams). */
    readonly secrets?: command.remote.Command;
    readonly check?: HostCheck;
}

/**
 * Runs `bash <dir>/<script> apply` with the parameters on stdin, after the host's HostScripts. The command re-runs
 * only when its stdin changes: the parameters, or the script or its library (their hashes are parameters, which the
 * script also checks against the files on the host).
 */
export function hostStep(parent: pulumi.Resource, name: string, args: HostStepArgs): HostStep {
    const { connection, scriptDir, sudo } = args.host;
    const remotePath = `${scriptDir}/${args.script}`;
    const sha = scriptSha256(args.script);
    const fixed = { OWNER: stepOwner(name), SCRIPT_SHA256: sha, LIB_SHA256: libSha256() };
    const secretKeys = Object.keys(args.secretParams ?? {});
    let stdin: pulumi.Output<string>;
    let secretStdin: pulumi.Output<string> | undefined;
    let secrets: command.remote.Command | undefined;
    if (secretKeys.length === 0) {
        stdin = pulumi.all(args.params).apply((p) => encodeParams({ ...args.host.commonParams, ...p, ...fixed }));
    } else {
        for (const k of secretKeys) if (k in args.params) throw new Error(`${name}: parameter ${k} is both plain and secret`);
        const file = secretsFile(name);
        const digestKey = new random.RandomBytes(`${name}-digest-key`, { length: 32 }, { parent });
        const encodedSecrets = pulumi.all(args.secretParams!).apply((p) => encodeParams(p, SECRET_PARAMS_HEADER));
        // The digest is computed from secrets, but tells nothing about them: it is plain in the state and the preview.
        const digest = pulumi.unsecret(pulumi.all([digestKey.hex, encodedSecrets]).apply(([key, enc]) => secretsDigest(key, enc)));
        secretStdin = pulumi.secret(pulumi.all([encodedSecrets, digest]).apply(([enc, d]) => `${enc}SECRETS_OF=${d}\n`));
        stdin = pulumi
            .all([args.params, digest])
            .apply(([p, d]) => encodeParams({ ...args.host.commonParams, ...p, ...fixed, SECRETS_FILE: file, SECRETS_DIGEST: d }));
        const put = putFileCommand(file);
        secrets = new command.remote.Command(
            `${name}-secrets`,
            {
                connection,
                create: sudo ? `sudo -n sh -c 'umask 077 && ${put}'` : `umask 077 && ${put}`,
                delete: `${sudo ? "sudo -n " : ""}rm -f ${file}`,
                stdin: secretStdin,
                addPreviousOutputInEnv: false,
            },
            { parent, dependsOn: args.dependsOn, customTimeouts: { create: "5m", update: "5m", delete: "5m" } },
        );
    }
    // root runs the script where HostScripts put it; another user installs it from the staging dir first, as root.
    const files = [args.script, ...(args.installAlso ?? [])];
    const staged = files.map((f) => `${STAGING_DIR}/${f}`).join(" ");
    // One `install -t` per directory of host/ (the scripts, lib/), as the files are laid out in the script dir.
    const dirs = [...new Set(files.map((f) => path.posix.dirname(f)))];
    const install = dirs
        .map((d) => {
            const these = files.filter((f) => path.posix.dirname(f) === d).map((f) => `${STAGING_DIR}/${f}`);
            return `sudo -n install -D -m 0644 -t ${d === "." ? scriptDir : `${scriptDir}/${d}`} ${these.join(" ")}`;
        })
        .join(" && ");
    const run = new command.remote.Command(
        `${name}-run`,
        {
            connection,
            create: sudo ? `${install} && sudo -n bash ${remotePath} apply` : `bash ${remotePath} apply`,
            delete: sudo ? `sudo -n bash ${remotePath} remove && rm -f ${staged}` : `bash ${remotePath} remove`,
            stdin,
            addPreviousOutputInEnv: false,
        },
        {
            parent,
            dependsOn: [args.host.scripts, ...(secrets ? [secrets] : []), ...args.dependsOn],
            customTimeouts: { create: args.timeout ?? "20m", update: args.timeout ?? "20m", delete: "10m" },
        },
    );
    let check: HostCheck | undefined;
    if (args.driftCheck ?? true) {
        check = new HostCheck(
            `${name}-check`,
            {
                connection: checkConnection(connection, args.host.privateKeyPath),
                ...(args.host.privateKeyPath ? { plainConnection: true } : {}),
                script: `${sudo ? "sudo -n " : ""}bash ${remotePath}`,
                ...(sudo ? { sudo } : {}),
                // The library by its one digest (a key ending in "/"): the plugin reads its files from its copy.
                files: { [remotePath]: sha, [`${scriptDir}/lib/`]: libSha256() },
                sourceDir: scriptsSourceDir(),
                stdin,
                ...(secretStdin ? { secretStdin } : {}),
            },
            { parent, dependsOn: [run, ...(args.checkAfter ?? [])] },
        );
    }
    return { run, secrets, check };
}
