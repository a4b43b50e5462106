// The plugin's SSH client against an SSH server on 127.0.0.1 (ssh2's Server, with a host key made by
// ssh-keygen): host keys are verified before any login, a host logs in once however many checks run, and a wrong
// key is refused with both fingerprints and without an authentication attempt.
import { expect } from "chai";
import * as cp from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { closeSshPool, hostCheckOps, sshRun } from "../../provider/hostCheck.ts";
import { hostKeyOps } from "../../provider/hostKey.ts";
import { hostScriptsOps, osOf, parseSha256sum } from "../../provider/hostScripts.ts";
import { scriptFiles } from "../../components/resources/hostScripts.ts";
import { SCRIPTS_DIR, scriptSha256 } from "../../components/step.ts";
import { fingerprint, parsePublicKey, type PublicKey } from "../../contract/sshKeys.ts";
import { createRequire } from "module";
import type * as net from "net";
import type * as ssh2 from "ssh2";

/** CommonJS modules loaded as the SDK loads them (this file is an ES module). */
const require = createRequire(import.meta.url);

const { Server } = require("ssh2") as typeof ssh2;

interface TestServer {
    port: number;
    hostKey: string;
    /** authentications that succeeded, and attempts of any kind */
    logins: number;
    attempts: number;
    /** commands run, with the stdin each got */
    ran: { cmd: string; stdin: string }[];
    /** The most sessions one connection had open at once (the server refuses an 11th, as sshd's MaxSessions 10). */
    maxSessions: number;
    close(): Promise<void>;
}

