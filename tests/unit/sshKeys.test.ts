// The host key helpers against OpenSSH itself: fingerprints as ssh-keygen prints them, known_hosts lines as
// ssh-keygen -H hashes them.
import { expect } from "chai";
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { fingerprint, knownHostsName, lookupKnownHosts, parsePublicKey, type PublicKey } from "../../contract/sshKeys.ts";

describe("sshKeys: host keys and known_hosts", () => {
    let dir = "";
    const keys: Record<string, string> = {};
    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "sshkeys-"));
        for (const t of ["ed25519", "ecdsa", "rsa"]) {
            cp.execFileSync("ssh-keygen", ["-q", "-t", t, "-N", "", "-C", `test-${t}`, "-f", path.join(dir, t)]);
            keys[t] = fs.readFileSync(path.join(dir, `${t}.pub`), "utf8").trim();
        }
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("parses each type of public key and fingerprints it as ssh-keygen -l does", () => {
        for (const t of ["ed25519", "ecdsa", "rsa"]) {
            const k = parsePublicKey(keys[t]);
            expect(k, keys[t]).to.not.be.a("string");
            const printed = cp
                .execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", path.join(dir, `${t}.pub`)])
                .toString()
                .split(" ")[1];
            expect(fingerprint(k as PublicKey)).to.equal(printed);
        }
    });

    it("rejects what is not a key, saying why", () => {
        expect(parsePublicKey("ssh-ed25519")).to.match(/must be "<type> <base64>"/);
        expect(parsePublicKey("ssh-ed25519 AAAA$$")).to.match(/not base64/);
        expect(parsePublicKey(`ssh-ed25519 ${keys.rsa.split(" ")[1]}`)).to.match(/is a ssh-rsa key, not ssh-ed25519/);
        expect(parsePublicKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==")).to.match(/wrong length/);
        expect(parsePublicKey("ssh-dss AAAA")).to.match(/unknown key type "ssh-dss"/);
    });

    it("finds hashed entries (ssh-keygen -H), [host]:port entries, wildcards and negations; prefers ed25519; drops @revoked keys", () => {
        const plain = [
            `10.0.0.5 ${keys.rsa}`,
            `10.0.0.5,web.example.com ${keys.ed25519}`,
            `[10.0.0.6]:2222 ${keys.ecdsa}`,
            `*.example.org,!bad.example.org ${keys.ecdsa}`,
        ].join("\n");
        const file = path.join(dir, "known_hosts");
        fs.writeFileSync(file, plain + "\n");
        cp.execFileSync("ssh-keygen", ["-q", "-H", "-f", file]);
        const hashed = fs.readFileSync(file, "utf8");
        expect(hashed).to.not.contain("10.0.0.5");
        for (const text of [plain, hashed]) {
            expect(lookupKnownHosts(text, ["10.0.0.5"], 22).keys.map((k) => k.type)).to.deep.equal(["ssh-ed25519", "ssh-rsa"]);
            expect(lookupKnownHosts(text, ["web.example.com"], 22).keys.map((k) => k.type)).to.deep.equal(["ssh-ed25519"]);
            expect(lookupKnownHosts(text, ["10.0.0.6"], 22).keys).to.deep.equal([]);
            expect(lookupKnownHosts(text, ["10.0.0.6"], 2222).keys.map((k) => k.type)).to.deep.equal(["ecdsa-sha2-nistp256"]);
        }
        expect(lookupKnownHosts(plain, ["a.example.org"], 22).keys).to.have.length(1);
        expect(lookupKnownHosts(plain, ["bad.example.org"], 22).keys).to.have.length(0);
        const revoked = `${plain}\n@revoked * ${keys.ed25519}`;
        expect(lookupKnownHosts(revoked, ["10.0.0.5"], 22).keys.map((k) => k.type)).to.deep.equal(["ssh-rsa"]);
        expect(knownHostsName("h", 22)).to.equal("h");
        expect(knownHostsName("h", 2200)).to.equal("[h]:2200");
    });

    it("names match without regard to case, as ssh does; a file read again with other lines gives its own keys (each file is parsed once, not once per host)", () => {
        const text = `Web.Example.com,10.0.0.5 ${keys.ed25519}\n[WEB.example.com]:2222 ${keys.rsa}\n`;
        expect(lookupKnownHosts(text, ["web.example.com"], 22).keys.map((k) => k.type)).to.deep.equal(["ssh-ed25519"]);
        expect(lookupKnownHosts(text, ["web.EXAMPLE.com"], 2222).keys.map((k) => k.type)).to.deep.equal(["ssh-rsa"]);
        // The same host, its key changed in the file (a rotation): the new key, not the one parsed before.
        const rotated = text.replace(keys.ed25519, keys.ecdsa);
        expect(lookupKnownHosts(rotated, ["10.0.0.5"], 22).keys.map((k) => k.type)).to.deep.equal(["ecdsa-sha2-nistp256"]);
        expect(lookupKnownHosts(text, ["10.0.0.5"], 22).keys.map((k) => k.type)).to.deep.equal(["ssh-ed25519"]);
    });
});
