import { expect } from "chai";
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { NO_DRIFT, putFileCommand } from "../../components/resources/hostCheck.ts";
import { hostCheckOps, parseCheckOutput, reportOf } from "../../provider/hostCheck.ts";
import { hostKeyOps } from "../../provider/hostKey.ts";

const conn = { host: "192.0.2.10", port: 22, user: "root", privateKey: "k" };
const props = (drift: Record<string, string>, stdin = "# host-topology parameters, format 2\nA=b\n") => ({
    connection: conn,
    script: "bash /x/etcd-member.sh",
    files: { "/x/etcd-member.sh": "0".repeat(64) },
    sourceDir: "host",
    stdin,
    drift,
});

describe("HostCheck (drift detection)", () => {
    it("parses `drift <item> <reason>` lines and ignores the rest", () => {
        const out = "ok etcd family=debian12\ndrift /etc/default/etcd content differs\nunchanged x\ndrift service:etcd disabled,inactive\n";
        expect(parseCheckOutput(out)).to.deep.equal({ "/etc/default/etcd": "content differs", "service:etcd": "disabled,inactive" });
        expect(parseCheckOutput("ok etcd\n")).to.deep.equal({});
    });

    it("parses a drift's `| ` detail lines (a file's diff) into a multi-line reason, byte for byte", () => {
        const out = [
            "drift /etc/chrony/chrony.conf content differs:",
            "| --- /etc/chrony/chrony.conf (on the host)",
            "| +++ /etc/chrony/chrony.conf (wanted)",
            "| @@ -1,2 +1,2 @@",
            "|  # managed",
            "| -server a  ",
            "| +server b",
            "|",
            "unchanged x",
            "| a detail after a line that is no drift is ignored",
            "drift service:chronyd disabled,inactive (want enabled,active)",
            "",
        ].join("\n");
        expect(parseCheckOutput(out)).to.deep.equal({
            "/etc/chrony/chrony.conf":
                "content differs:\n--- /etc/chrony/chrony.conf (on the host)\n+++ /etc/chrony/chrony.conf (wanted)\n@@ -1,2 +1,2 @@\n # managed\n-server a  \n+server b\n",
            "service:chronyd": "disabled,inactive (want enabled,active)",
        });
    });

    it("the report: the drift as text, each item a line, a file's diff indented under it; none as two lines", () => {
        expect(reportOf({})).to.equal(NO_DRIFT);
        expect(NO_DRIFT.split("\n").length).to.equal(3); // multi-line: the engine shows a change of it as a line diff
        expect(
            reportOf({
                "service:chrony": "disabled,inactive (want enabled,active)",
                "/etc/chrony/chrony.conf": "content differs:\n--- a\n+++ b\n-server x\n+server y\n",
            }),
        ).to.equal(
            [
                "drift found by the last check:",
                "/etc/chrony/chrony.conf: content differs:",
                "    --- a",
                "    +++ b",
                "    -server x",
                "    +server y",
                "service:chrony: disabled,inactive (want enabled,active)",
                "",
            ].join("\n"),
        );
    });

    it("diff: no changes without drift, so plain preview shows nothing and needs no host", async () => {
        const d = await hostCheckOps.diff!("id", props({}), props({}));
        expect(d.changes).to.equal(false);
    });

    it("diff: drift found by a refresh shows as a change of `drift` (repaired by update)", async () => {
        const d = await hostCheckOps.diff!("id", props({ "/etc/hosts": "managed block differs" }), props({}));
        expect(d.changes).to.equal(true);
        expect(d.replaces).to.deep.equal([]);
    });

    it("diff: new parameters are a change too (the step re-applied them)", async () => {
        const d = await hostCheckOps.diff!("id", props({}), props({}, "# host-topology parameters, format 2\nA=c\n"));
        expect(d.changes).to.equal(true);
        // New secret parameters alone (a renewed key) are one too.
        const secret = (v: string) => ({ ...props({}), secretStdin: `# host-topology secret parameters, format 2\nTLS_KEY=${v}\n` });
        expect((await hostCheckOps.diff!("id", secret("a"), secret("b"))).changes).to.equal(true);
        expect((await hostCheckOps.diff!("id", secret("a"), secret("a"))).changes).to.equal(false);
    });
});

