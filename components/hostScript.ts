// The one mechanism every component uses to change a host: upload a script from components/scripts/ and run
// it with its parameters as data on stdin (never spliced into the command line, never in the environment,
// which only reaches hosts whose sshd has AcceptEnv).
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { HostCheck } from "./hostCheck";

export const SCRIPTS_DIR = path.join(__dirname, "scripts");

export type Connection = command.types.input.remote.ConnectionArgs;

const shaCache = new Map<string, string>();

/** sha256 of a script shipped in components/scripts/. */
export function scriptSha256(file: string): string {
    let sha = shaCache.get(file);
    if (sha === undefined) {
        sha = crypto.createHash("sha256").update(fs.readFileSync(path.join(SCRIPTS_DIR, file))).digest("hex");
        shaCache.set(file, sha);
    }
    return sha;
}

/** Encodes parameters for the scripts' load_params: `KEY=<base64>` lines, keys sorted (stable diffs). */
export function encodeParams(params: Readonly<Record<string, string>>): string {
    return (
        Object.keys(params)
            .sort()
            .map((k) => {
                if (!/^[A-Z][A-Z0-9_]*$/.test(k)) throw new Error(`bad parameter name ${k}`);
                return `${k}=${Buffer.from(params[k], "utf8").toString("base64")}`;
            })
            .join("\n") + "\n"
    );
}

export interface HostStepArgs {
    readonly connection: pulumi.Input<Connection>;
    /** Remote directory holding the scripts (HostBase creates it and uploads lib.sh there). */
    readonly scriptDir: string;
    /** Script file name in components/scripts/. */
    readonly script: string;
    /** Parameters; secret inputs keep the whole stdin secret in the state. */
    readonly params: Readonly<Record<string, pulumi.Input<string>>>;
    /** Resources that must exist before the script is uploaded and run. */
    readonly dependsOn: pulumi.Input<pulumi.Resource>[];
    /** Timeout for one run of the script, e.g. "20m". */
    readonly timeout?: string;
    /** Track drift of what the step manages with a HostCheck (read on refresh). Default: true. */
    readonly driftCheck?: boolean;
    /** HostChecks to repair before this one (the host's base: hosts file and scripts). */
    readonly checkAfter?: pulumi.Resource[];
}

export interface HostStep {
    readonly upload: command.remote.CopyToRemote;
    readonly run: command.remote.Command;
    readonly check?: HostCheck;
}

/**
 * Uploads `script` and runs `bash <dir>/<script> apply` with the parameters on stdin. The command re-runs
 * only when its stdin changes: the parameters, or the script or lib.sh (their hashes are parameters, which the
 * script also checks against the uploaded files).
 */
export function hostStep(parent: pulumi.Resource, name: string, args: HostStepArgs): HostStep {
    const remotePath = `${args.scriptDir}/${args.script}`;
    const sha = scriptSha256(args.script);
    const upload = new command.remote.CopyToRemote(
        `${name}-upload`,
        {
            connection: args.connection,
            source: new pulumi.asset.FileAsset(path.join(SCRIPTS_DIR, args.script)),
            remotePath,
            triggers: [sha],
        },
        { parent, dependsOn: args.dependsOn },
    );
    const stdin = pulumi
        .all(args.params)
        .apply((p) => encodeParams({ ...p, SCRIPT_SHA256: sha, LIB_SHA256: scriptSha256("lib.sh") }));
    const run = new command.remote.Command(
        `${name}-run`,
        {
            connection: args.connection,
            create: `bash ${remotePath} apply`,
            delete: `bash ${remotePath} remove`,
            stdin,
            addPreviousOutputInEnv: false,
        },
        {
            parent,
            dependsOn: [upload, ...args.dependsOn],
            customTimeouts: { create: args.timeout ?? "20m", update: args.timeout ?? "20m", delete: "10m" },
        },
    );
    let check: HostCheck | undefined;
    if (args.driftCheck ?? true) {
        check = new HostCheck(
            `${name}-check`,
            {
                connection: pulumi.output(args.connection).apply((c) => ({
                    host: c.host,
                    port: c.port ?? 22,
                    user: c.user ?? "root",
                    privateKey: c.privateKey ?? "",
                    dialErrorLimit: c.dialErrorLimit ?? 10,
                })),
                script: `bash ${remotePath}`,
                files: { [remotePath]: sha, [`${args.scriptDir}/lib.sh`]: scriptSha256("lib.sh") },
                // The program and the dynamic provider both run in the project directory.
                sourceDir: path.relative(process.cwd(), SCRIPTS_DIR) || ".",
                stdin,
            },
            { parent, dependsOn: [run, ...(args.checkAfter ?? [])] },
        );
    }
    return { upload, run, check };
}