function keygen(dir: string, name: string): { priv: string; pub: string } {
    const f = path.join(dir, name);
    cp.execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", f]);
    return { priv: fs.readFileSync(f, "utf8"), pub: fs.readFileSync(`${f}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ") };
}

/** With `shellDir`, every command runs in `sh -c` there (its HOME): a host the tests can look at afterwards. */
function startServer(hostPriv: string, hostPub: string, clientPub: string, shellDir?: string): Promise<TestServer> {
    const allowed = parsePublicKey(clientPub) as { base64: string };
    const t: TestServer = { port: 0, hostKey: hostPub, logins: 0, attempts: 0, ran: [], maxSessions: 0, close: async () => undefined };
    const server = new Server({ hostKeys: [hostPriv] }, (client) => {
        client.on("authentication", (ctx) => {
            t.attempts++;
            if (ctx.method === "publickey" && ctx.key.data.toString("base64") === allowed.base64) {
                if (ctx.signature) t.logins++;
                return ctx.accept();
            }
            ctx.reject(["publickey"]);
        });
        client.on("error", () => undefined);
        let sessions = 0;
        client.on("session", (accept, reject) => {
            if (sessions >= 10) return reject();
            t.maxSessions = Math.max(t.maxSessions, ++sessions);
            const session = accept();
            session.on("close", () => sessions--);
            session.on("exec", (acceptExec, _r, info) => {
                const stream = acceptExec();
                let stdin = "";
                stream.on("data", (d: Buffer) => (stdin += d.toString()));
                stream.on("end", () => {
                    t.ran.push({ cmd: info.command, stdin });
                    if (shellDir) {
                        const r = cp.spawnSync("sh", ["-c", info.command], {
                            cwd: shellDir,
                            env: { ...process.env, HOME: shellDir },
                            input: stdin,
                        });
                        stream.write(r.stdout);
                        stream.stderr.write(r.stderr);
                        stream.exit(r.status ?? 1);
                        stream.end();
                        return;
                    }
                    stream.write(`ran ${info.command}\n`);
                    stream.exit(info.command === "fail" ? 3 : 0);
                    stream.end();
                });
            });
        });
    });
    return new Promise((resolve) =>
        server.listen(0, "127.0.0.1", () => {
            t.port = (server.address() as net.AddressInfo).port;
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

    const conn = (hostKey?: string) => ({
        host: "127.0.0.1",
        port: srv.port,
        user: "root",
        privateKey: client.priv,
        dialErrorLimit: 2,
        ...(hostKey ? { hostKey } : {}),
    });

    it("runs commands with their stdin; the checks of one host share one login", async () => {
        const before = srv.logins;
        const outs = await Promise.all([1, 2, 3, 4, 5].map((i) => sshRun(conn(host.pub), `check ${i}`, `STEP=${i}\n`)));
        expect(outs.map((o) => o.trim())).to.deep.equal([1, 2, 3, 4, 5].map((i) => `ran check ${i}`));
        await sshRun(conn(host.pub), "check 6", "STEP=6\n");
        expect(srv.logins - before, "logins for 6 commands").to.equal(1);
        expect(srv.ran.filter((r) => r.cmd === "check 3")[0].stdin).to.equal("STEP=3\n");
    });

    it("its socket sends each packet at once (TCP_NODELAY), from the handshake on: a command does not wait for the host's delayed ACK", async () => {
        // With Nagle's algorithm a command's small packets after the first waited for the host's delayed ACK: 48 ms for
        // `true` on a lab host instead of 2.6 ms (docs/bench.md).
        const net = require("net") as typeof import("net");
        const orig = net.Socket.prototype.setNoDelay;
        const seen: { port: number | undefined; connected: boolean; enable: boolean }[] = [];
        net.Socket.prototype.setNoDelay = function (this: net.Socket & { _handle?: unknown }, enable?: boolean) {
            seen.push({ port: this.remotePort, connected: !this.connecting && !!this._handle, enable: enable !== false });
            return orig.call(this, enable);
        };
        try {
            await closeSshPool();
            expect((await sshRun(conn(host.pub), "nagle", "")).trim()).to.equal("ran nagle");
        } finally {
            net.Socket.prototype.setNoDelay = orig;
        }
        // Set before the socket connects (Node applies it at connect): the key exchange's packets too.
        expect(seen, "setNoDelay(true) on the client's socket before it connects").to.deep.include({
            port: undefined,
            connected: false,
            enable: true,
        });
    });

    it("a connection that names its key file logs in with the key read from it at each dial; an unreadable file fails at once, naming it", async () => {
        const keyFile = path.join(dir, "key-file");
        fs.writeFileSync(keyFile, other.priv, { mode: 0o600 });
        const byFile = { ...conn(host.pub), privateKey: "", privateKeyPath: keyFile, dialErrorLimit: 1 };
        // The server accepts only the client key: the file's other key is refused...
        const refused = await sshRun(byFile, "true", "").then(
            () => undefined,
            (e: Error) => e,
        );
        expect(refused?.message).to.match(/^127\.0\.0\.1:\d+: ssh: .*authentication/i);
        // ... and once the file holds the accepted key (a rotation in place), the next dial logs in with it.
        fs.writeFileSync(keyFile, client.priv);
        const before = srv.logins;
        expect((await sshRun(byFile, "check by file", "")).trim()).to.equal("ran check by file");
        expect(srv.logins - before).to.equal(1);
        const missing = { ...byFile, privateKeyPath: path.join(dir, "no-such-key") };
        const attempts = srv.attempts;
        const err = await sshRun(missing, "true", "").then(
            () => undefined,
            (e: Error) => e,
        );
        expect(err?.message).to.equal(
            `127.0.0.1:${srv.port}: cannot read the SSH private key ${missing.privateKeyPath} (relative to ${process.cwd()}): ENOENT: no such file or directory, open '${missing.privateKeyPath}'`,
        );
        expect(srv.attempts, "no login attempted").to.equal(attempts);
    });

    it("a host that accepts TCP but never answers SSH: each attempt ends after perDialTimeout, then the error names the host", async () => {
        const net = require("net") as typeof import("net");
        const held: net.Socket[] = [];
        const silent = net.createServer((sock) => held.push(sock)); // accepts, says nothing (a host still booting)
        await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
        try {
            const t0 = Date.now();
            const err = await sshRun(
                { ...conn(host.pub), port: (silent.address() as net.AddressInfo).port, perDialTimeout: 1 },
                "true",
                "",
            ).then(
                () => undefined,
                (e: Error) => e,
            );
            const seconds = (Date.now() - t0) / 1000;
            expect(err?.message).to.match(
                new RegExp(
                    `^127\\.0\\.0\\.1:${(silent.address() as net.AddressInfo).port}: ssh: .*handshake.* \\(after 2 attempts\\)$`,
                    "i",
                ),
            );
            // Two attempts of 1 s and the second between them; with the ssh2 default (20 s) it would be over 40 s.
            expect(seconds).to.be.within(2, 8);
        } finally {
            for (const s of held) s.destroy();
            await new Promise((r) => silent.close(r));
        }
    });

    it("many commands at once on one host stay within sshd's 10 sessions per connection (MaxSessions)", async () => {
        // HostScripts puts every file of host/ at once (13 with lib/), beside the host's checks.
        const outs = await Promise.all(Array.from({ length: 24 }, (_, i) => sshRun(conn(host.pub), `echo ${i}`, "")));
        expect(outs).to.deep.equal(Array.from({ length: 24 }, (_, i) => `ran echo ${i}\n`));
        expect(srv.maxSessions).to.be.within(1, 10);
    });

    it("a failing command names the host and its exit status; the connection stays usable", async () => {
        const err = await sshRun(conn(host.pub), "fail", "").then(
            () => undefined,
            (e: Error) => e,
        );
        expect(err?.message).to.match(new RegExp(`^127\\.0\\.0\\.1:${srv.port}: "fail" exited 3:\\nran fail`));
        expect((await sshRun(conn(host.pub), "after", "")).trim()).to.equal("ran after");
    });

    it("a host presenting another key is refused before any login, naming both fingerprints, without retries", async () => {
        const attempts = srv.attempts;
        const ran = srv.ran.length;
        const t0 = Date.now();
        const err = await sshRun(conn(other.pub), "must-not-run", "").then(
            () => undefined,
            (e: Error) => e,
        );
        expect(err?.message).to.contain("host key mismatch");
        expect(err?.message).to.contain(fingerprint(parsePublicKey(host.pub) as PublicKey));
        expect(err?.message).to.contain(fingerprint(parsePublicKey(other.pub) as PublicKey));
        expect(srv.attempts, "no authentication attempt").to.equal(attempts);
        expect(srv.ran.length).to.equal(ran);
        expect(Date.now() - t0, "not retried (dial retries wait 1 s each)").to.be.lessThan(900);
    });

    it("HostKey: records the key at first contact (accept-new), verifies a pinned one, refuses a changed one", async () => {
        const base = { name: "lab", host: "127.0.0.1", port: srv.port, verify: true };
        const logins = srv.logins;
        const created = await hostKeyOps.create!(base);
        expect(created.outs.publicKey).to.equal(host.pub);
        expect(created.outs.fingerprint).to.equal(`${fingerprint(parsePublicKey(host.pub) as PublicKey)} (ssh-ed25519)`);
        expect(srv.logins, "a key scan is no login").to.equal(logins);
        await hostKeyOps.read!("id", created.outs);
        const pinnedWrong = await hostKeyOps.create!({ ...base, pinned: other.pub }).then(
            () => undefined,
            (e: Error) => e,
        );
        expect(pinnedWrong?.message).to.match(
            /^lab \(127\.0\.0\.1:\d+\): host key mismatch: the host presented SHA256:\S+ \(ssh-ed25519\), but SHA256:\S+ \(ssh-ed25519\) is expected/,
        );
        // In an `up`, diff never throws (an error there would end the whole deployment): another key is an update,
        // and the update fails naming both keys, so only this host's steps are stopped.
        const stale = { ...created.outs, publicKey: other.pub };
        expect((await hostKeyOps.diff!("id", stale, base)).changes).to.equal(true);
        expect((await hostKeyOps.diff!("id", created.outs, base)).changes, "the same key: no change").to.equal(false);
        const updateWrong = await hostKeyOps.update!("id", stale, base).then(
            () => undefined,
            (e: Error) => e,
        );
        expect(updateWrong?.message).to.contain("host key mismatch");
        const down = { ...base, port: 1 };
        expect(
            (await hostKeyOps.diff!("id", { ...created.outs, port: 1 }, down)).changes,
            "a host that is down: an update, which fails",
        ).to.equal(true);
        const readWrong = await hostKeyOps.read!("id", { ...created.outs, publicKey: other.pub }).then(
            () => undefined,
            (e: Error) => e,
        );
        expect(readWrong?.message).to.contain("host key mismatch");
    });
});

describe("HostScripts and HostCheck over the pooled connection (a shell behind an SSH server on 127.0.0.1)", function () {
    this.timeout(30000);
    let dir = "";
    let home = "";
    let srv: TestServer;
    let client: { priv: string; pub: string };
    let host: { priv: string; pub: string };
    const files = () => scriptFiles(SCRIPTS_DIR, scriptSha256);
    const props = (dir: string, f = files()) => ({
        connection: { host: "127.0.0.1", port: srv.port, user: "root", privateKey: client.priv, hostKey: host.pub, dialErrorLimit: 2 },
        dir,
        files: f,
        sourceDir: path.relative(process.cwd(), SCRIPTS_DIR),
    });
    const onHost = (f: string) => fs.readFileSync(path.join(home, f), "utf8");
    const puts = (from: number) =>
        srv.ran
            .slice(from)
            .map((r) => /cat > (\S+)\.tmp/.exec(r.cmd)?.[1])
            .filter((f) => f !== undefined);

    before(async () => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "hostscripts-"));
        home = path.join(dir, "home");
        fs.mkdirSync(home);
        host = keygen(dir, "host");
        client = keygen(dir, "client");
        srv = await startServer(host.priv, host.pub, client.pub, home);
    });
    after(async () => {
        await closeSshPool();
        await srv.close();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    /** The files under a directory of the host's home, with the library's (lib/x.sh), sorted. */
    const onHostFiles = (d: string) =>
        fs
            .readdirSync(path.join(home, d), { recursive: true, encoding: "utf8" })
            .filter((f) => f !== "lib")
            .sort();
    /** The library's one digest, from the protocol: its *.sh files (sorted by name) one after another. */
    const libDigest = (src: string) => {
        const h = crypto.createHash("sha256");
        const names = fs.readdirSync(path.join(src, "lib")).filter((f) => f.endsWith(".sh"));
        for (const f of names.sort()) h.update(fs.readFileSync(path.join(src, "lib", f)));
        return h.digest("hex");
    };

    it("create puts every script, byte for byte; the outputs keep the hashes, not the connection", async () => {
        const logins = srv.logins;
        const created = await hostScriptsOps.create(props("scripts"));
        expect(created.id).to.equal("127.0.0.1:scripts");
        // The OS as the shell itself reads it (the provider parses the file as data).
        const os = cp.execSync('. /etc/os-release && echo "$ID $VERSION_ID"', { shell: "/bin/sh" }).toString().trim();
        expect(os).to.match(/^\w+ /);
        expect(created.outs).to.deep.equal({
            dir: "scripts",
            files: files(),
            sourceDir: path.relative(process.cwd(), SCRIPTS_DIR),
            target: `root@127.0.0.1:${srv.port} ${host.pub}`,
            os,
        });
        for (const f of Object.keys(files()).filter((f) => f !== "install-packages.sh"))
            expect(onHost(`scripts/${f}`), f).to.equal(fs.readFileSync(path.join(SCRIPTS_DIR, f), "utf8"));
        // install-packages.sh goes to a host only with packages to install, and only while it runs (see below).
        expect(onHostFiles("scripts"), "no temp file left").to.deep.equal(
            Object.keys(files())
                .filter((f) => f !== "install-packages.sh")
                .sort(),
        );
        expect(srv.logins - logins, "one login for all").to.equal(1);
    });

    it("puts only what is missing or differs on the host: nothing for a host that has them all", async () => {
        await hostScriptsOps.create(props("scripts"));
        let from = srv.ran.length;
        await hostScriptsOps.update!("id", props("scripts"), props("scripts"));
        expect(puts(from), "all in place").to.deep.equal([]);
        fs.writeFileSync(path.join(home, "scripts", "etcd-member.sh"), "echo edited\n");
        fs.rmSync(path.join(home, "scripts", "lib", "step.sh"));
        from = srv.ran.length;
        await hostScriptsOps.update!("id", props("scripts"), props("scripts"));
        expect(puts(from).sort()).to.deep.equal(["scripts/etcd-member.sh", "scripts/lib/step.sh"]);
        expect(onHost("scripts/etcd-member.sh")).to.equal(fs.readFileSync(path.join(SCRIPTS_DIR, "etcd-member.sh"), "utf8"));
        expect(onHost("scripts/lib/step.sh")).to.equal(fs.readFileSync(path.join(SCRIPTS_DIR, "lib", "step.sh"), "utf8"));
    });

    it("diff: a changed script or directory, another host key (a reinstalled host) or address is a change; a rotated SSH key is not", async () => {
        const news = props("scripts");
        const olds = (await hostScriptsOps.create(news)).outs;
        expect(olds.target).to.equal(`root@127.0.0.1:${srv.port} ${host.pub}`);
        expect(JSON.stringify(olds)).not.to.contain("PRIVATE KEY");
        expect((await hostScriptsOps.diff("id", olds, news)).changes).to.equal(false);
        expect(
            (await hostScriptsOps.diff("id", olds, { ...news, connection: { ...news.connection, privateKey: "other" } })).changes,
            "a rotated key",
        ).to.equal(false);
        expect(
            (await hostScriptsOps.diff("id", olds, { ...news, connection: { ...news.connection, hostKey: "ssh-ed25519 AAAA" } })).changes,
            "a new host key",
        ).to.equal(true);
        expect(
            (await hostScriptsOps.diff("id", olds, { ...news, connection: { ...news.connection, host: "127.0.0.2" } })).changes,
            "another address",
        ).to.equal(true);
        expect(
            (await hostScriptsOps.diff("id", olds, { ...news, files: { ...news.files, "etcd-member.sh": "0".repeat(64) } })).changes,
        ).to.equal(true);
        expect((await hostScriptsOps.diff("id", olds, props("elsewhere"))).changes).to.equal(true);
        const reordered = Object.fromEntries(Object.entries(files()).reverse());
        expect(
            (await hostScriptsOps.diff("id", olds, { ...news, files: reordered })).changes,
            "the order of the keys is no change",
        ).to.equal(false);
        expect((await hostScriptsOps.diff("id", olds, { ...news, sudo: true })).changes, "a user that needs sudo now").to.equal(true);
        // A state from before HostScripts read the OS (the readiness gate did): an update reads it.
        // eslint-disable-next-line @typescript-eslint/no-unused-vars -- _os is destructured only to leave it out of withoutOs
        const { os: _os, ...withoutOs } = olds;
        expect((await hostScriptsOps.diff("id", withoutOs, news)).changes, "a state without the OS").to.equal(true);
    });

    it("a user whose sudo asks for a password: a clear error naming the user, before anything is put", async () => {
        const bin = path.join(dir, "bin");
        fs.mkdirSync(bin, { recursive: true });
        fs.writeFileSync(path.join(bin, "sudo"), "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n", { mode: 0o755 });
        const PATH = process.env.PATH;
        process.env.PATH = `${bin}:${PATH}`; // the server's shell inherits it
        try {
            const from = srv.ran.length;
            const err = await hostScriptsOps.create({ ...props("staged"), sudo: true }).then(
                () => undefined,
                (e: Error) => e,
            );
            expect(err?.message).to.match(
                /127\.0\.0\.1:\d+: .* exited 1:\nhost-topology: \S+: user \S+ cannot run sudo without a password \(sudo -n true failed\)/,
            );
            expect(puts(from)).to.deep.equal([]);
            expect(fs.existsSync(path.join(home, "staged")), "nothing put").to.equal(false);
        } finally {
            process.env.PATH = PATH;
        }
    });

    it("packages: after every script is put, install-packages.sh apply once with the sets and hashes on stdin, then removed; a failed install fails the resource", async () => {
        // The real install-packages.sh would install on this machine: a copy of the scripts with a stand-in that records its
        // stdin and whether the other scripts were in place, and fails when told to.
        const src = path.join(dir, "src-packages");
        fs.mkdirSync(path.join(src, "lib"), { recursive: true });
        for (const f of Object.keys(files())) fs.copyFileSync(path.join(SCRIPTS_DIR, f), path.join(src, f));
        fs.writeFileSync(
            path.join(src, "install-packages.sh"),
            'd=$(dirname "$0"); cat > "$HOME/packages.stdin"; (cd "$d" && find . -type f | cut -c3-) > "$HOME/packages.ls"\n[ ! -e "$HOME/packages.fail" ] || { echo "E: Unable to locate package chrony" >&2; exit 100; }\n',
        );
        const sha = (f: string) =>
            crypto
                .createHash("sha256")
                .update(fs.readFileSync(path.join(src, f)))
                .digest("hex");
        const f = scriptFiles(src, sha);
        const p = { ...props("pkgs", f), sourceDir: path.relative(process.cwd(), src), packages: ["chrony", "etcd"] };
        const from = srv.ran.length;
        const created = await hostScriptsOps.create(p);
        expect(created.outs.packages).to.deep.equal(["chrony", "etcd"]);
        const runs = srv.ran.slice(from).filter((r) => r.cmd.includes("install-packages.sh apply"));
        expect(runs.map((r) => r.cmd)).to.deep.equal([
            "bash pkgs/install-packages.sh apply; rc=$?; rm -f pkgs/install-packages.sh; exit $rc",
        ]);
        expect(onHost("packages.stdin")).to.equal(
            `# host-topology parameters, format 2\nLIB_SHA256=${libDigest(src)}\nPACKAGES=chrony etcd\nSCRIPT_SHA256=${f["install-packages.sh"]}\n`,
        );
        expect(onHost("packages.ls").split("\n").filter(Boolean).sort(), "every script in place when it ran").to.deep.equal(
            Object.keys(f).sort(),
        );
        expect(onHostFiles("pkgs"), "install-packages.sh gone after it ran").to.deep.equal(
            Object.keys(f)
                .filter((n) => n !== "install-packages.sh")
                .sort(),
        );

        const diff = async (news: typeof p & { packageListsMaxAge?: number }) =>
            (await hostScriptsOps.diff("id", created.outs, news)).changes;
        expect(await diff(p)).to.equal(false);
        expect(await diff({ ...p, packages: ["chrony", "etcd", "registry"] }), "a role added").to.equal(true);
        expect(await diff({ ...p, packageListsMaxAge: 60 }), "another lists age").to.equal(true);

        const age = await hostScriptsOps.update!("id", created.outs, { ...p, packageListsMaxAge: 60 });
        expect(age.outs.packageListsMaxAge).to.equal(60);
        expect(onHost("packages.stdin")).to.contain("\nPKG_LISTS_MAX_AGE=60\n");

        fs.writeFileSync(path.join(home, "packages.fail"), "");
        const err = await hostScriptsOps.update!("id", created.outs, { ...p, packages: ["chrony"] }).then(
            () => undefined,
            (e: Error) => e,
        );
        expect(err?.message).to.match(
            /127\.0\.0\.1:\d+: "bash pkgs\/install-packages\.sh apply.*" exited 100:\nE: Unable to locate package chrony/,
        );
        expect(fs.existsSync(path.join(home, "pkgs", "install-packages.sh")), "removed after a failure too").to.equal(false);
        fs.rmSync(path.join(home, "packages.fail"));

        // Without packages, nothing is run and install-packages.sh is not put.
        const before = srv.ran.length;
        await hostScriptsOps.update!("id", created.outs, props("pkgs", f));
        expect(srv.ran.slice(before).filter((r) => r.cmd.includes("install-packages.sh apply"))).to.deep.equal([]);
        expect(puts(before)).to.not.include("pkgs/install-packages.sh");
    });

    it("reads the OS from os-release as data: quotes stripped, nothing run", () => {
        expect(osOf('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n')).to.equal(
            "debian 12",
        );
        expect(osOf("ID='rocky'\nVERSION_ID=9.3\nID_LIKE=\"rhel centos fedora\"\n")).to.equal("rocky 9.3");
        expect(osOf('ID=debian\nVERSION_ID="$(touch /tmp/pwned)"\n')).to.equal("debian $(touch /tmp/pwned)");
    });

    it("refuses a program copy that is not the version the hash names, putting nothing", async () => {
        const from = srv.ran.length;
        const err = await hostScriptsOps.create(props("other", { ...files(), "private-registry.sh": "0".repeat(64) })).then(
            () => undefined,
            (e: Error) => e,
        );
        expect(err?.message).to.match(/registry\.sh \(sha256 [0-9a-f]{64}\) is not the version this program applies \(0{64}\)/);
        expect(puts(from), "not the others either").to.deep.equal([]);
    });

    it("parses sha256sum output, text and binary mode", () => {
        const h = "a".repeat(64);
        expect(
            parseSha256sum(`${h}  /x/lib.sh\n${h} */x/etcd-member.sh\nsha256sum: /x/gone.sh: No such file or directory\n`),
        ).to.deep.equal({ "/x/lib.sh": h, "/x/etcd-member.sh": h });
    });

    describe("HostCheck: check and repair of a step's scripts", () => {
        let src = "";
        const sha = (f: string) =>
            crypto
                .createHash("sha256")
                .update(fs.readFileSync(path.join(src, f)))
                .digest("hex");
        const remote = () => path.join(home, "checked");
        const checkProps = (files: Record<string, string>, drift: Record<string, string> = {}) => ({
            connection: { host: "127.0.0.1", port: srv.port, user: "root", privateKey: client.priv, hostKey: host.pub, dialErrorLimit: 2 },
            script: `bash ${remote()}/step.sh`,
            files,
            sourceDir: path.relative(process.cwd(), src),
            stdin: "# host-topology parameters, format 2\n",
            drift,
        });
        const byDigest = () => ({ [`${remote()}/step.sh`]: sha("step.sh"), [`${remote()}/lib/`]: libDigest(src) });
        const onHost = (f: string) => fs.readFileSync(path.join(remote(), f), "utf8");
        const putsThere = (from: number) =>
            srv.ran
                .slice(from)
                .map((r) => /cat > (\S+)\.tmp/.exec(r.cmd)?.[1])
                .filter((f) => f !== undefined)
                .map((f) => path.relative(remote(), f))
                .sort();

        before(() => {
            // The program's copy of host/: a step whose check reports a flag file, and whose apply removes it; a library
            // of two files (the step sources both), and a file beside them that is not part of the library.
            src = path.join(dir, "src");
            fs.mkdirSync(path.join(src, "lib"), { recursive: true });
            fs.writeFileSync(path.join(src, "lib", "a.sh"), 'report() { echo "drift $1 $2"; }\n');
            fs.writeFileSync(path.join(src, "lib", "b.sh"), 'FLAG="$HOME/flag"\n');
            fs.writeFileSync(path.join(src, "lib", "README"), "not part of the library\n");
            fs.writeFileSync(
                path.join(src, "step.sh"),
                'd=$(dirname "$0"); . "$d/lib/a.sh"; . "$d/lib/b.sh"\n' +
                    'case "$1" in apply) rm -f "$FLAG" ;; check) if [ -f "$FLAG" ]; then report flag present; fi ;; esac\n',
            );
        });

        it("the library recorded by its one digest: each of its files missing is drift; a repair puts the script and every library file back", async () => {
            expect((await hostCheckOps.read!("id", checkProps(byDigest()))).props.drift).to.deep.equal({ scripts: "missing" });
            const from = srv.ran.length;
            const repaired = await hostCheckOps.update!("id", checkProps(byDigest(), { scripts: "missing" }), checkProps(byDigest()));
            expect(repaired.outs.drift).to.deep.equal({});
            expect(putsThere(from)).to.deep.equal(["lib/a.sh", "lib/b.sh", "step.sh"]);
            for (const f of ["step.sh", "lib/a.sh", "lib/b.sh"]) expect(onHost(f), f).to.equal(fs.readFileSync(path.join(src, f), "utf8"));
            expect(fs.readdirSync(path.join(remote(), "lib")).sort(), "only the library's *.sh").to.deep.equal(["a.sh", "b.sh"]);

            // The check runs the step's script: what it reports is the drift.
            fs.writeFileSync(path.join(home, "flag"), "");
            expect((await hostCheckOps.read!("id", checkProps(byDigest()))).props.drift).to.deep.equal({ flag: "present" });
            expect(
                (await hostCheckOps.update!("id", checkProps(byDigest(), { flag: "present" }), checkProps(byDigest()))).outs.drift,
            ).to.deep.equal({});
            expect(fs.existsSync(path.join(home, "flag")), "apply ran").to.equal(false);

            // Every library file is looked for, though the state names only the directory.
            fs.rmSync(path.join(remote(), "lib", "b.sh"));
            expect((await hostCheckOps.read!("id", checkProps(byDigest()))).props.drift).to.deep.equal({ scripts: "missing" });
            // A state written before (one hash per library file) is read the same way, and repaired.
            const perFile = {
                [`${remote()}/step.sh`]: sha("step.sh"),
                [`${remote()}/lib/a.sh`]: sha("lib/a.sh"),
                [`${remote()}/lib/b.sh`]: sha("lib/b.sh"),
            };
            expect((await hostCheckOps.read!("id", checkProps(perFile))).props.drift).to.deep.equal({ scripts: "missing" });
            expect(
                (await hostCheckOps.update!("id", checkProps(perFile, { scripts: "missing" }), checkProps(perFile))).outs.drift,
            ).to.deep.equal({});
            expect(onHost("lib/b.sh")).to.equal(fs.readFileSync(path.join(src, "lib", "b.sh"), "utf8"));
        });

        it("a repair refuses a library copy that is not the version the digest names, putting nothing", async () => {
            const recorded = byDigest();
            fs.rmSync(path.join(remote(), "step.sh"));
            fs.appendFileSync(path.join(src, "lib", "b.sh"), "# another version\n");
            const from = srv.ran.length;
            const err = await hostCheckOps.update!("id", checkProps(recorded, { scripts: "missing" }), checkProps(recorded)).then(
                () => undefined,
                (e: Error) => e,
            );
            expect(err?.message).to.match(/lib\/ \(library sha256 [0-9a-f]{64}\) is not the version this program applies \([0-9a-f]{64}\)/);
            expect(putsThere(from), "not the script either").to.deep.equal([]);
            expect(fs.existsSync(path.join(remote(), "step.sh"))).to.equal(false);
        });
    });
});
