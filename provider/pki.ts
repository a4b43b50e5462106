// The PKI, the plugin's side of components/resources/pki.ts (see there): openssl on the machine that runs Pulumi.
import * as cp from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { PkiInputs, PkiOutputs } from "../contract/resources.ts";
import { type ResourceOps } from "./ops.ts";

/** Runs openssl in `dir`; a missing openssl is an error that says what needs it. */
function openssl(dir: string, args: string[]): void {
    const r = cp.spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (r.error) throw new Error(`TLS (etcdTls/registryTls): cannot run openssl on this machine (${r.error.message}); install openssl`);
    if (r.status !== 0) throw new Error(`TLS (etcdTls/registryTls): openssl ${args.join(" ")} failed: ${r.stderr}`);
}

/** Runs fn in a private temp dir that is removed afterwards (it holds private keys). */
function inTempDir<T>(fn: (dir: string, write: (f: string, s: string) => void, read: (f: string) => string) => T): T {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "host-topology-pki-"));
    try {
        return fn(
            dir,
            (f, s) => fs.writeFileSync(path.join(dir, f), s, { mode: 0o600 }),
            (f) => fs.readFileSync(path.join(dir, f), "utf8"),
        );
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** A new CA: P-256 key, self-signed, CA:TRUE. */
export function newCa(name: string, days: number): { cert: string; key: string } {
    return inTempDir((dir, write, read) => {
        write(
            "ca.cnf",
            `[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=${name}\n[ext]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n`,
        );
        openssl(dir, ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"]);
        openssl(dir, [
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-sha256",
            "-days",
            String(days),
            "-config",
            "ca.cnf",
            "-extensions",
            "ext",
            "-out",
            "ca.crt",
        ]);
        return { cert: read("ca.crt"), key: read("ca.key") };
    });
}

/** A certificate signed by the CA, with a new P-256 key; `usage` is the extendedKeyUsage. */
export function issueCert(
    ca: { cert: string; key: string },
    cn: string,
    sans: readonly string[],
    usage: string,
    days: number,
): { cert: string; key: string } {
    return inTempDir((dir, write, read) => {
        write("ca.crt", ca.cert);
        write("ca.key", ca.key);
        const san = sans.length > 0 ? `subjectAltName=${sans.join(",")}\n` : "";
        write(
            "leaf.cnf",
            `[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=${cn}\n[ext]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=${usage}\n${san}authorityKeyIdentifier=keyid\n`,
        );
        openssl(dir, ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key"]);
        openssl(dir, ["req", "-new", "-key", "leaf.key", "-config", "leaf.cnf", "-out", "leaf.csr"]);
        const serial = `0x${crypto.randomBytes(16).toString("hex")}`;
        openssl(dir, [
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            serial,
            "-sha256",
            "-days",
            String(days),
            "-extfile",
            "leaf.cnf",
            "-extensions",
            "ext",
            "-out",
            "leaf.crt",
        ]);
        return { cert: read("leaf.crt"), key: read("leaf.key") };
    });
}

/** Certificates for `certs`, keeping those in `old` whose request is unchanged. */
function issueAll(
    ca: { cert: string; key: string },
    inputs: PkiInputs,
    old?: PkiOutputs,
): { certs: Record<string, string>; keys: Record<string, string> } {
    const certs: Record<string, string> = {};
    const keys: Record<string, string> = {};
    for (const c of inputs.certs) {
        const before = old?.certs.find((o) => o.id === c.id);
        if (old && before && JSON.stringify(before) === JSON.stringify(c) && old.days === inputs.days && old.issued[c.id]) {
            certs[c.id] = old.issued[c.id];
            keys[c.id] = old.keys[c.id];
        } else {
            const issued = issueCert(ca, c.cn, c.sans, c.usage, inputs.days);
            certs[c.id] = issued.cert;
            keys[c.id] = issued.key;
        }
    }
    return { certs, keys };
}

export const pkiOps: ResourceOps = {
    async create(inputs: PkiInputs) {
        const ca = newCa(inputs.caName, inputs.days);
        const { certs, keys } = issueAll(ca, inputs);
        const outs: PkiOutputs = { ...inputs, caCert: ca.cert, caKey: ca.key, issued: certs, keys };
        return { id: crypto.randomBytes(8).toString("hex"), outs };
    },
    async diff(_id: string, olds: PkiOutputs, news: PkiInputs) {
        const changed = JSON.stringify(olds.certs) !== JSON.stringify(news.certs) || olds.days !== news.days || olds.caName !== news.caName;
        // A new CA name is a new CA (every holder of the old one must change): replace; the rest updates in place.
        return { changes: changed, replaces: olds.caName !== news.caName ? ["caName"] : [], deleteBeforeReplace: false };
    },
    async update(_id: string, olds: PkiOutputs, news: PkiInputs) {
        // The CA stays; only new or changed certificates are issued again.
        const { certs, keys } = issueAll({ cert: olds.caCert, key: olds.caKey }, news, olds);
        const outs: PkiOutputs = { ...olds, ...news, issued: certs, keys };
        return { outs };
    },
};
