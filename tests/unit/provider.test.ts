// The provider plugin's adapter (provider/index.ts) over the resources' operations, called as the engine's Node
// provider server calls it: secrets arrive wrapped and must leave wrapped, a state moved from a dynamic resource
// holds `__provider`, which one update drops.
import { expect } from "chai";
import { HostTopologyProvider, unwrap, wire } from "../../provider/index.ts";
import { SECRET_OUTPUTS } from "../../contract/resources.ts";

const SIG = "4dabf18193072939515e22adb298388d";
const secret = (value: unknown) => ({ [SIG]: "1b47061264138c4ac30d75fd1eb44270", value });
const urn = (type: string) => `urn:pulumi:dev::host-topology::host-topology:index:${type}::x`;
const p = new HostTopologyProvider("0.0.0", "{}");
const inputs = { caName: "test CA", certs: [{ id: "a", cn: "a", sans: ["DNS:a"], usage: "serverAuth" }], days: 30 };

describe("provider plugin: the adapter", function () {
    this.timeout(30000);

    it("unwraps secrets at any depth and drops a dynamic resource's __provider", () => {
        expect(unwrap({ a: secret({ b: [secret("k")] }), __provider: "exports.handler = ...", c: 1 })).to.deep.equal({
            a: { b: ["k"] },
            c: 1,
        });
    });

    it("create returns the type's secret outputs wrapped as secrets, the others plain (the real Pki, openssl)", async () => {
        const r = await p.create(urn("Pki"), { ...inputs, caName: secret("test CA") });
        for (const k of SECRET_OUTPUTS.Pki) expect(r.outs[k], k).to.have.property(SIG);
        expect(r.outs.caCert).to.match(/^-----BEGIN CERTIFICATE-----/);
        expect(unwrap(r.outs.keys).a).to.match(/PRIVATE KEY/);
        expect(r.outs).not.to.have.property("__provider");
        // The same request is no change; a state that still holds the dynamic resource's code is one.
        expect((await p.diff(r.id, urn("Pki"), r.outs, inputs)).changes).to.equal(false);
        expect((await p.diff(r.id, urn("Pki"), { ...r.outs, __provider: "code" }, inputs)).changes).to.equal(true);
        const u = await p.update(r.id, urn("Pki"), { ...r.outs, __provider: "code" }, inputs);
        expect(u.outs).not.to.have.property("__provider");
        expect(unwrap(u.outs.caKey)).to.equal(unwrap(r.outs.caKey)); // the same CA: nothing issued again
    });

    it("a connection is a secret output only when it holds a key: one that names its key file is plain", () => {
        const conn = { host: "127.0.0.1", port: 22, user: "root", dialErrorLimit: 1 };
        const outs = (connection: object) => wire("host-topology:index:HostCheck", { connection, stdin: "", secretStdin: "S=1\n" });
        expect(outs({ ...conn, privateKey: "", privateKeyPath: ".lab/ssh/id_ed25519" }).connection).not.to.have.property(SIG);
        expect(outs({ ...conn, privateKey: "KEY" }).connection).to.have.property(SIG);
        expect(
            outs({ ...conn, privateKey: "KEY", privateKeyPath: ".lab/ssh/id_ed25519" }).connection,
            "a key beside the file",
        ).to.have.property(SIG);
        expect(outs({ ...conn, privateKey: "" }).connection, "neither: secret, to be safe").to.have.property(SIG);
        expect(outs({ ...conn, privateKey: "", privateKeyPath: "k" }).secretStdin, "the other secret outputs stay secret").to.have.property(
            SIG,
        );
    });

    it("an unknown input (a preview) is a change; an unknown type is refused", async () => {
        expect((await p.diff("id", urn("Pki"), inputs, { ...inputs, caName: "04da6b54-80e4-46f7-96ec-b56ff0331ba9" })).changes).to.equal(
            true,
        );
        let err = "";
        await p.create("urn:pulumi:dev::host-topology::host-topology:index:Other::x", {}).catch((e) => (err = String(e)));
        expect(err).to.contain("unknown resource type host-topology:index:Other");
    });
});

describe("provider plugin: the process", function () {
    this.timeout(60000);
    it("ends when its engine is gone (pulumi killed): no plugin, no SSH connection left behind", async () => {
        // A stand-in parent (sh) starts the plugin as the engine does (launcher, the engine's address) and is killed.
        const cp = await import("child_process");
        const parent = cp.spawn("sh", ["-c", 'provider/launcher/pulumi-resource-host-topology 127.0.0.1:1 & echo "pid $!"; wait'], {
            stdio: ["ignore", "pipe", "inherit"],
        });
        let out = "";
        const pid = await new Promise<number>((resolve, reject) => {
            parent.stdout!.on("data", (d: Buffer) => {
                out += d.toString();
                const m = /pid (\d+)\n/.exec(out);
                // Its port on stdout: it serves (compiled first when the sources changed).
                if (m && /^\d+$/m.test(out.replace(/pid \d+\n/, ""))) resolve(Number(m[1]));
            });
            parent.on("exit", () => reject(new Error(`the plugin did not start: ${out}`)));
        });
        const alive = () => {
            try {
                process.kill(pid, 0);
                return true;
            } catch {
                return false;
            }
        };
        try {
            expect(alive(), "serving").to.equal(true);
            parent.kill("SIGKILL");
            const t0 = Date.now();
            while (alive() && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 100));
            expect(alive(), "the plugin 5 s after its parent was killed").to.equal(false);
        } finally {
            if (alive()) process.kill(pid, "SIGKILL");
        }
    });
});
