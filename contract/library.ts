// The host scripts' library (host/lib/): the files every script sources, and the one digest that names them all
// (lib/step.sh's lib_sha256, the steps' LIB_SHA256), as the program and the plugin both compute them.
import * as crypto from "crypto";
import * as fs from "fs";

/** The library's files in a copy of host/lib/: its `*.sh`, sorted by name, the order its digest covers. */
export function libraryFiles(libDir: string): string[] {
    return fs
        .readdirSync(libDir)
        .filter((f) => f.endsWith(".sh"))
        .sort();
}

/** The library's one digest: sha256 of its files' contents, one after another. */
export function libraryDigest(contents: Array<string | Buffer>): string {
    const h = crypto.createHash("sha256");
    for (const c of contents) h.update(c);
    return h.digest("hex");
}
