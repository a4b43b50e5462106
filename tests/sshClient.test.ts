// The plugin's SSH client against an SSH server on 127.0.0.1 (ssh2's Server, with a host key made by
// ssh-keygen): host keys are verified before any login, a host logs in once however many checks run, and a wrong
// key is refused with both fingerprints and without an authentication attempt.
import { expect } from "chai";
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { closeSshPool, sshRun } from "../provider/hostCheck";
import { hostKeyOps } from "../provider/hostKey";
import { fingerprint, parsePublicKey } from "../components/sshKeys";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const { Server } = require("ssh2");

interface TestServer {
    port: number;
    hostKey: string;
    /** authentications that succeeded, and attempts of any kind */
    logins: number;
    attempts: number;
    /** commands run, with the stdin each got */
    ran: { cmd: string; stdin: string }[];
    close(): Promise<void>;
}

function keygen(dir: string, name: string): { priv: string; pub: string } {
    const f = path.join(dir, name);
    cp.execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", f]);
    return { priv: fs.readFileSync(f, "utf8"), pub: fs.readFileSync(`${f}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ") };
}

function startServer(hostPriv: string, hostPub: string, clientPub: string): Promise<TestServer> {
    const allowed = parsePublicKey(clientPub) as { base64: string };
    const t: TestServer = { port: 0, hostKey: hostPub, logins: 0, attempts: 0, ran: [], close: async () => undefined };
    const server = new Server({ hostKeys: [hostPriv] }, (client: any) => {
        client.on("authentication", (ctx: any) => {
            t.attempts++;
            if (ctx.method === "publickey" && ctx.key.data.toString("base64") === allowed.base64) {
                if (ctx.signature) t.logins++;
                return ctx.accept();
            }
            ctx.reject(["publickey"]);
        });
        client.on("error", () => undefined);
        client.on("session", (accept: any) => {
            const session = accept();
            session.on("exec", (acceptExec: any, _r: any, info: any) => {
                const stream = acceptExec();
                let stdin = "";
                stream.on("data", (d: Buffer) => (stdin += d.toString()));
                stream.on("end", () => {
                    t.ran.push({ cmd: info.command, stdin });
                    stream.write(`ran ${info.command}\n`);
                    stream.exit(info.command === "fail" ? 3 : 0);
                    stream.end();
                });
            });
        });
    });
    return new Promise((resolve) =>
        server.listen(0, "127.0.0.1", () => {
            t.port = server.address().port;
            t.close = () => new Promise((r) => server.close(() => r()));
            resolve(t);
        }),
    );
}

describe("SSH client of HostCheck and HostKey (against an SSH server on 127.0.0.1)", function () {
    this.timeout(30000);
    let dir = "";
    let host: { priv: string; pub: string };
    let other: { priv: string; pub: string };
    let client: { priv: string; pub: string };
    let srv: TestServer;

    before(async () => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "sshclient-"));
        host = keygen(dir, "host");
        other = keygen(dir, "other");
        client = keygen(dir, "client");
        srv = await startServer(host.priv, host.pub, client.pub);
    });
    after(async () => {
        await closeSshPool();
        await srv.close();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    const conn = (hostKey?: string) => ({ host: "127.0.0.1", port: srv.port, user: "root", privateKey: client.priv, dialErrorLimit: 2, ...(hostKey ? { hostKey } : {}) });

    it("runs commands with their stdin; the checks of one host share one login", async () => {
        const before = srv.logins;
        const outs = await Promise.all([1, 2, 3, 4, 5].map((i) => sshRun(conn(host.pub), `check ${i}`, `STEP=${i}\n`)));
        expect(outs.map((o) => o.trim())).to.deep.equal([1, 2, 3, 4, 5].map((i) => `ran check ${i}`));
        await sshRun(conn(host.pub), "check 6", "STEP=6\n");
        expect(srv.logins - before, "logins for 6 commands").to.equal(1);
        expect(srv.ran.filter((r) => r.cmd === "check 3")[0].stdin).to.equal("STEP=3\n");
    });

    it("a failing command names the host and its exit status; the connection stays usable", async () => {
        const err = await sshRun(conn(host.pub), "fail", "").then(() => undefined, (e: Error) => e);
        expect(err?.message).to.match(new RegExp(`^127\\.0\\.0\\.1:${srv.port}: "fail" exited 3:\\nran fail`));
        expect((await sshRun(conn(host.pub), "after", "")).trim()).to.equal("ran after");
    });

    it("a host presenting another key is refused before any login, naming both fingerprints, without retries", async () => {
        const attempts = srv.attempts;
        const ran = srv.ran.length;
        const t0 = Date.now();
        const err = await sshRun(conn(other.pub), "must-not-run", "").then(() => undefined, (e: Error) => e);
        expect(err?.message).to.contain("host key mismatch");
        expect(err?.message).to.contain(fingerprint(parsePublicKey(host.pub) as any));
        expect(err?.message).to.contain(fingerprint(parsePublicKey(other.pub) as any));
        expect(srv.attempts, "no authentication attempt").to.equal(attempts);
        expect(srv.ran.length).to.equal(ran);
        expect(Date.now() - t0, "not retried (dial retries wait 1 s each)").to.be.lessThan(900);
    });

    it("HostKey: records the key at first contact (accept-new), verifies a pinned one, refuses a changed one", async () => {
        const base = { name: "lab", host: "127.0.0.1", port: srv.port, verify: true };
        const logins = srv.logins;
        const created = await hostKeyOps.create!(base);
        expect(created.outs.publicKey).to.equal(host.pub);
        expect(created.outs.fingerprint).to.equal(`${fingerprint(parsePublicKey(host.pub) as any)} (ssh-ed25519)`);
        expect(srv.logins, "a key scan is no login").to.equal(logins);
        await hostKeyOps.read!("id", created.outs);
        const pinnedWrong = await hostKeyOps.create!({ ...base, pinned: other.pub }).then(() => undefined, (e: Error) => e);
        expect(pinnedWrong?.message).to.match(/^lab \(127\.0\.0\.1:\d+\): host key mismatch: the host presented SHA256:\S+ \(ssh-ed25519\), but SHA256:\S+ \(ssh-ed25519\) is expected/);
        // In an `up`, diff never throws (an error there would end the whole deployment): another key is an update,
        // and the update fails naming both keys, so only this host's steps are stopped.
        const stale = { ...created.outs, publicKey: other.pub };
        expect((await hostKeyOps.diff!("id", stale, base)).changes).to.equal(true);
        expect((await hostKeyOps.diff!("id", created.outs, base)).changes, "the same key: no change").to.equal(false);
        const updateWrong = await hostKeyOps.update!("id", stale, base).then(() => undefined, (e: Error) => e);
        expect(updateWrong?.message).to.contain("host key mismatch");
        const down = { ...base, port: 1 };
        expect((await hostKeyOps.diff!("id", { ...created.outs, port: 1 }, down)).changes, "a host that is down: an update, which fails").to.equal(true);
        const readWrong = await hostKeyOps.read!("id", { ...created.outs, publicKey: other.pub }).then(() => undefined, (e: Error) => e);
        expect(readWrong?.message).to.contain("host key mismatch");
    });
});
