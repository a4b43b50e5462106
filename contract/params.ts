// The framing of a host step's parameters (its stdin), both ways: the program encodes them, host/lib/params.sh's read_records
// reads them on the host, and tools/previewSummary.ts reads them back from `pulumi preview --json`.
import * as crypto from "crypto";

/** First line of the parameters (host/lib/params.sh's load_params): names the framing. */
export const PARAMS_HEADER = "# host-topology parameters, format 2";
/** First line of a step's secret parameters: a stream of their own, kept apart from the plain ones. */
export const SECRET_PARAMS_HEADER = "# host-topology secret parameters, format 2";

/**
 * Encodes parameters as plain text, so that `pulumi preview --diff` shows the lines of a rendered file that change.
 * Keys sorted (stable diffs); after the header line, one record per key:
 *   KEY=value            a value without a newline (empty included);
 *   KEY<<DELIM           a value with newlines: the lines up to the line DELIM, each ending with a newline;
 *   KEY<<DELIM -n        the same, but the value's last newline is not part of it (it had no final newline).
 * DELIM is EOF, or EOF1, EOF2, ... when EOF is a line of the value: no value can end its record early. Any
 * character but NUL (a shell variable cannot hold it) passes unchanged: bytes, \r, trailing blanks.
 */
export function encodeParams(params: Readonly<Record<string, string>>, header = PARAMS_HEADER): string {
    const records = Object.keys(params)
        .sort()
        .map((k) => {
            if (!/^[A-Z][A-Z0-9_]*$/.test(k)) throw new Error(`bad parameter name ${k}`);
            const v = params[k];
            if (typeof v !== "string") throw new Error(`parameter ${k} must be a string, got ${typeof v}`);
            if (v.includes("\0")) throw new Error(`parameter ${k} contains a NUL character, which a host script cannot read`);
            if (!v.includes("\n")) return `${k}=${v}\n`;
            const body = v.endsWith("\n") ? v : `${v}\n`;
            const lines = new Set(body.slice(0, -1).split("\n"));
            let delim = "EOF";
            for (let i = 1; lines.has(delim); i++) delim = `EOF${i}`;
            return `${k}<<${delim}${v.endsWith("\n") ? "" : " -n"}\n${body}${delim}\n`;
        });
    return `${header}\n${records.join("")}`;
}

/**
 * Reads the framing back (as host/lib/params.sh's read_records does). The framing before format 2 (`KEY=<base64>` lines, no
 * header) is read too: a stack deployed by an earlier version holds it.
 */
export function decodeParams(text: string): Record<string, string> {
    const out: Record<string, string> = {};
    const lines = text.split("\n");
    if (lines[0] !== PARAMS_HEADER && lines[0] !== SECRET_PARAMS_HEADER) {
        for (const line of lines.filter(Boolean)) {
            const i = line.indexOf("=");
            if (i < 1) throw new Error(`bad parameter line ${line.slice(0, 40)}`);
            out[line.slice(0, i)] = Buffer.from(line.slice(i + 1), "base64").toString("utf8");
        }
        return out;
    }
    for (let i = 0; i < lines.length; i++) {
        const line = lines[i];
        if (line === "" || line === PARAMS_HEADER || line === SECRET_PARAMS_HEADER) continue;
        const single = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
        const multi = /^([A-Z][A-Z0-9_]*)<<([A-Za-z0-9_]+)( -n)?$/.exec(line);
        if (single) out[single[1]] = single[2];
        else if (multi) {
            const end = lines.indexOf(multi[2], i + 1);
            if (end < 0) throw new Error(`parameter ${multi[1]}: its closing line ${multi[2]} is missing`);
            const v = lines.slice(i + 1, end).join("\n") + "\n";
            out[multi[1]] = multi[3] ? v.slice(0, -1) : v;
            i = end;
        } else throw new Error(`bad parameter line ${line.slice(0, 40)}`);
    }
    return out;
}

/**
 * A keyed digest (HMAC-SHA256) of a step's secret parameters: the plain parameters carry it, so that a changed
 * secret re-runs the step while the state and the preview show only that the digest changed. The key is the
 * step's own random secret, so the digest tells nothing about the secret, even a guessable one.
 */
export function secretsDigest(keyHex: string, encodedSecrets: string): string {
    return crypto.createHmac("sha256", Buffer.from(keyHex, "hex")).update(encodedSecrets, "utf8").digest("hex");
}