describe("HostCheck and HostKey: the channel", () => {
    it("HostCheck diff: a re-pinned host key or another bastion is a change (the next refresh connects with it)", async () => {
        const withKey = (k?: string, proxy?: object) => ({
            ...props({}),
            connection: { ...conn, ...(k ? { hostKey: k } : {}), ...(proxy ? { proxy } : {}) },
        });
        expect((await hostCheckOps.diff!("id", withKey("ssh-ed25519 AAAA1"), withKey("ssh-ed25519 AAAA1"))).changes).to.equal(false);
        expect((await hostCheckOps.diff!("id", withKey("ssh-ed25519 AAAA1"), withKey("ssh-ed25519 AAAA2"))).changes).to.equal(true);
        expect(
            (await hostCheckOps.diff!("id", withKey("k"), withKey("k", { host: "192.0.2.1", port: 22, user: "root" }))).changes,
        ).to.equal(true);
    });

    it("HostCheck diff: a rotated SSH key is a change, so the state's connection (what refresh uses) follows it", async () => {
        const withPrivateKey = (privateKey: string) => ({ ...props({}), connection: { ...conn, privateKey } });
        expect((await hostCheckOps.diff!("id", withPrivateKey("old"), withPrivateKey("old"))).changes).to.equal(false);
        expect((await hostCheckOps.diff!("id", withPrivateKey("old"), withPrivateKey("new"))).changes).to.equal(true);
    });

    it("HostKey diff: plain preview (verify false) never connects; a new pinned key or address is a change", async () => {
        // 192.0.2.0/24 is TEST-NET: a connection attempt would fail the diff, so these prove no host is contacted.
        const olds = { name: "node1", host: "192.0.2.10", port: 22, verify: false, publicKey: "ssh-ed25519 AAAA1", fingerprint: "x" };
        const same = await hostKeyOps.diff!("id", olds, { name: "node1", host: "192.0.2.10", port: 22, verify: false });
        expect(same.changes).to.equal(false);
        const repinned = await hostKeyOps.diff!("id", olds, {
            name: "node1",
            host: "192.0.2.10",
            port: 22,
            verify: false,
            pinned: "ssh-ed25519 AAAA2",
        });
        expect(repinned.changes).to.equal(true);
        expect(repinned.replaces).to.deep.equal([]);
        const moved = await hostKeyOps.diff!("id", olds, { name: "node1", host: "192.0.2.11", port: 22, verify: false });
        expect(moved.replaces).to.deep.equal(["host", "port"]);
        // An update follows a new pin (not the recorded key) and fingerprints it as ssh-keygen does; without a pin
        // (accept-new) the key recorded at first contact stays.
        const pin = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN1gL4pEbJ+pA0x8MRp0imhObB65+/I5zwANfuyrlES8";
        const recorded = { ...olds, publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEN0WfoGVumrPR/1FAM8fbWxdv/4UK8lF6ox8J/Jz1Er" };
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hostkey-"));
        const keygen = (key: string) => {
            fs.writeFileSync(path.join(dir, "k.pub"), `${key}\n`);
            return cp.execFileSync("ssh-keygen", ["-l", "-f", path.join(dir, "k.pub")], { encoding: "utf8" }).split(" ")[1];
        };
        const repin = await hostKeyOps.update!("id", recorded, { name: "node1", host: "192.0.2.10", port: 22, verify: false, pinned: pin });
        expect(repin.outs.publicKey).to.equal(pin);
        expect(repin.outs.fingerprint).to.equal(`${keygen(pin)} (ssh-ed25519)`);
        const kept = await hostKeyOps.update!("id", recorded, { name: "node1", host: "192.0.2.10", port: 22, verify: false });
        expect(kept.outs.publicKey).to.equal(recorded.publicKey);
        expect(kept.outs.fingerprint).to.equal(`${keygen(recorded.publicKey)} (ssh-ed25519)`);
        fs.rmSync(dir, { recursive: true, force: true });
    });
});

describe("HostCheck repair: putting the scripts back", () => {
    it("several checks of one host putting lib.sh back at the same moment all succeed, and the file is whole", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "put-"));
        const file = path.join(dir, "scripts", "lib.sh");
        const content = "x".repeat(200000) + "\n";
        const put = () =>
            new Promise<number>((resolve) => {
                const p = cp.spawn("sh", ["-c", putFileCommand(file)]);
                p.on("close", (code) => resolve(code ?? -1));
                p.stdin.end(content);
            });
        const codes = await Promise.all(Array.from({ length: 24 }, put));
        expect(codes).to.deep.equal(codes.map(() => 0));
        expect(fs.readFileSync(file, "utf8")).to.equal(content);
        expect(fs.readdirSync(path.dirname(file))).to.deep.equal(["lib.sh"]);
        fs.rmSync(dir, { recursive: true, force: true });
    });
});
