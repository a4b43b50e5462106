// The host scripts (host/*.sh) on every OS family, run for real by bash under a temp root
// (HOST_TOPOLOGY_ROOT) with stateful stubs first on PATH (tests/fixtures/scripts/stubs: systemctl, apt-get, yum, dnf,
// dpkg-query, rpm, etcdctl, nginx, ...). The stubs keep installed packages, unit files and enabled/active
// units in a state dir, so the scripts get consistent answers, and log every call.
// Parameters are encoded here independently of the program, from the protocol (lib.sh's read_records).
import { expect } from "chai";
import * as cp from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { encodeParams as programEncodeParams } from "../../components/step.ts";

const SCRIPTS_DIR = path.resolve(import.meta.dirname, "../../host");
const FIXTURES = path.resolve(import.meta.dirname, "../fixtures/scripts");
const LIB = ["checks.sh", "files.sh", "os.sh", "packages.sh", "params.sh", "services.sh", "step.sh"].map((f) => `lib/${f}`);
const SCRIPTS = ["host-base.sh", "time-sync.sh", "firewall-off.sh", "private-registry.sh", "etcd-member.sh", ...LIB];
/** Copies the scripts and their library into dir, as HostScripts lays them out on a host. */
function copyScripts(dir: string): void {
    fs.mkdirSync(path.join(dir, "lib"), { recursive: true });
    for (const s of SCRIPTS) fs.copyFileSync(path.join(SCRIPTS_DIR, s), path.join(dir, s));
}
/** The library's one digest, from the protocol: sha256 of its files (sorted by name) one after another. */
function libSha256(dir: string): string {
    const h = crypto.createHash("sha256");
    for (const f of LIB) h.update(fs.readFileSync(path.join(dir, f)));
    return h.digest("hex");
}

// ---- the per-family table, written from the documented protocol (not read from lib/os.sh) ----

interface Svc {
    pkg: string;
    svc: string;
    conf: string;
}
interface Family {
    osRelease: string;
    pm: "apt-get" | "yum" | "dnf";
    chrony: Svc;
    ntp?: Svc;
    registry: Svc & { user?: string };
    etcd: { pkgs: string[]; svc: string; conf: string };
    nginxGroup: string;
    // firewall units: present ones with their state before; ufw = the ufw command exists and is active
    firewall: { units: string; present: Record<string, "enabled" | "disabled">; ufw: boolean };
}

const EL_REGISTRY = { pkg: "docker-distribution", svc: "docker-distribution", conf: "/etc/docker-distribution/registry/config.yml" };
const APT_REGISTRY = { pkg: "docker-registry", svc: "docker-registry", conf: "/etc/docker/registry/config.yml", user: "docker-registry" };
const EL_ETCD = { pkgs: ["etcd"], svc: "etcd", conf: "/etc/etcd/etcd.conf" };
const APT_ETCD = { pkgs: ["etcd-server", "etcd-client"], svc: "etcd", conf: "/etc/default/etcd" };
const EL_CHRONY = { pkg: "chrony", svc: "chronyd", conf: "/etc/chrony.conf" };
const APT_CHRONY = { pkg: "chrony", svc: "chrony", conf: "/etc/chrony/chrony.conf" };
const NTPSEC = { pkg: "ntpsec", svc: "ntpsec", conf: "/etc/ntpsec/ntp.conf" };
const EL_FIREWALL = { units: "firewalld iptables ip6tables", present: { firewalld: "enabled", iptables: "disabled" } as const, ufw: false };

const FAMILIES: Record<string, Family> = {
    el7: {
        osRelease: 'NAME="CentOS Linux"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n',
        pm: "yum",
        chrony: EL_CHRONY,
        ntp: { pkg: "ntp", svc: "ntpd", conf: "/etc/ntp.conf" },
        registry: EL_REGISTRY,
        etcd: EL_ETCD,
        nginxGroup: "nginx",
        firewall: EL_FIREWALL,
    },
    el8: { osRelease: 'NAME="Rocky Linux"\nID="rocky"\nVERSION_ID="8.9"\n', pm: "dnf", chrony: EL_CHRONY, registry: EL_REGISTRY, etcd: EL_ETCD, nginxGroup: "nginx", firewall: EL_FIREWALL },
    el9: { osRelease: 'NAME="AlmaLinux"\nID="almalinux"\nVERSION_ID="9.3"\n', pm: "dnf", chrony: EL_CHRONY, registry: EL_REGISTRY, etcd: EL_ETCD, nginxGroup: "nginx", firewall: EL_FIREWALL },
    debian12: {
        osRelease: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nID=debian\n',
        pm: "apt-get",
        chrony: APT_CHRONY,
        ntp: NTPSEC,
        registry: APT_REGISTRY,
        etcd: APT_ETCD,
        nginxGroup: "www-data",
        firewall: { units: "firewalld iptables ufw nftables", present: { nftables: "enabled" }, ufw: false },
    },
    // Debian 13 (trixie): every name and path as on Debian 12 (checked against trixie's packages and units in a
    // trixie chroot). The os-release is trixie's own. firewalld 2.x no longer conflicts with
    // nftables.service (Debian 12's 1.3 did), so both can be on before the first apply.
    debian13: {
        osRelease:
            'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nNAME="Debian GNU/Linux"\nVERSION_ID="13"\nVERSION="13 (trixie)"\nVERSION_CODENAME=trixie\n' +
            'DEBIAN_VERSION_FULL=13.8\nID=debian\nHOME_URL="https://www.debian.org/"\n',
        pm: "apt-get",
        chrony: APT_CHRONY,
        ntp: NTPSEC,
        registry: APT_REGISTRY,
        etcd: APT_ETCD,
        nginxGroup: "www-data",
        firewall: { units: "firewalld iptables ufw nftables", present: { firewalld: "enabled", nftables: "enabled" }, ufw: false },
    },
    ubuntu2204: {
        osRelease: 'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n',
        pm: "apt-get",
        chrony: APT_CHRONY,
        ntp: { pkg: "ntp", svc: "ntp", conf: "/etc/ntp.conf" },
        registry: APT_REGISTRY,
        etcd: APT_ETCD,
        nginxGroup: "www-data",
        firewall: { units: "firewalld iptables ufw", present: { ufw: "enabled" }, ufw: true },
    },
    ubuntu2404: {
        osRelease: 'NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n',
        pm: "apt-get",
        chrony: APT_CHRONY,
        ntp: NTPSEC,
        registry: APT_REGISTRY,
        etcd: APT_ETCD,
        nginxGroup: "www-data",
        firewall: { units: "firewalld iptables ufw", present: { ufw: "enabled" }, ufw: true },
    },
};

// ---- protocol helpers ----

const PARAMS_HEADER = "# host-topology parameters, format 2";

/**
 * The protocol's framing, written apart from the program's encoder (which picks EOF, EOF1, ...): the header, then
 * `KEY=value` for a value without a newline, else `KEY<<DELIM [-n]`, its lines, DELIM; here DELIM is random.
 */
function encodeParams(params: Record<string, string>, header = PARAMS_HEADER): string {
    let out = `${header}\n`;
    for (const [k, v] of Object.entries(params)) {
        if (!v.includes("\n")) {
            out += `${k}=${v}\n`;
            continue;
        }
        const delim = `END_${crypto.randomBytes(6).toString("hex")}`;
        out += `${k}<<${delim}${v.endsWith("\n") ? "" : " -n"}\n${v}${v.endsWith("\n") ? "" : "\n"}${delim}\n`;
    }
    return out;
}

/** The framing before format 2 (`KEY=<base64>` lines): what a stack deployed by an older version holds. */
function encodeBase64Params(params: Record<string, string>): string {
    return Object.entries(params)
        .map(([k, v]) => `${k}=${Buffer.from(v, "utf8").toString("base64")}`)
        .join("\n") + "\n";
}

/** The check output without the `| ` detail lines (the diffs). */
const withoutDetail = (out: string) => out.split("\n").filter((l) => !l.startsWith("| ")).join("\n");

const sha256File = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

// ---- a fake host ----

interface Host {
    family: string;
    dir: string;
    root: string;
    state: string;
    env: NodeJS.ProcessEnv;
}

interface HostOptions {
    hostname?: string;
    /** packages already installed (with what they ship) */
    installed?: string[];
}

function lines(entries: [string, string][]): string {
    return entries.map(([k, v]) => `${k}=${v}\n`).join("");
}

const tempDirs: string[] = [];

function makeHost(family: string, opts: HostOptions = {}): Host {
    const f = FAMILIES[family];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `scripts-${family}-`));
    tempDirs.push(dir);
    const root = path.join(dir, "root");
    const state = path.join(dir, "state");
    const bin = path.join(dir, "bin");
    for (const d of [`${root}/etc`, `${state}/pkgs`, `${state}/units`, bin]) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(`${root}/etc/os-release`, f.osRelease);
    fs.writeFileSync(`${state}/hostname`, `${opts.hostname ?? "lab-host"}\n`);
    fs.writeFileSync(`${state}/calls.log`, "");
    fs.writeFileSync(`${state}/users`, "root\n");
    const etcdServer = f.etcd.pkgs[0];
    const units: [string, string][] = [
        [f.chrony.pkg, f.chrony.svc],
        [f.registry.pkg, f.registry.svc],
        [etcdServer, f.etcd.svc],
        ["nginx", "nginx"],
    ];
    const files: [string, string][] = [
        [f.chrony.pkg, f.chrony.conf],
        [f.registry.pkg, f.registry.conf],
        [etcdServer, f.etcd.conf],
        ["nginx", "/etc/nginx/nginx.conf"],
    ];
    if (f.ntp) {
        units.push([f.ntp.pkg, f.ntp.svc]);
        files.push([f.ntp.pkg, f.ntp.conf]);
    }
    const users: [string, string][] = [[etcdServer, "etcd"]];
    if (f.registry.user) users.push([f.registry.pkg, f.registry.user]);
    fs.writeFileSync(`${state}/package-units`, lines(units));
    fs.writeFileSync(`${state}/package-files`, lines(files));
    fs.writeFileSync(`${state}/package-users`, lines(users));
    for (const name of fs.readdirSync(`${FIXTURES}/stubs`)) {
        if (name === "ufw" && !f.firewall.ufw) continue; // the ufw command exists on Ubuntu only
        fs.writeFileSync(path.join(bin, name), `#!/usr/bin/env bash\n. '${FIXTURES}/stub-lib.sh'\n. '${FIXTURES}/stubs/${name}'\n`, { mode: 0o755 });
    }
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith("HOSTINFRA_") || k === "APT_LOCK_TIMEOUT" || k === "SERVICE_WAIT") delete env[k];
    // No sbin on PATH: a real ufw, getsebool, ... of the test machine must never answer.
    Object.assign(env, { PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`, HOST_TOPOLOGY_ROOT: root, STUB_STATE: state, SERVICE_WAIT: "3", LC_ALL: "C" });
    const h = { family, dir, root, state, env };
    for (const p of opts.installed ?? []) stubInstall(h, p);
    return h;
}

/** Installs a package on the fake host the way the package manager stubs do. */
function stubInstall(h: Host, pkg: string): void {
    const r = cp.spawnSync("bash", ["-c", `. '${FIXTURES}/stub-lib.sh' && install_pkg "$1"`, "x", pkg], { env: h.env, encoding: "utf8" });
    expect(r.status, r.stderr).to.equal(0);
}

function setUnit(h: Host, unit: string, ...flags: ("enabled" | "active" | "static" | "fail" | "skip")[]): void {
    fs.writeFileSync(`${h.state}/units/${unit}`, "");
    for (const f of flags) fs.writeFileSync(`${h.state}/units/${unit}.${f}`, "");
}

interface Run {
    code: number;
    stdout: string;
    stderr: string;
}

function runRaw(h: Host, scriptPath: string, action: string, stdin: string, env: Record<string, string> = {}): Run {
    const r = cp.spawnSync("bash", [scriptPath, action], { input: stdin, env: { ...h.env, ...env }, encoding: "utf8", timeout: 30000 });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a script with the protocol's parameters (the hashes of the script and its library added unless given). */
function run(h: Host, script: string, action: string, params: Record<string, string>, opts: { dir?: string; env?: Record<string, string> } = {}): Run {
    const dir = opts.dir ?? SCRIPTS_DIR;
    const all = { SCRIPT_SHA256: sha256File(path.join(dir, script)), LIB_SHA256: libSha256(dir), ...params };
    return runRaw(h, path.join(dir, script), action, encodeParams(all), opts.env);
}

function ok(h: Host, script: string, action: string, params: Record<string, string>, opts: { dir?: string; env?: Record<string, string> } = {}): string {
    const r = run(h, script, action, params, opts);
    expect(r.code, `${script} ${action} on ${h.family} exited ${r.code}:\n${r.stdout}\n${r.stderr}`).to.equal(0);
    return r.stdout;
}

const calls = (h: Host) => fs.readFileSync(`${h.state}/calls.log`, "utf8");
const clearCalls = (h: Host) => fs.writeFileSync(`${h.state}/calls.log`, "");
const read = (h: Host, p: string) => fs.readFileSync(path.join(h.root, p), "utf8");
const exists = (h: Host, p: string) => fs.existsSync(path.join(h.root, p));
const mode = (h: Host, p: string) => fs.statSync(path.join(h.root, p)).mode & 0o777;
const has = (h: Host, unit: string, what: "enabled" | "active") => fs.existsSync(`${h.state}/units/${unit}.${what}`);
const installed = (h: Host, pkg: string) => fs.existsSync(`${h.state}/pkgs/${pkg}`);
const pkgDefault = (pkg: string, p: string) => `# ${pkg} default ${p}\n`;

/** Calls that change the host: package installs and service state changes, in order. */
function mutations(h: Host): string[] {
    return calls(h)
        .split("\n")
        .filter(
            (l) =>
                /^(apt-get|yum|dnf) .*\binstall\b/.test(l) ||
                /^systemctl (enable|disable|start|restart|reload|stop)\b/.test(l) ||
                /^(hostnamectl|hostname|setsebool) /.test(l) ||
                /^ufw (disable|--force enable)/.test(l) ||
                /^etcdctl .*member (add|remove)/.test(l),
        );
}

/** A run with nothing to do prints only unchanged/absent/healthy/member lines and the final ok line. */
function expectNoChange(out: string, family: string, script: string): void {
    const body = out.trimEnd().split("\n");
    expect(body[body.length - 1]).to.equal(`ok ${script} family=${family}`);
    for (const l of body.slice(0, -1)) expect(l, out).to.match(/^(unchanged|absent|healthy|member) /);
}

// ---- a stand-in for the registry's HTTP API on an ephemeral port ----

let registryPort = 0; // answers 200 on /v2/ only
let notFoundPort = 0; // answers 404 to everything
let closedPort = 0; // nothing listens
let server: cp.ChildProcess | undefined;

function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const port = (s.address() as net.AddressInfo).port;
            s.close(() => resolve(port));
        });
    });
}

before(async function () {
    this.timeout(15000);
    // A separate process: the scripts run with spawnSync, which blocks this one's event loop.
    server = cp.spawn(
        process.execPath,
        [
            "-e",
            `const http = require("http");
             const ok = http.createServer((q, r) => { r.statusCode = q.url === "/v2/" ? 200 : 404; r.end("{}"); });
             const notFound = http.createServer((q, r) => { r.statusCode = 404; r.end("404 page not found"); });
             ok.listen(0, "127.0.0.1", () => notFound.listen(0, "127.0.0.1", () => console.log(ok.address().port + " " + notFound.address().port)));`,
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
    );
    [registryPort, notFoundPort] = await new Promise<number[]>((resolve, reject) => {
        server!.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim().split(" ").map(Number)));
        server!.once("exit", (c) => reject(new Error(`registry stand-in exited ${c}`)));
    });
    closedPort = await freePort();
});

after(() => {
    if (server && server.exitCode === null) server.kill();
    for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const registryConfig = (port: number) => `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: 127.0.0.1:${port}\n`;
const NGINX_SITE = "server {\n    listen 80;\n    server_name registry.danran.com;\n    location / { proxy_pass http://127.0.0.1:5000; }\n}\n";
const HTPASSWD = "registry:$2y$10$S3cr3tBcryptHashThatMustNeverBePrinted0123456789abcdefgh\n";
const registryParams = (extra: Record<string, string> = {}) => ({
    REGISTRY_CONFIG: registryConfig(registryPort),
    NGINX_CONF: NGINX_SITE,
    HTPASSWD,
    STORAGE_DIR: "/var/lib/registry",
    HEALTH_TIMEOUT: "5",
    ...extra,
});
const CHRONY = "# managed by host-topology\nserver 192.168.100.2 iburst\nmakestep 1.0 3\n";
const ETCD = {
    ETCD_ENV: 'ETCD_NAME="etcd1"\nETCD_DATA_DIR="/var/lib/etcd/etcd1.etcd"\n',
    NAME: "etcd1",
    DATA_DIR: "/var/lib/etcd/etcd1.etcd",
    CLIENT_URL: "http://192.168.100.2:2379",
    HEALTH_TIMEOUT: "4",
};
const ETCD_JOIN_ENV = "/var/lib/host-topology/etcd-join.env";
const ETCD_DROPIN = "/etc/systemd/system/etcd.service.d/host-topology-join.conf";
const ETCD_DROPIN_CONTENT = "[Service]\nEnvironmentFile=/var/lib/host-topology/etcd-join.env\n";
/** The settings of a member's first start that etcd-member.sh writes (read through the drop-in). */
const etcdJoinEnv = (name: string, cluster: string, state: "new" | "existing") =>
    `# host-topology: how etcd member ${name} first started (read by etcd only with an empty data dir)\nETCD_INITIAL_CLUSTER="${cluster}"\nETCD_INITIAL_CLUSTER_STATE="${state}"\n`;
const BLOCK = "192.168.100.2 master.danran.com master etcd1 registry registry.danran.com\n192.168.100.3 node1.danran.com node1\n";
const HOSTBASE = { HOSTNAME: "master", FQDN: "master.danran.com", HOSTS_BLOCK: BLOCK };
const BEGIN = "# BEGIN host-topology managed block (pulumi)\n";
const END = "# END host-topology managed block\n";

// =====================================================================================================

describe("host scripts on every OS family (stubbed package managers and systemd)", function () {
    this.timeout(30000);

    for (const [family, f] of Object.entries(FAMILIES)) {
        describe(family, () => {
            const installRe = (pkgs: string[]) =>
                f.pm === "apt-get"
                    ? new RegExp(`^apt-get -o DPkg::Lock::Timeout=600 .*install -y --no-install-recommends ${pkgs.join(" ")}$`, "m")
                    : new RegExp(`^${f.pm} -y install ${pkgs.join(" ")}$`, "m");

            it("hostbase: reports the family and writes the block", () => {
                const h = makeHost(family);
                const out = ok(h, "host-base.sh", "apply", HOSTBASE);
                expect(out).to.match(new RegExp(`^ok hostbase family=${family}$`, "m"));
                expect(read(h, "/etc/hosts")).to.equal(BEGIN + BLOCK + END);
                expectNoChange(ok(h, "host-base.sh", "apply", HOSTBASE), family, "hostbase");
                expect(ok(h, "host-base.sh", "check", HOSTBASE)).to.equal(`ok hostbase family=${family}\n`);

                clearCalls(h);
                expect(ok(h, "host-base.sh", "remove", HOSTBASE)).to.contain(`ok hostbase family=${family}`);
                expect(read(h, "/etc/hosts")).to.equal("");
                expect(mutations(h)).to.deep.equal([]);
                expect(ok(h, "host-base.sh", "check", HOSTBASE)).to.equal(`drift /etc/hosts managed block or conflicting lines differ\nok hostbase family=${family}\n`);
            });

            it(`timesync chrony: ${f.pm} installs ${f.chrony.pkg}, ${f.chrony.conf} written, ${f.chrony.svc} enabled; idempotent; restart only on change; remove restores`, () => {
                const h = makeHost(family);
                const out = ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
                expect(out).to.contain(`changed ${f.chrony.conf}\n`);
                expect(out.trimEnd().split("\n").pop()).to.equal(`ok timesync family=${family}`);
                expect(calls(h)).to.match(installRe(["chrony"]));
                expect(read(h, f.chrony.conf)).to.equal(CHRONY);
                expect(mode(h, f.chrony.conf)).to.equal(0o644);
                expect(has(h, f.chrony.svc, "enabled") && has(h, f.chrony.svc, "active")).to.equal(true);
                // the package's own config is kept for remove
                expect(fs.readFileSync(`${h.root}/var/lib/host-topology/backup${f.chrony.conf}`, "utf8")).to.equal(pkgDefault("chrony", f.chrony.conf));
                expect(ok(h, "time-sync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY })).to.equal(`ok timesync family=${family}\n`);

                clearCalls(h);
                expectNoChange(ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY }), family, "timesync");
                expect(mutations(h)).to.deep.equal([]);

                clearCalls(h);
                ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY + "rtcsync\n" });
                expect(mutations(h)).to.deep.equal([`systemctl restart ${f.chrony.svc}`]);

                // a stopped service is started, not restarted, when nothing changed
                fs.rmSync(`${h.state}/units/${f.chrony.svc}.active`);
                clearCalls(h);
                ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY + "rtcsync\n" });
                expect(mutations(h)).to.deep.equal([`systemctl start ${f.chrony.svc}`]);

                ok(h, "time-sync.sh", "remove", { IMPL: "chrony", CONFIG: CHRONY });
                expect(read(h, f.chrony.conf)).to.equal(pkgDefault("chrony", f.chrony.conf));
                expect(has(h, f.chrony.svc, "enabled") || has(h, f.chrony.svc, "active")).to.equal(false);
                expect(exists(h, `/var/lib/host-topology/backup${f.chrony.conf}`)).to.equal(false);
                clearCalls(h);
                expect(withoutDetail(ok(h, "time-sync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY }))).to.equal(
                    `drift ${f.chrony.conf} content differs:\ndrift service:${f.chrony.svc} disabled,inactive (want enabled,active)\nok timesync family=${family}\n`,
                );
                expect(mutations(h)).to.deep.equal([]);
            });

            if (f.ntp) {
                const ntp = f.ntp;
                it(`timesync ntp: ${ntp.pkg} with ${ntp.conf}; chrony is turned off (they conflict)`, () => {
                    const h = makeHost(family, { installed: ["chrony"] });
                    setUnit(h, f.chrony.svc, "enabled", "active");
                    const out = ok(h, "time-sync.sh", "apply", { IMPL: "ntp", CONFIG: "server pool.ntp.org iburst\n" });
                    expect(calls(h)).to.match(installRe([ntp.pkg]));
                    expect(read(h, ntp.conf)).to.equal("server pool.ntp.org iburst\n");
                    expect(has(h, ntp.svc, "enabled") && has(h, ntp.svc, "active")).to.equal(true);
                    expect(has(h, f.chrony.svc, "enabled") || has(h, f.chrony.svc, "active")).to.equal(false);
                    expect(out).to.contain(`changed service:${f.chrony.svc} disabled,stopped`);
                    expect(out).to.contain(`ok timesync family=${family}`);
                    expect(ok(h, "time-sync.sh", "check", { IMPL: "ntp", CONFIG: "server pool.ntp.org iburst\n" })).to.equal(`ok timesync family=${family}\n`);
                    ok(h, "time-sync.sh", "remove", { IMPL: "ntp", CONFIG: "server pool.ntp.org iburst\n" });
                    expect(read(h, ntp.conf)).to.equal(pkgDefault(ntp.pkg, ntp.conf));
                    expect(has(h, ntp.svc, "enabled") || has(h, ntp.svc, "active")).to.equal(false);
                });
                it(`timesync ntp: a ${f.chrony.svc} still running after its package went (ntpsec conflicts with it) is stopped`, () => {
                    // apt removes a conflicting package under policy-rc.d, which refuses its stop: the unit file is
                    // gone, the daemon is not, and two daemons would steer the clock.
                    const h = makeHost(family);
                    setUnit(h, f.chrony.svc, "active");
                    fs.rmSync(`${h.state}/units/${f.chrony.svc}`);
                    const out = ok(h, "time-sync.sh", "apply", { IMPL: "ntp", CONFIG: "server pool.ntp.org iburst\n" });
                    expect(has(h, f.chrony.svc, "active"), `${f.chrony.svc} still active`).to.equal(false);
                    expect(out).to.contain(`changed service:${f.chrony.svc} stopped (its unit is gone)`);
                    expect(has(h, ntp.svc, "active")).to.equal(true);
                });
            } else {
                it("timesync ntp: rejected (EL8/9 have no ntp), nothing installed", () => {
                    const h = makeHost(family);
                    const r = run(h, "time-sync.sh", "apply", { IMPL: "ntp", CONFIG: "server pool.ntp.org iburst\n" });
                    expect(r.code).to.equal(1);
                    expect(r.stderr).to.match(/^host-topology: lab-host: ntp is not available on EL[89]; use chrony/m);
                    expect(mutations(h)).to.deep.equal([]);
                    expect(exists(h, "/etc/ntp.conf")).to.equal(false);
                });
            }

            it(`firewall: ${f.firewall.units} off (missing units fine), idempotent, remove turns back on what was on`, () => {
                const h = makeHost(family);
                for (const [u, st] of Object.entries(f.firewall.present)) {
                    if (st === "enabled") setUnit(h, u, "enabled", "active");
                    else setUnit(h, u);
                }
                if (f.firewall.ufw) fs.writeFileSync(`${h.state}/ufw-active`, "");
                const units = f.firewall.units.split(" ");
                const out = ok(h, "firewall-off.sh", "apply", { UNITS: f.firewall.units });
                for (const u of units) {
                    const st = f.firewall.present[u as keyof typeof f.firewall.present];
                    if (!st) expect(out).to.contain(`absent service:${u}\n`);
                    else if (st === "enabled") expect(out).to.contain(`changed service:${u} disabled,stopped\n`);
                    else expect(out).to.contain(`unchanged service:${u} disabled,stopped\n`);
                    expect(has(h, u, "enabled") || has(h, u, "active"), u).to.equal(false);
                }
                expect(fs.existsSync(`${h.state}/ufw-active`)).to.equal(false);
                if (f.firewall.ufw) expect(calls(h)).to.match(/^ufw disable$/m);
                expect(out).to.contain(`ok firewall family=${family}`);

                clearCalls(h);
                expectNoChange(ok(h, "firewall-off.sh", "apply", { UNITS: f.firewall.units }), family, "firewall");
                expect(mutations(h)).to.deep.equal([]);
                expect(ok(h, "firewall-off.sh", "check", { UNITS: f.firewall.units })).not.to.contain("drift");

                ok(h, "firewall-off.sh", "remove", { UNITS: f.firewall.units });
                for (const [u, st] of Object.entries(f.firewall.present)) {
                    expect(has(h, u, "enabled"), u).to.equal(st === "enabled");
                    expect(has(h, u, "active"), u).to.equal(st === "enabled");
                }
                expect(fs.existsSync(`${h.state}/ufw-active`)).to.equal(f.firewall.ufw);
                expect(exists(h, "/var/lib/host-topology/firewall.before")).to.equal(false);
            });

            it(`registry: ${f.registry.pkg} + nginx, ${f.registry.conf}, htpasswd 0640 root:${f.nginxGroup}, health on /v2/; idempotent; targeted restart/reload; remove keeps storage`, () => {
                const h = makeHost(family);
                const p = registryParams();
                const out = ok(h, "private-registry.sh", "apply", p);
                expect(calls(h)).to.match(installRe([f.registry.pkg, "nginx"]));
                expect(read(h, f.registry.conf)).to.equal(p.REGISTRY_CONFIG);
                expect(read(h, "/etc/nginx/conf.d/registry.conf")).to.equal(NGINX_SITE);
                expect(read(h, "/etc/nginx/.ngxpasswd")).to.equal(HTPASSWD);
                expect(mode(h, "/etc/nginx/.ngxpasswd")).to.equal(0o640);
                expect(calls(h)).to.match(new RegExp(`^chown root:${f.nginxGroup} .*/etc/nginx/\\.ngxpasswd\\.host-topology\\.tmp$`, "m"));
                expect(fs.statSync(path.join(h.root, "/var/lib/registry")).isDirectory()).to.equal(true);
                if (f.registry.user) expect(calls(h)).to.contain(`chown ${f.registry.user}: ${h.root}/var/lib/registry`);
                else expect(calls(h)).not.to.match(/^chown \S+ .*\/var\/lib\/registry$/m);
                expect(calls(h)).to.match(/^nginx -t$/m);
                for (const u of [f.registry.svc, "nginx"]) expect(has(h, u, "enabled") && has(h, u, "active"), u).to.equal(true);
                expect(out).to.contain(`healthy ${f.registry.svc} http://127.0.0.1:${registryPort}/v2/`);
                expect(out).to.contain(`ok registry family=${family}`);
                expect(out + calls(h)).not.to.contain("S3cr3t");
                expect(ok(h, "private-registry.sh", "check", p)).to.equal(`ok registry family=${family}\n`);

                clearCalls(h);
                expectNoChange(ok(h, "private-registry.sh", "apply", p), family, "registry");
                expect(mutations(h)).to.deep.equal([]);

                clearCalls(h);
                ok(h, "private-registry.sh", "apply", { ...p, NGINX_CONF: NGINX_SITE + "# v2\n" });
                expect(mutations(h)).to.deep.equal(["systemctl reload nginx"]);

                clearCalls(h);
                ok(h, "private-registry.sh", "apply", { ...p, NGINX_CONF: NGINX_SITE + "# v2\n", REGISTRY_CONFIG: p.REGISTRY_CONFIG + "# v2\n" });
                expect(mutations(h)).to.deep.equal([`systemctl restart ${f.registry.svc}`]);

                // no basic auth: the htpasswd file goes, nginx reloads
                clearCalls(h);
                const noAuth = ok(h, "private-registry.sh", "apply", { ...p, NGINX_CONF: NGINX_SITE + "# v2\n", REGISTRY_CONFIG: p.REGISTRY_CONFIG + "# v2\n", HTPASSWD: "" });
                expect(exists(h, "/etc/nginx/.ngxpasswd")).to.equal(false);
                expect(noAuth).to.contain("removed /etc/nginx/.ngxpasswd");
                expect(mutations(h)).to.deep.equal(["systemctl reload nginx"]);

                fs.writeFileSync(path.join(h.root, "/var/lib/registry/blob"), "layer");
                clearCalls(h);
                ok(h, "private-registry.sh", "remove", p);
                expect(exists(h, "/etc/nginx/conf.d/registry.conf") || exists(h, "/etc/nginx/.ngxpasswd")).to.equal(false);
                expect(read(h, f.registry.conf)).to.equal(pkgDefault(f.registry.pkg, f.registry.conf));
                expect(read(h, "/var/lib/registry/blob")).to.equal("layer");
                expect(has(h, f.registry.svc, "enabled") || has(h, f.registry.svc, "active")).to.equal(false);
                expect(has(h, "nginx", "active")).to.equal(true);
                expect(mutations(h)).to.include("systemctl reload nginx");
                clearCalls(h);
                expect(withoutDetail(ok(h, "private-registry.sh", "check", p))).to.equal(
                    [
                        `drift ${f.registry.conf} content differs:`,
                        "drift /etc/nginx/conf.d/registry.conf missing",
                        "drift /etc/nginx/.ngxpasswd missing",
                        `drift service:${f.registry.svc} disabled,inactive (want enabled,active)`,
                        `ok registry family=${family}`,
                        "",
                    ].join("\n"),
                );
                expect(mutations(h)).to.deep.equal([]);
            });

            it(`registry: ${f.registry.svc} failing to start is an error naming the host and unit, with the journal tail`, () => {
                const h = makeHost(family, { hostname: "master", installed: [f.registry.pkg, "nginx"] });
                setUnit(h, f.registry.svc, "fail");
                const r = run(h, "private-registry.sh", "apply", registryParams());
                expect(r.code).to.equal(1);
                expect(r.stderr).to.contain(`host-topology: master: unit ${f.registry.svc} failed to start`);
                expect(r.stderr).to.contain(`--- journalctl -u ${f.registry.svc} (last 30 lines) ---\nstub journal line 1 for ${f.registry.svc}\n`);
                expect(calls(h)).to.contain(`journalctl -u ${f.registry.svc} -n 30 --no-pager`);
                expect(r.stdout).not.to.contain("ok registry");
                expect(exists(h, "/etc/nginx/conf.d/registry.conf")).to.equal(false);
            });

            it(`etcd: ${f.etcd.pkgs.join(" + ")}, ${f.etcd.conf}, data dir 0700 for etcd, --no-block start, bounded health wait; idempotent; remove keeps data`, () => {
                const h = makeHost(family);
                const out = ok(h, "etcd-member.sh", "apply", ETCD);
                expect(calls(h)).to.match(installRe(f.etcd.pkgs));
                expect(read(h, f.etcd.conf)).to.equal(ETCD.ETCD_ENV);
                expect(mode(h, ETCD.DATA_DIR)).to.equal(0o700);
                expect(calls(h)).to.contain(`chown etcd: ${h.root}${ETCD.DATA_DIR}`);
                expect(mutations(h).filter((l) => l.startsWith("systemctl"))).to.deep.equal(["systemctl enable -q etcd", "systemctl restart --no-block etcd"]);
                expect(calls(h)).to.match(/^etcdctl --endpoints=http:\/\/192\.168\.100\.2:2379 .*endpoint health \(ETCDCTL_API=3\)$/m);
                expect(out).to.contain("healthy etcd1 http://192.168.100.2:2379");
                expect(out).to.contain("member 8e9e05c52164694d, started, etcd1, http://etcd1:2380, http://192.168.100.2:2379, false");
                expect(out).to.contain(`ok etcd family=${family}`);
                expect(ok(h, "etcd-member.sh", "check", ETCD)).to.equal(`ok etcd family=${family}\n`);

                clearCalls(h);
                expectNoChange(ok(h, "etcd-member.sh", "apply", ETCD), family, "etcd");
                expect(mutations(h)).to.deep.equal([]);

                fs.writeFileSync(path.join(h.root, ETCD.DATA_DIR, "db"), "data");
                ok(h, "etcd-member.sh", "remove", ETCD);
                expect(read(h, f.etcd.conf)).to.equal(pkgDefault(f.etcd.pkgs[0], f.etcd.conf));
                expect(read(h, `${ETCD.DATA_DIR}/db`)).to.equal("data");
                expect(has(h, "etcd", "enabled") || has(h, "etcd", "active")).to.equal(false);
                clearCalls(h);
                expect(withoutDetail(ok(h, "etcd-member.sh", "check", ETCD))).to.equal(
                    `drift ${f.etcd.conf} content differs:\ndrift service:${f.etcd.svc} disabled,inactive (want enabled,active)\nok etcd family=${family}\n`,
                );
                expect(mutations(h)).to.deep.equal([]);
            });
        });
    }
});

// =====================================================================================================

describe("host scripts: parameters and integrity (the protocol)", function () {
    this.timeout(30000);
    const timesync = path.join(SCRIPTS_DIR, "time-sync.sh");
    const hashes = () => ({ SCRIPT_SHA256: sha256File(timesync), LIB_SHA256: libSha256(SCRIPTS_DIR) });

    it("decodes values byte for byte: multi-line, trailing newlines, empty, non-ASCII, '=' and shell syntax (never evaluated)", () => {
        const h = makeHost("debian12");
        const nasty = `a=b\n$(touch ${h.root}/pwned) \`touch ${h.root}/pwned2\` \${HOME} 'q' "dq" \\n é ✓\n\n\n`;
        ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: nasty });
        expect(read(h, "/etc/chrony/chrony.conf")).to.equal(nasty);
        expect(exists(h, "/pwned") || exists(h, "/pwned2")).to.equal(false);
        ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: "" });
        expect(read(h, "/etc/chrony/chrony.conf")).to.equal("");
    });

    it("ignores blank lines; the last line needs no newline", () => {
        const h = makeHost("debian12");
        const p = { ...hashes(), IMPL: "chrony", CONFIG: "x\n" };
        const records = Object.entries(p).map(([k, v]) => encodeParams({ [k]: v }).slice(PARAMS_HEADER.length + 1));
        const stdin = `\n\n${PARAMS_HEADER}\n\n${records.join("\n\n")}`.trimEnd();
        const r = runRaw(h, timesync, "apply", stdin);
        expect(r.code, r.stderr).to.equal(0);
        expect(read(h, "/etc/chrony/chrony.conf")).to.equal("x\n");
    });

    it("accepts what the program's encoder sends", () => {
        const h = makeHost("debian12");
        const r = runRaw(h, timesync, "apply", programEncodeParams({ ...hashes(), IMPL: "chrony", CONFIG: "multi\nline\n" }));
        expect(r.code, r.stderr).to.equal(0);
        expect(read(h, "/etc/chrony/chrony.conf")).to.equal("multi\nline\n");
    });

    // The program's encoder against the script's reader: every value comes back byte for byte.
    const roundTrips: [string, string][] = [
        ["every byte but NUL (as UTF-8)", Array.from({ length: 255 }, (_, i) => String.fromCharCode(i + 1)).join("")],
        ["bytes that are not valid UTF-8 in a C locale", "\u00ff\u00fe\r\n\u0080\n"],
        ["empty", ""],
        ["one newline", "\n"],
        ["newlines only", "\n\n\n"],
        ["with a final newline", "server a iburst\nserver b iburst\n"],
        ["without a final newline", "server a iburst\nserver b iburst"],
        ["its delimiter as a line", "a\nEOF\nb\n"],
        ["its delimiter and the next one as lines, no final newline", "EOF\nEOF1\nEOF2"],
        ["exactly the delimiter", "EOF"],
        ["the delimiter without its newline at the end", "a\nEOF"],
        ["record syntax inside", "IMPL=ntp\nCONFIG<<EOF\n# host-topology parameters, format 2\n# host-topology secret parameters, format 2\n"],
        ["CRLF lines and trailing blanks", "a \r\nb\t\r\n  \n"],
        ["shell syntax (never evaluated)", "$(touch /tmp/pwned) `id` ${HOME} 'q' \"dq\" \\n é ✓"],
    ];
    for (const [what, value] of roundTrips) {
        it(`framing round trip: ${what}`, () => {
            const h = makeHost("debian12");
            const r = runRaw(h, timesync, "apply", programEncodeParams({ ...hashes(), IMPL: "chrony", CONFIG: value }));
            expect(r.code, r.stderr).to.equal(0);
            expect(fs.readFileSync(path.join(h.root, "etc/chrony/chrony.conf"), "utf8")).to.equal(value);
        });
    }

    it("framing: a NUL, which no shell variable can hold, is refused by the encoder, naming the parameter", () => {
        expect(() => programEncodeParams({ CONFIG: "a\u0000b" })).to.throw("parameter CONFIG contains a NUL character");
        expect(() => programEncodeParams({ config: "x" })).to.throw("bad parameter name config");
    });

    it("framing: plain text, one line per line of a value (what `pulumi preview --diff` shows)", () => {
        expect(programEncodeParams({ CONFIG: "# Managed\nserver a iburst\n", IMPL: "chrony", EMPTY: "" })).to.equal(
            "# host-topology parameters, format 2\nCONFIG<<EOF\n# Managed\nserver a iburst\nEOF\nEMPTY=\nIMPL=chrony\n",
        );
        expect(programEncodeParams({ V: "EOF\nx" })).to.equal("# host-topology parameters, format 2\nV<<EOF1 -n\nEOF\nx\nEOF1\n");
    });

    it("rejects bad input lines without echoing the value", () => {
        const h = makeHost("debian12");
        const badKey = runRaw(h, timesync, "apply", encodeParams(hashes()) + "impl=chrony-secret\n");
        expect(badKey.code).to.equal(1);
        expect(badKey.stderr).to.contain("bad parameter line");
        const noEq = runRaw(h, timesync, "apply", encodeParams(hashes()) + "JUSTAKEY\n");
        expect(noEq.code).to.equal(1);
        const unclosed = runRaw(h, timesync, "apply", encodeParams(hashes()) + "IMPL=chrony\nCONFIG<<EOF\nserver a\nsecret-line\n");
        expect(unclosed.code).to.equal(1);
        expect(unclosed.stderr).to.contain("parameter CONFIG: its closing line EOF is missing");
        expect(unclosed.stderr + unclosed.stdout).not.to.contain("secret-line");
        expect(mutations(h)).to.deep.equal([]);
    });

    it("still reads the framing before format 2 (KEY=<base64>), and rejects invalid base64 without echoing it", () => {
        const h = makeHost("debian12");
        const old = runRaw(h, timesync, "apply", encodeBase64Params({ ...hashes(), IMPL: "chrony", CONFIG: "old\nframing\n" }));
        expect(old.code, old.stderr).to.equal(0);
        expect(read(h, "/etc/chrony/chrony.conf")).to.equal("old\nframing\n");
        const bad64 = runRaw(h, timesync, "apply", encodeBase64Params(hashes()) + "IMPL=Y2hyb255\nCONFIG=%%%not-base64-secret%%%\n");
        expect(bad64.code).to.equal(1);
        expect(bad64.stderr).to.contain("parameter CONFIG is not valid base64");
        expect(bad64.stderr + bad64.stdout).not.to.contain("not-base64-secret");
    });

    it("a missing parameter is named", () => {
        const h = makeHost("debian12");
        const r = run(h, "time-sync.sh", "apply", { IMPL: "chrony" });
        expect(r.code).to.equal(1);
        expect(r.stderr).to.equal("host-topology: lab-host: missing parameter CONFIG\n");
        const noHash = runRaw(h, timesync, "apply", encodeParams({ IMPL: "chrony", CONFIG: "x" }));
        expect(noHash.code).to.equal(1);
        expect(noHash.stderr).to.contain("missing parameter SCRIPT_SHA256");
        for (const [script, params] of [
            ["host-base.sh", { HOSTNAME: "a", FQDN: "a.b" }],
            ["private-registry.sh", { REGISTRY_CONFIG: "x", NGINX_CONF: "y" }],
            ["etcd-member.sh", { ETCD_ENV: "x", NAME: "e", DATA_DIR: "/d" }],
            ["firewall-off.sh", {}],
        ] as const) {
            const m = run(h, script, "apply", params);
            expect(m.code, script).to.equal(1);
            expect(m.stderr, script).to.match(/missing parameter (HOSTS_BLOCK|HTPASSWD|CLIENT_URL|UNITS)\n$/);
        }
        expect(mutations(h)).to.deep.equal([]);
    });

    it("a script or its library that differs from the program's: exit 3 with both hashes, nothing done", () => {
        const h = makeHost("debian12");
        const wrong = "0".repeat(64);
        const s = run(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY, SCRIPT_SHA256: wrong });
        expect(s.code).to.equal(3);
        expect(s.stderr).to.equal(`host-topology: ${timesync} on lab-host differs from the program's version (expected ${wrong}, found ${sha256File(timesync)})\n`);
        const l = run(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY, LIB_SHA256: wrong });
        expect(l.code).to.equal(3);
        expect(l.stderr).to.contain(`${path.join(SCRIPTS_DIR, "lib")} on lab-host differs from the program's version (expected ${wrong}, found ${libSha256(SCRIPTS_DIR)})`);
        // check too (HostCheck reads exit 3 as "scripts differ")
        expect(run(h, "time-sync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY, SCRIPT_SHA256: wrong }).code).to.equal(3);
        expect(mutations(h)).to.deep.equal([]);
        expect(exists(h, "/etc/chrony/chrony.conf")).to.equal(false);
        // remove still works after the program moved on to a newer script: a warning
        const r = run(h, "time-sync.sh", "remove", { IMPL: "chrony", CONFIG: CHRONY, SCRIPT_SHA256: wrong });
        expect(r.code).to.equal(0);
        expect(r.stdout).to.match(/^warning: .*time-sync\.sh differs from the version that applied this step$/m);
    });

    it("an unknown action is a usage error", () => {
        const h = makeHost("debian12");
        const r = run(h, "time-sync.sh", "install", { IMPL: "chrony", CONFIG: CHRONY });
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain("usage: time-sync.sh apply|remove|check");
    });

    it("numeric parameters are numbers, never expressions", () => {
        const h = makeHost("debian12");
        const r = run(h, "etcd-member.sh", "apply", { ...ETCD, HEALTH_TIMEOUT: `a[$(touch ${h.root}/pwned)]` });
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain("parameter HEALTH_TIMEOUT must be a whole number of seconds");
        expect(exists(h, "/pwned")).to.equal(false);
    });
});

// =====================================================================================================

describe("host scripts: OS detection", function () {
    this.timeout(30000);
    const cases: [string, string | null][] = [
        ['ID="centos"\nVERSION_ID="7"', "el7"],
        ['ID="rhel"\nVERSION_ID="7.9"', "el7"],
        ['ID="ol"\nVERSION_ID="7.9"', "el7"],
        ['ID="centos"\nVERSION_ID="8"', "el8"],
        ['ID="rocky"\nVERSION_ID="8.9"', "el8"],
        ['ID="almalinux"\nVERSION_ID="8.10"', "el8"],
        ['ID="rhel"\nVERSION_ID="9.4"', "el9"],
        ['ID="ol"\nVERSION_ID="9.2"', "el9"],
        ['ID="centos"\nVERSION_ID="9"', "el9"],
        ["ID=debian\nVERSION_ID='12'", "debian12"],
        ['ID=debian\nVERSION_ID="13"', "debian13"],
        ["ID=debian\nVERSION_ID=13", "debian13"],
        ["ID=ubuntu\nVERSION_ID=22.04", "ubuntu2204"],
        ['ID=ubuntu\nVERSION_ID="24.04"', "ubuntu2404"],
        ['ID=debian\nVERSION_ID="11"', null],
        ['ID=debian\nVERSION_ID="14"', null],
        ['ID=ubuntu\nVERSION_ID="20.04"', null],
        ['ID="centos"\nVERSION_ID="6"', null],
        ['ID="rocky"\nVERSION_ID="10.0"', null],
        ['ID=fedora\nVERSION_ID=40', null],
        ["ID=arch", null],
    ];
    for (const [release, family] of cases) {
        it(`${release.replace(/\n/g, " ")} → ${family ?? "unsupported"}`, () => {
            const h = makeHost("debian12");
            fs.writeFileSync(path.join(h.root, "etc/os-release"), `NAME="x"\n${release}\nPRETTY_NAME="$(touch ${h.root}/pwned)"\n`);
            const r = run(h, "host-base.sh", "apply", HOSTBASE);
            if (family) {
                expect(r.code, r.stderr).to.equal(0);
                expect(r.stdout).to.match(new RegExp(`^ok hostbase family=${family}$`, "m"));
            } else {
                expect(r.code).to.equal(1);
                const m = /ID="?(\w+)"?\n?(?:VERSION_ID=["']?([\d.]+))?/.exec(release)!;
                expect(r.stderr).to.contain(`unsupported OS ${m[1]} ${m[2] ?? ""}`);
                expect(exists(h, "/etc/hosts")).to.equal(false);
            }
            expect(exists(h, "/pwned"), "os-release is read, never sourced").to.equal(false);
        });
    }

    it("HOST_TOPOLOGY_OS_RELEASE points elsewhere; an unreadable one is an error", () => {
        const h = makeHost("debian12");
        fs.writeFileSync(path.join(h.dir, "alt-os-release"), 'ID="rocky"\nVERSION_ID="9.3"\n');
        expect(ok(h, "host-base.sh", "apply", HOSTBASE, { env: { HOST_TOPOLOGY_OS_RELEASE: path.join(h.dir, "alt-os-release") } })).to.contain("ok hostbase family=el9");
        const r = run(h, "host-base.sh", "apply", HOSTBASE, { env: { HOST_TOPOLOGY_OS_RELEASE: path.join(h.dir, "nope") } });
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain(`cannot read ${path.join(h.dir, "nope")}`);
    });
});

// =====================================================================================================

describe("host scripts: hostbase (/etc/hosts and hostname)", function () {
    this.timeout(30000);
    const ORIGINAL =
        "127.0.0.1\tlocalhost localhost.localdomain master\n" +
        "127.0.1.1\tlab-master.example lab-master Master\n" +
        "::1\tlocalhost ip6-localhost ip6-loopback\n" +
        "ff02::1 ip6-allnodes\n" +
        "# 10.0.0.1 master (a comment)\n" +
        "10.0.0.7 REGISTRY.danran.com   # stale entry\n" +
        "10.0.0.8 node2-old node2\n" +
        "10.0.0.9 other.example other # mentions master in a comment\n";

    it("appends the block; keeps loopback lines; disables other lines mapping the block's names; remove restores byte for byte", () => {
        const h = makeHost("debian12");
        fs.writeFileSync(path.join(h.root, "etc/hosts"), ORIGINAL);
        ok(h, "host-base.sh", "apply", HOSTBASE);
        expect(read(h, "/etc/hosts")).to.equal(
            "127.0.0.1\tlocalhost localhost.localdomain master\n" +
                "#host-topology-disabled# 127.0.1.1\tlab-master.example lab-master Master\n" +
                "::1\tlocalhost ip6-localhost ip6-loopback\n" +
                "ff02::1 ip6-allnodes\n" +
                "# 10.0.0.1 master (a comment)\n" +
                "#host-topology-disabled# 10.0.0.7 REGISTRY.danran.com   # stale entry\n" +
                "10.0.0.8 node2-old node2\n" +
                "10.0.0.9 other.example other # mentions master in a comment\n" +
                BEGIN +
                BLOCK +
                END,
        );
        expect(ok(h, "host-base.sh", "check", HOSTBASE)).not.to.contain("drift");
        ok(h, "host-base.sh", "remove", HOSTBASE);
        expect(read(h, "/etc/hosts")).to.equal(ORIGINAL);
    });

    it("replaces the block where it stands; a name that leaves the block gets its line back", () => {
        const h = makeHost("debian12");
        const old = "127.0.0.1 localhost\n" + BEGIN + "192.168.100.9 old.danran.com old\n" + END + "10.0.0.8 node2-old node2\n# user line after the block\n";
        fs.writeFileSync(path.join(h.root, "etc/hosts"), old);
        const withNode2 = BLOCK + "192.168.100.4 node2.danran.com node2\n";
        ok(h, "host-base.sh", "apply", { ...HOSTBASE, HOSTS_BLOCK: withNode2 });
        expect(read(h, "/etc/hosts")).to.equal(
            "127.0.0.1 localhost\n" + BEGIN + withNode2 + END + "#host-topology-disabled# 10.0.0.8 node2-old node2\n# user line after the block\n",
        );
        ok(h, "host-base.sh", "apply", HOSTBASE);
        expect(read(h, "/etc/hosts")).to.equal("127.0.0.1 localhost\n" + BEGIN + BLOCK + END + "10.0.0.8 node2-old node2\n# user line after the block\n");
        expect(read(h, "/etc/hosts").split(BEGIN).length).to.equal(2);
    });

    it("a file without a final newline, a block without one, no file at all", () => {
        const h = makeHost("debian12");
        fs.writeFileSync(path.join(h.root, "etc/hosts"), "127.0.0.1 localhost");
        ok(h, "host-base.sh", "apply", { ...HOSTBASE, HOSTS_BLOCK: BLOCK.trimEnd() });
        expect(read(h, "/etc/hosts")).to.equal("127.0.0.1 localhost\n" + BEGIN + BLOCK + END);
        const none = makeHost("debian12");
        ok(none, "host-base.sh", "apply", HOSTBASE);
        expect(read(none, "/etc/hosts")).to.equal(BEGIN + BLOCK + END);
        expect(mode(none, "/etc/hosts")).to.equal(0o644);
    });

    it("a block whose END marker is gone is an error, not a swallowed file", () => {
        const h = makeHost("debian12");
        const broken = "127.0.0.1 localhost\n" + BEGIN + "192.168.100.9 old\n10.0.0.1 user-line\n";
        fs.writeFileSync(path.join(h.root, "etc/hosts"), broken);
        const r = run(h, "host-base.sh", "apply", HOSTBASE);
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain("/etc/hosts has unmatched host-topology block markers");
        expect(read(h, "/etc/hosts")).to.equal(broken);
        expect(ok(h, "host-base.sh", "check", HOSTBASE)).to.contain("drift /etc/hosts unmatched block markers");
    });

    it("sets the hostname with hostnamectl only when it differs", () => {
        const h = makeHost("debian12");
        const out = ok(h, "host-base.sh", "apply", HOSTBASE);
        expect(out).to.contain("changed hostname master");
        expect(mutations(h)).to.deep.equal(["hostnamectl set-hostname master"]);
        clearCalls(h);
        expect(ok(h, "host-base.sh", "apply", HOSTBASE)).to.contain("unchanged hostname master");
        expect(mutations(h)).to.deep.equal([]);
    });

    it("without hostnamed: writes /etc/hostname and sets the kernel's name", () => {
        const h = makeHost("el7");
        fs.writeFileSync(`${h.state}/no-hostnamed`, "");
        ok(h, "host-base.sh", "apply", HOSTBASE);
        expect(read(h, "/etc/hostname")).to.equal("master\n");
        expect(mutations(h)).to.deep.equal(["hostnamectl set-hostname master", "hostname master"]);
        expect(fs.readFileSync(`${h.state}/hostname`, "utf8")).to.equal("master\n");
    });

    it("rejects a HOSTNAME that is not a short host name", () => {
        const h = makeHost("debian12");
        const r = run(h, "host-base.sh", "apply", { ...HOSTBASE, HOSTNAME: "master.danran.com" });
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain("HOSTNAME must be a short host name");
        expect(mutations(h)).to.deep.equal([]);
    });

    it("remove with PURGE_SCRIPTS=1 deletes the uploaded scripts (only those) and keeps the backups", () => {
        for (const foreign of [false, true]) {
            const h = makeHost("debian12");
            const dir = path.join(h.root, "usr/local/lib/host-topology");
            fs.mkdirSync(dir, { recursive: true });
            copyScripts(dir);
            // The names from before the layout of host/, left on an upgraded host: removed too.
            for (const old of ["lib.sh", "etcd.sh", "timesync.sh"]) fs.writeFileSync(path.join(dir, old), "# an older name\n");
            if (foreign) fs.writeFileSync(path.join(dir, "notes.txt"), "mine");
            ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY }, { dir });
            ok(h, "host-base.sh", "apply", HOSTBASE, { dir });
            ok(h, "host-base.sh", "remove", { ...HOSTBASE, PURGE_SCRIPTS: "1" }, { dir });
            expect(fs.existsSync(dir)).to.equal(foreign);
            if (foreign) expect(fs.readdirSync(dir)).to.deep.equal(["notes.txt"]);
            expect(exists(h, "/var/lib/host-topology/backup/etc/chrony/chrony.conf")).to.equal(true);
        }
        // without it the scripts stay
        const h = makeHost("debian12");
        const dir = path.join(h.root, "opt/ht");
        fs.mkdirSync(dir, { recursive: true });
        copyScripts(dir);
        ok(h, "host-base.sh", "remove", HOSTBASE, { dir });
        expect(fs.readdirSync(dir, { recursive: true }).filter((f) => f !== "lib").sort()).to.deep.equal([...SCRIPTS].sort());
    });
});

// =====================================================================================================

describe("host scripts: packages", function () {
    this.timeout(30000);

    it("apt: updates first when the lists are empty (not after); DPkg::Lock::Timeout=600, noninteractive, no recommends; only missing packages", () => {
        const h = makeHost("debian12", { installed: ["nginx"] });
        ok(h, "private-registry.sh", "apply", registryParams());
        const apt = calls(h).split("\n").filter((l) => l.startsWith("apt-get"));
        expect(apt).to.deep.equal([
            "apt-get -o DPkg::Lock::Timeout=600 -q -o APT::Update::Error-Mode=any update",
            "apt-get -o DPkg::Lock::Timeout=600 -q install -y --no-install-recommends docker-registry",
            "apt-get env: DEBIAN_FRONTEND=noninteractive",
        ]);
        clearCalls(h);
        ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        expect(calls(h)).not.to.contain(" update");
        expect(calls(h)).to.contain("install -y --no-install-recommends chrony\n");
    });

    it("apt: APT_LOCK_TIMEOUT sets the lock wait; a failed install is retried once after an update", () => {
        const h = makeHost("ubuntu2404");
        fs.writeFileSync(`${h.state}/apt-fail-once`, "");
        ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY }, { env: { APT_LOCK_TIMEOUT: "7" } });
        const apt = calls(h).split("\n").filter((l) => /^apt-get -o/.test(l));
        expect(apt.every((l) => l.startsWith("apt-get -o DPkg::Lock::Timeout=7 "))).to.equal(true);
        expect(apt.map((l) => l.split(" ").find((w) => w === "update" || w === "install"))).to.deep.equal(["update", "install", "update", "install"]);
        expect(installed(h, "chrony")).to.equal(true);
    });

    it("apt: a persistent failure is an error with apt's output; no service config written; policy-rc.d removed", () => {
        const h = makeHost("debian12");
        fs.writeFileSync(`${h.state}/apt-fail-always`, "");
        const r = run(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain("host-topology: lab-host: could not install chrony with apt-get: E: Could not get lock /var/lib/dpkg/lock-frontend");
        expect(exists(h, "/etc/chrony/chrony.conf") || exists(h, "/usr/sbin/policy-rc.d")).to.equal(false);
    });

    it("apt: no service starts during installation (policy-rc.d), an existing policy is left alone", () => {
        const h = makeHost("debian12");
        ok(h, "etcd-member.sh", "apply", ETCD);
        expect(calls(h)).to.match(/^policy-rc\.d: exit 101$/m);
        expect(exists(h, "/usr/sbin/policy-rc.d")).to.equal(false);
        const mine = makeHost("debian12");
        fs.mkdirSync(path.join(mine.root, "usr/sbin"), { recursive: true });
        fs.writeFileSync(path.join(mine.root, "usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
        ok(mine, "etcd-member.sh", "apply", ETCD);
        expect(read(mine, "/usr/sbin/policy-rc.d")).to.equal("#!/bin/sh\nexit 0\n");
    });

    it("EL7 (yum exits 0 when only some packages exist): a package only in EPEL brings epel-release first", () => {
        const h = makeHost("el7");
        fs.writeFileSync(`${h.state}/epel-only`, "nginx\n");
        const out = ok(h, "private-registry.sh", "apply", registryParams());
        expect(mutations(h).filter((l) => l.startsWith("yum"))).to.deep.equal([
            "yum -y install docker-distribution nginx",
            "yum -y install epel-release",
            "yum -y install docker-distribution nginx",
        ]);
        expect(out).to.contain("changed packages epel-release");
        expect(installed(h, "nginx")).to.equal(true);
    });

    it("EL9 (dnf fails the whole transaction): same; without EPEL the error shows the manager's message", () => {
        const h = makeHost("el9");
        fs.writeFileSync(`${h.state}/epel-only`, "etcd\n");
        ok(h, "etcd-member.sh", "apply", ETCD);
        expect(installed(h, "etcd") && installed(h, "epel-release")).to.equal(true);
        const rhel = makeHost("el8");
        fs.writeFileSync(`${rhel.state}/epel-only`, "docker-distribution\n");
        fs.writeFileSync(`${rhel.state}/no-epel`, "");
        const r = run(rhel, "private-registry.sh", "apply", registryParams());
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain("could not install docker-distribution nginx with dnf: No match for argument: docker-distribution");
        expect(exists(rhel, EL_REGISTRY.conf)).to.equal(false);
    });
});

// =====================================================================================================

describe("host scripts: package lists freshness (PKG_LISTS_MAX_AGE)", function () {
    this.timeout(30000);
    const LISTS = "/var/lib/apt/lists";
    const STAMP = "/var/lib/host-topology/pkg-lists.stamp";
    const ago = (h: Host, p: string, seconds: number) => {
        const t = Date.now() / 1000 - seconds;
        fs.utimesSync(path.join(h.root, p), t, t);
    };
    /** apt lists as `apt-get update` leaves them, their mtime `seconds` ago (apt dates them with the mirror's Last-Modified). */
    const aptLists = (h: Host, seconds: number) => {
        fs.mkdirSync(path.join(h.root, LISTS), { recursive: true });
        for (const f of ["deb.debian.org_debian_dists_bookworm_InRelease", "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"]) {
            fs.writeFileSync(path.join(h.root, LISTS, f), "");
            ago(h, `${LISTS}/${f}`, seconds);
        }
    };
    /** The package manager calls, in order (apt-get: its subcommand only; the stubs' own notes and the read-only queries, queries(), left out). */
    const pmCalls = (h: Host) =>
        calls(h)
            .split("\n")
            .filter((l) => /^(apt-get -o|dnf |yum )/.test(l) && !/ (indextargets|repolist) /.test(l))
            .map((l) => (l.startsWith("apt-get") ? l.split(" ").find((w) => w === "update" || w === "install")! : l));
    const UPDATE = "apt-get -o DPkg::Lock::Timeout=600 -q -o APT::Update::Error-Mode=any update";
    const chrony = (age?: string) => ({ IMPL: "chrony", CONFIG: CHRONY, ...(age === undefined ? {} : { PKG_LISTS_MAX_AGE: age }) });
    const refreshLines = (out: string) => out.split("\n").filter((l) => /refresh/.test(l));
    /** What the configured sources are was asked of the package manager: apt-get indextargets, dnf/yum repolist. */
    const queries = (h: Host) =>
        calls(h)
            .split("\n")
            .filter((l) => /^(apt-get|dnf|yum) .* (indextargets|repolist) /.test(l));
    /** Debian 12's sources.list (as the installer writes it): the release, its updates and the security archive. */
    const BOOKWORM_SOURCES =
        "deb http://deb.debian.org/debian bookworm main\n" +
        "deb http://deb.debian.org/debian bookworm-updates main\n" +
        "deb http://deb.debian.org/debian-security bookworm-security main\n";
    const sourcesList = (h: Host, content: string) => {
        fs.mkdirSync(path.join(h.root, "etc/apt"), { recursive: true });
        fs.writeFileSync(path.join(h.root, "etc/apt/sources.list"), content);
    };
    /** chrony removed behind the scripts' back, then timesync applied: an install again (etcd-member.sh is not needed for that). */
    const reinstallChrony = (h: Host) => {
        fs.rmSync(`${h.state}/pkgs/chrony`);
        clearCalls(h);
        return ok(h, "time-sync.sh", "apply", chrony("3600"));
    };
    /** One list file, `seconds` old; an InRelease's content names the indexes the mirror has. */
    const aptList = (h: Host, name: string, seconds: number, content = "") => {
        fs.mkdirSync(path.join(h.root, LISTS), { recursive: true });
        fs.writeFileSync(path.join(h.root, LISTS, name), content);
        ago(h, `${LISTS}/${name}`, seconds);
    };
    const UPDATES_LIST = "deb.debian.org_debian_dists_bookworm-updates_main_binary-amd64_Packages";
    const SECURITY_LIST = "deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages";

    it("apt: fresh lists (mtime now) and a package to install: no update (default max age 3600s), the package is installed", () => {
        const h = makeHost("debian12");
        aptLists(h, 0);
        const out = ok(h, "time-sync.sh", "apply", chrony());
        expect(pmCalls(h)).to.deep.equal(["install"]);
        expect(installed(h, "chrony")).to.equal(true);
        expect(out).to.contain("changed packages chrony\n");
        expect(refreshLines(out)).to.deep.equal([]);
    });

    it("apt: lists older than PKG_LISTS_MAX_AGE: apt-get update (Error-Mode=any), then install; reported as a refresh, not a change", () => {
        const h = makeHost("ubuntu2204");
        aptLists(h, 7200);
        const out = ok(h, "time-sync.sh", "apply", chrony("3600"));
        expect(pmCalls(h)).to.deep.equal(["update", "install"]);
        expect(calls(h).split("\n").filter((l) => l.startsWith("apt-get -o"))[0]).to.equal(UPDATE);
        expect(installed(h, "chrony")).to.equal(true);
        expect(refreshLines(out)).to.deep.equal(["refreshed package lists (older than 3600s)"]);
        expect(out).to.not.match(/^changed .*(refresh|lists)/m);
        expect(out).to.match(/^installing chrony\nrefreshed package lists \(older than 3600s\)\n/m);
        expect(exists(h, STAMP)).to.equal(true);

        // now fresh: the next install fetches nothing
        clearCalls(h);
        ok(h, "private-registry.sh", "apply", { ...registryParams(), PKG_LISTS_MAX_AGE: "3600" });
        expect(pmCalls(h)).to.deep.equal(["install"]);
    });

    it("apt: the lists' age is compared with PKG_LISTS_MAX_AGE; 0 refreshes before every install; no lists at all is a refresh", () => {
        for (const [age, max, updated] of [
            [1800, "3600", false],
            [1800, "600", true],
            [0, "0", true],
            [86400 * 10, "999999", false],
        ] as const) {
            const h = makeHost("debian13");
            aptLists(h, age);
            ok(h, "time-sync.sh", "apply", chrony(max));
            expect(pmCalls(h), `lists ${age}s old, max ${max}`).to.deep.equal(updated ? ["update", "install"] : ["install"]);
        }
        const none = makeHost("ubuntu2404");
        const out = ok(none, "time-sync.sh", "apply", chrony("999999"));
        expect(pmCalls(none)).to.deep.equal(["update", "install"]);
        expect(refreshLines(out)).to.deep.equal(["refreshed package lists (none yet, or of unknown age)"]);
        // a list file dated in the future (a wrong clock) does not make stale lists fresh
        const future = makeHost("debian12");
        aptLists(future, 7200);
        ago(future, `${LISTS}/deb.debian.org_debian_dists_bookworm_InRelease`, -86400);
        ok(future, "time-sync.sh", "apply", chrony("3600"));
        expect(pmCalls(future)).to.deep.equal(["update", "install"]);
    });

    it("apt: after an update that found nothing new (the lists keep the mirror's old dates) our stamp counts; deleted lists are fetched again", () => {
        const h = makeHost("debian12");
        aptLists(h, 7200);
        ok(h, "time-sync.sh", "apply", chrony("3600"));
        expect(pmCalls(h)).to.deep.equal(["update", "install"]);
        aptLists(h, 7200); // as after a 304 from the mirror
        clearCalls(h);
        ok(h, "time-sync.sh", "apply", { IMPL: "ntp", CONFIG: "server pool.ntp.org iburst\n", PKG_LISTS_MAX_AGE: "3600" });
        expect(pmCalls(h)).to.deep.equal(["install"]);
        // the stamp ages like the lists
        ago(h, STAMP, 7200);
        clearCalls(h);
        ok(h, "etcd-member.sh", "apply", { ...ETCD, PKG_LISTS_MAX_AGE: "3600" });
        expect(pmCalls(h)).to.deep.equal(["update", "install"]);
        // a fresh stamp but no lists (deleted to save space): update
        fs.rmSync(path.join(h.root, LISTS), { recursive: true });
        clearCalls(h);
        ok(h, "private-registry.sh", "apply", { ...registryParams(), PKG_LISTS_MAX_AGE: "3600" });
        expect(pmCalls(h)).to.deep.equal(["update", "install"]);
    });

    it("apt (Debian 12): a fresh list for bookworm main but none yet for bookworm-updates and bookworm-security: apt-get update before the install, saying why", () => {
        // Seen on real hosts: the check counted the lists as fresh and installed nginx 1.22.1-9+deb12u9, although the
        // security update 1.22.1-9+deb12u11 was the candidate after apt-get update.
        const h = makeHost("debian12");
        sourcesList(h, BOOKWORM_SOURCES);
        aptLists(h, 0);
        const out = ok(h, "private-registry.sh", "apply", { ...registryParams(), PKG_LISTS_MAX_AGE: "3600" });
        expect(pmCalls(h)).to.deep.equal(["update", "install"]);
        expect(refreshLines(out)).to.deep.equal(["refreshed package lists (no list yet for 2 configured source(s))"]);
        expect(out).to.match(/^installing docker-registry nginx\nrefreshed package lists \(no list yet for 2 configured source\(s\)\)\n/m);
        expect(out).to.not.match(/^changed .*(refresh|lists)/m);
        // asked of apt, for every configured source (not only those it has a Release file for)
        expect(queries(h)).to.deep.equal([
            "apt-get -q -o APT::Get::IndexTargets::ReleaseInfo=false indextargets --format $(FILENAME)\t$(METAKEY)\t$(REPO_URI) $(RELEASE) Created-By: Packages Optional: no",
        ]);
        expect(exists(h, `${LISTS}/${UPDATES_LIST}`) && exists(h, `${LISTS}/${SECURITY_LIST}`)).to.equal(true);

        // every list there and fresh now: the next install fetches nothing
        clearCalls(h);
        expect(refreshLines(ok(h, "time-sync.sh", "apply", chrony("3600")))).to.deep.equal([]);
        expect(pmCalls(h)).to.deep.equal(["install"]);

        // a component added to a suite whose Release file is there (and names it), no list for it yet: 1 source
        const contrib = makeHost("debian13");
        sourcesList(contrib, "deb http://deb.debian.org/debian bookworm main contrib\n");
        aptList(contrib, "deb.debian.org_debian_dists_bookworm_InRelease", 0, " 0a 1 main/binary-amd64/Packages.xz\n 0b 2 contrib/binary-amd64/Packages.xz\n");
        aptList(contrib, "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages", 0);
        const more = ok(contrib, "time-sync.sh", "apply", chrony("3600"));
        expect(pmCalls(contrib)).to.deep.equal(["update", "install"]);
        expect(refreshLines(more)).to.deep.equal(["refreshed package lists (no list yet for 1 configured source(s))"]);
        expect(exists(contrib, `${LISTS}/deb.debian.org_debian_dists_bookworm_contrib_binary-amd64_Packages`)).to.equal(true);
    });

    it("apt: every configured source has a fresh list (plain or compressed, as with Acquire::GzipIndexes): no update; nor for a component the mirror lacks (not in its Release file)", () => {
        const h = makeHost("debian12");
        sourcesList(h, BOOKWORM_SOURCES.replace("bookworm main\n", "bookworm main contrib\n"));
        const release = " 0a 1 main/binary-amd64/Packages.xz\n 0b 2 main/binary-amd64/Packages.gz\n";
        aptList(h, "deb.debian.org_debian_dists_bookworm_InRelease", 0, release); // no contrib on this mirror
        aptList(h, "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages", 0);
        aptList(h, "deb.debian.org_debian_dists_bookworm-updates_InRelease", 0, release);
        aptList(h, `${UPDATES_LIST}.lz4`, 0);
        aptList(h, "deb.debian.org_debian-security_dists_bookworm-security_InRelease", 0, release);
        aptList(h, `${SECURITY_LIST}.gz`, 0);
        const out = ok(h, "time-sync.sh", "apply", chrony("3600"));
        expect(pmCalls(h)).to.deep.equal(["install"]);
        expect(refreshLines(out)).to.deep.equal([]);
        expect(installed(h, "chrony")).to.equal(true);
        // the same lists, stale: their age counts as before
        for (const f of fs.readdirSync(path.join(h.root, LISTS))) ago(h, `${LISTS}/${f}`, 7200);
        clearCalls(h);
        expect(refreshLines(ok(h, "time-sync.sh", "apply", { IMPL: "ntp", CONFIG: "server pool.ntp.org iburst\n", PKG_LISTS_MAX_AGE: "3600" }))).to.deep.equal([
            "refreshed package lists (older than 3600s)",
        ]);
    });

    it("apt without `apt-get indextargets` (older than 1.1): only the lists' age counts, as before", () => {
        const h = makeHost("debian12");
        sourcesList(h, BOOKWORM_SOURCES);
        aptLists(h, 0);
        fs.writeFileSync(`${h.state}/apt-no-indextargets`, "");
        const out = ok(h, "time-sync.sh", "apply", chrony("3600"));
        expect(pmCalls(h)).to.deep.equal(["install"]);
        expect(refreshLines(out)).to.deep.equal([]);
    });


    // apt-get indextargets builds apt's cache from the lists first (0.4 s of a host's CPU on a fresh Debian 12), and the
    // refresh that follows builds it again: install-packages.sh (a host's first install) asks only when the lists' age alone
    // does not call for a refresh.
    it("install-packages.sh, apt: lists older than PKG_LISTS_MAX_AGE are refreshed before apt is asked which sources lack a list; fresh lists are asked first, as before", () => {
        const aptCalls = (h: Host) =>
            calls(h)
                .split("\n")
                .map((l) => /^apt-get .* (update|install|indextargets)\b/.exec(l)?.[1])
                .filter((w) => w !== undefined);
        /** Debian 12 with its three sources, a list for bookworm main only (`age` seconds old; none when undefined), chrony applied by install-packages.sh. */
        const bookworm = (maxAge: string, age?: number) => {
            const h = makeHost("debian12");
            sourcesList(h, BOOKWORM_SOURCES);
            if (age !== undefined) aptLists(h, age);
            return { h, out: ok(h, "install-packages.sh", "apply", { PACKAGES: "chrony", PKG_LISTS_MAX_AGE: maxAge }) };
        };
        const stale = bookworm("3600", 7200);
        expect(aptCalls(stale.h)).to.deep.equal(["update", "indextargets", "install"]);
        expect(refreshLines(stale.out)).to.deep.equal(["refreshed package lists (older than 3600s)"]);
        expect(installed(stale.h, "chrony")).to.equal(true);

        const fresh = bookworm("3600", 0);
        expect(aptCalls(fresh.h)).to.deep.equal(["indextargets", "update", "install"]);
        expect(refreshLines(fresh.out)).to.deep.equal(["refreshed package lists (no list yet for 2 configured source(s))"]);

        // PKG_LISTS_MAX_AGE=0 (a refresh before every install) and no lists at all: one refresh, as before.
        expect(pmCalls(bookworm("0", 7200).h), "max age 0").to.deep.equal(["update", "install"]);
        expect(pmCalls(bookworm("3600").h), "no lists").to.deep.equal(["update", "install"]);
        // Nothing to install: nothing fetched, however old the lists.
        const done = makeHost("debian12", { installed: ["chrony"] });
        aptLists(done, 86400 * 30);
        ok(done, "install-packages.sh", "apply", { PACKAGES: "chrony" });
        expect(aptCalls(done)).to.deep.equal([]);
    });
    it("nothing to install: no update and no makecache, even with stale lists and PKG_LISTS_MAX_AGE=0", () => {
        for (const family of ["debian12", "el7", "el9"]) {
            const h = makeHost(family, { installed: ["chrony"] });
            if (FAMILIES[family].pm === "apt-get") aptLists(h, 86400 * 30);
            ok(h, "time-sync.sh", "apply", chrony("0"));
            expect(pmCalls(h), family).to.deep.equal([]);
            expect(calls(h), family).to.not.match(/^(apt-get|dnf|yum) /m);
        }
    });

    it("apt-get update failing (mirror unreachable): exit 1 naming the host and apt's error; nothing installed, nothing configured, no policy-rc.d left", () => {
        for (const flag of ["apt-update-fail", "apt-update-fail-exit0"]) {
            const h = makeHost("debian12", { hostname: "master" });
            aptLists(h, 7200);
            fs.writeFileSync(`${h.state}/${flag}`, "");
            const r = run(h, "time-sync.sh", "apply", chrony("3600"));
            expect(r.code, flag).to.equal(1);
            const level = flag === "apt-update-fail" ? "E" : "W"; // exit 0 with W: lines is caught as well
            expect(r.stderr, flag).to.contain("host-topology: master: could not refresh the package lists with apt-get update: ");
            expect(r.stderr, flag).to.contain(
                `${level}: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving 'deb.debian.org'\n`,
            );
            expect(r.stderr, flag).to.contain(`${level}: Some index files failed to download.`);
            expect(pmCalls(h), flag).to.deep.equal(["update"]);
            expect(installed(h, "chrony"), flag).to.equal(false);
            expect(exists(h, "/etc/chrony/chrony.conf") || exists(h, "/usr/sbin/policy-rc.d") || exists(h, STAMP), flag).to.equal(false);
            expect(r.stdout, flag).to.not.contain("refreshed");
            expect(r.stdout, flag).to.not.contain("ok timesync");
        }
    });

    it("apt: a failed install retried after an update that fails: the update's error, policy-rc.d removed", () => {
        const h = makeHost("debian12");
        aptLists(h, 0);
        fs.writeFileSync(`${h.state}/apt-fail-once`, "");
        fs.writeFileSync(`${h.state}/apt-update-fail`, "");
        const r = run(h, "time-sync.sh", "apply", chrony());
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain("host-topology: lab-host: could not refresh the package lists with apt-get update: ");
        expect(r.stderr).to.contain("E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease");
        expect(pmCalls(h)).to.deep.equal(["install", "update"]);
        expect(exists(h, "/usr/sbin/policy-rc.d")).to.equal(false);
    });

    it("apt: another update holding the lists' lock is waited for, up to APT_LOCK_TIMEOUT", () => {
        const h = makeHost("debian12");
        fs.writeFileSync(`${h.state}/apt-update-locked-once`, "");
        ok(h, "time-sync.sh", "apply", chrony(), { env: { APT_LOCK_TIMEOUT: "7" } });
        expect(pmCalls(h)).to.deep.equal(["update", "update", "install"]);
        expect(installed(h, "chrony")).to.equal(true);

        const held = makeHost("debian12");
        fs.writeFileSync(`${held.state}/apt-update-locked`, "");
        const r = run(held, "time-sync.sh", "apply", chrony(), { env: { APT_LOCK_TIMEOUT: "7" } });
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain("host-topology: lab-host: could not refresh the package lists with apt-get update: E: Could not get lock");
        expect(pmCalls(held)).to.deep.equal(["update", "update", "update"]); // at 0s, 5s and 10s: 7s waited
    });

    for (const [family, refresh] of [
        ["el7", ["yum -q clean expire-cache", "yum -q makecache fast"]],
        ["el8", ["dnf -q makecache --refresh"]],
        ["el9", ["dnf -q makecache --refresh"]],
    ] as const) {
        const pm = FAMILIES[family].pm;
        it(`${family}: ${refresh.join(" + ")} before the first install (our stamp), again only when older than PKG_LISTS_MAX_AGE`, () => {
            const h = makeHost(family);
            const out = ok(h, "time-sync.sh", "apply", chrony("3600"));
            expect(pmCalls(h)).to.deep.equal([...refresh, `${pm} -y install chrony`]);
            expect(refreshLines(out)).to.deep.equal(["refreshed package lists (none yet, or of unknown age)"]);
            expect(exists(h, STAMP)).to.equal(true);

            clearCalls(h);
            ok(h, "private-registry.sh", "apply", { ...registryParams(), PKG_LISTS_MAX_AGE: "3600" });
            expect(pmCalls(h)).to.deep.equal([`${pm} -y install docker-distribution nginx`]);

            ago(h, STAMP, 7200);
            clearCalls(h);
            const again = ok(h, "etcd-member.sh", "apply", { ...ETCD, PKG_LISTS_MAX_AGE: "3600" });
            expect(pmCalls(h)).to.deep.equal([...refresh, `${pm} -y install etcd`]);
            expect(refreshLines(again)).to.deep.equal(["refreshed package lists (older than 3600s)"]);
        });
    }

    for (const [family, refresh, repos] of [
        ["el7", ["yum -q clean expire-cache", "yum -q makecache fast"], ["base", "extras", "updates"]],
        ["el8", ["dnf -q makecache --refresh"], ["appstream", "baseos", "extras"]],
        ["el9", ["dnf -q makecache --refresh"], ["appstream", "baseos", "extras"]],
    ] as const) {
        const pm = FAMILIES[family].pm;
        it(`${family}: a repository enabled after the last refresh: ${refresh.join(" + ")} before the next install, naming it; the same repositories: none`, () => {
            const h = makeHost(family);
            const first = ok(h, "time-sync.sh", "apply", chrony("3600"));
            expect(refreshLines(first)).to.deep.equal(["refreshed package lists (none yet, or of unknown age)"]);
            expect(read(h, STAMP)).to.equal(repos.join("\n") + "\n"); // sorted ids, without yum's /7/x86_64
            expect(queries(h)).to.include(pm === "dnf" ? "dnf -q repolist --enabled" : "yum -q repolist enabled");

            // the same repositories: the lists are fresh
            clearCalls(h);
            expect(refreshLines(ok(h, "private-registry.sh", "apply", { ...registryParams(), PKG_LISTS_MAX_AGE: "3600" }))).to.deep.equal([]);
            expect(pmCalls(h)).to.deep.equal([`${pm} -y install docker-distribution nginx`]);

            // crb enabled since (and epel, with a metalink: yum marks its id with a *)
            fs.writeFileSync(`${h.state}/repos`, [...repos, "crb"].join("\n") + "\n");
            stubInstall(h, "epel-release");
            const added = reinstallChrony(h);
            expect(pmCalls(h)).to.deep.equal([...refresh, `${pm} -y install chrony`]);
            expect(refreshLines(added)).to.deep.equal(["refreshed package lists (repositories enabled since the last refresh: crb epel)"]);
            expect(read(h, STAMP)).to.equal([...repos, "crb", "epel"].sort().join("\n") + "\n");

            // one disabled since: the others' lists are as fresh as before
            fs.writeFileSync(`${h.state}/repos`, [...repos.slice(1), "crb"].join("\n") + "\n");
            expect(refreshLines(reinstallChrony(h))).to.deep.equal([]);
            expect(pmCalls(h)).to.deep.equal([`${pm} -y install chrony`]);
        });
    }

    it("dnf: a fresh stamp recording no repositories (written before this check): one refresh; repolist failing: only the stamp's age counts", () => {
        const h = makeHost("el9");
        fs.mkdirSync(path.join(h.root, path.dirname(STAMP)), { recursive: true });
        fs.writeFileSync(path.join(h.root, STAMP), "");
        const out = ok(h, "time-sync.sh", "apply", chrony("3600"));
        expect(pmCalls(h)).to.deep.equal(["dnf -q makecache --refresh", "dnf -y install chrony"]);
        expect(refreshLines(out)).to.deep.equal(["refreshed package lists (enabled repositories not recorded at the last refresh)"]);
        expect(read(h, STAMP)).to.equal("appstream\nbaseos\nextras\n");

        fs.writeFileSync(`${h.state}/repos`, "appstream\nbaseos\nextras\ncrb\n");
        fs.writeFileSync(`${h.state}/repolist-fail`, "");
        clearCalls(h);
        expect(refreshLines(ok(h, "private-registry.sh", "apply", { ...registryParams(), PKG_LISTS_MAX_AGE: "3600" }))).to.deep.equal([]);
        expect(pmCalls(h)).to.deep.equal(["dnf -y install docker-distribution nginx"]);
        ago(h, STAMP, 7200);
        expect(refreshLines(reinstallChrony(h))).to.deep.equal(["refreshed package lists (older than 3600s)"]);
        expect(pmCalls(h)).to.deep.equal(["dnf -q makecache --refresh", "dnf -y install chrony"]);
    });

    for (const [family, message] of [
        ["el7", "Cannot find a valid baseurl for repo: base/7/x86_64"],
        ["el9", "Error: Failed to download metadata for repo 'baseos': Cannot download repomd.xml"],
    ] as const) {
        const pm = FAMILIES[family].pm;
        it(`${family}: ${pm} makecache failing (repository unreachable): exit 1 naming the host, ${pm} and its error; nothing installed`, () => {
            const h = makeHost(family, { hostname: "node1" });
            fs.writeFileSync(`${h.state}/makecache-fail`, "");
            const r = run(h, "time-sync.sh", "apply", chrony("3600"));
            expect(r.code).to.equal(1);
            expect(r.stderr).to.contain(`host-topology: node1: could not refresh the package lists with ${pm} makecache: `);
            expect(r.stderr).to.contain(message);
            expect(mutations(h)).to.deep.equal([]);
            expect(installed(h, "chrony") || exists(h, "/etc/chrony.conf") || exists(h, STAMP)).to.equal(false);
            expect(r.stdout).to.not.contain("ok timesync");
        });
    }

    it("a PKG_LISTS_MAX_AGE that is not a whole number of seconds is an error, also with nothing to install; nothing fetched or installed", () => {
        for (const bad of ["1h", "-1", "", "3600 ", "1e3", "0x10", "1234567", "a[$(touch /tmp/pwned-pkg-lists)]"]) {
            for (const installedAlready of [false, true]) {
                const h = makeHost("debian12", { installed: installedAlready ? ["chrony"] : [] });
                const r = run(h, "time-sync.sh", "apply", chrony(bad));
                expect(r.code, JSON.stringify(bad)).to.equal(1);
                expect(r.stderr, JSON.stringify(bad)).to.equal("host-topology: lab-host: parameter PKG_LISTS_MAX_AGE must be a whole number of seconds\n");
                expect(pmCalls(h), JSON.stringify(bad)).to.deep.equal([]);
                expect(mutations(h), JSON.stringify(bad)).to.deep.equal([]);
                if (installedAlready) expect(read(h, "/etc/chrony/chrony.conf")).to.equal(pkgDefault("chrony", "/etc/chrony/chrony.conf"));
                else expect(exists(h, "/etc/chrony/chrony.conf")).to.equal(false);
            }
        }
        expect(fs.existsSync("/tmp/pwned-pkg-lists")).to.equal(false);
        // install-packages.sh (a host's first install), stale lists or none: one error, nothing fetched.
        for (const age of [7200, undefined]) {
            const h = makeHost("debian12");
            if (age !== undefined) aptLists(h, age);
            const r = run(h, "install-packages.sh", "apply", { PACKAGES: "chrony", PKG_LISTS_MAX_AGE: "1h" });
            expect(r.code, `lists ${age}`).to.equal(1);
            expect(r.stderr, `lists ${age}`).to.equal("host-topology: lab-host: parameter PKG_LISTS_MAX_AGE must be a whole number of seconds\n");
            expect(pmCalls(h), `lists ${age}`).to.deep.equal([]);
            expect(mutations(h), `lists ${age}`).to.deep.equal([]);
        }
    });
});

// =====================================================================================================

describe("host scripts: services, health and failures", function () {
    this.timeout(30000);

    it("chrony skipped by ConditionCapability (a container) is a warning, not a failure", () => {
        const h = makeHost("debian12", { installed: ["chrony"] });
        setUnit(h, "chrony", "skip");
        const r = run(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        expect(r.code, r.stderr).to.equal(0);
        expect(r.stdout).to.match(/^warning: chrony is enabled but skipped by a systemd Condition/m);
        expect(r.stderr).to.equal("");
        expect(has(h, "chrony", "enabled")).to.equal(true);
        expect(ok(h, "time-sync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY })).not.to.contain("drift");
    });

    it("a failing chrony (no Condition at fault) is an error with the journal", () => {
        const h = makeHost("el8", { hostname: "node1", installed: ["chrony"] });
        setUnit(h, "chronyd", "fail");
        const r = run(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain("host-topology: node1: unit chronyd failed to start");
        expect(r.stderr).to.contain("stub journal line 3 for chronyd");
    });

    it("a static unit (no [Install]) is not enabled again and again", () => {
        const h = makeHost("debian12", { installed: ["chrony"] });
        setUnit(h, "chrony", "static");
        ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        clearCalls(h);
        expectNoChange(ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY }), "debian12", "timesync");
        expect(mutations(h)).to.deep.equal([]);
        expect(ok(h, "time-sync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY })).not.to.contain("drift");
    });

    it("etcd never healthy: fails after HEALTH_TIMEOUT with the journal tail", () => {
        const h = makeHost("debian12", { hostname: "master" });
        fs.writeFileSync(`${h.state}/etcd-unhealthy`, "");
        const t0 = Date.now();
        const r = run(h, "etcd-member.sh", "apply", { ...ETCD, HEALTH_TIMEOUT: "2" });
        expect(Date.now() - t0).to.be.lessThan(8000);
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain("etcd member etcd1 not healthy at http://192.168.100.2:2379 after 2s");
        expect(r.stderr).to.contain("host-topology: master: unit etcd failed to start");
        expect(r.stderr).to.contain("stub journal line 1 for etcd");
    });

    it("registry not answering HTTP on /v2/: fails after HEALTH_TIMEOUT with the journal tail; nginx untouched", () => {
        const h = makeHost("ubuntu2204");
        const t0 = Date.now();
        const r = run(h, "private-registry.sh", "apply", registryParams({ REGISTRY_CONFIG: registryConfig(closedPort), HEALTH_TIMEOUT: "1" }));
        expect(Date.now() - t0).to.be.lessThan(8000);
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain(`docker-registry does not answer HTTP on http://127.0.0.1:${closedPort}/v2/ after 1s`);
        expect(r.stderr).to.contain("--- journalctl -u docker-registry (last 30 lines) ---");
        expect(exists(h, "/etc/nginx/conf.d/registry.conf")).to.equal(false);
    });

    it("registry health: probes GET /v2/ at the configured address (quotes understood); a 404 is not healthy", () => {
        const h = makeHost("debian12");
        const r = run(h, "private-registry.sh", "apply", registryParams({ REGISTRY_CONFIG: `http:\n  addr: "127.0.0.1:${registryPort}"\n`, HEALTH_TIMEOUT: "1" }));
        expect(r.code, r.stderr).to.equal(0);
        expect(r.stdout).to.contain(`healthy docker-registry http://127.0.0.1:${registryPort}/v2/`);
        const bad = makeHost("debian12");
        const r404 = run(bad, "private-registry.sh", "apply", registryParams({ REGISTRY_CONFIG: registryConfig(notFoundPort), HEALTH_TIMEOUT: "1" }));
        expect(r404.code).to.equal(1);
        expect(r404.stderr).to.contain(`does not answer HTTP on http://127.0.0.1:${notFoundPort}/v2/ after 1s`);
    });

    it("nginx -t failure: the previous site is put back (or removed if there was none) and the error shows nginx's message", () => {
        const first = makeHost("debian12");
        fs.writeFileSync(`${first.state}/nginx-bad`, "");
        const r1 = run(first, "private-registry.sh", "apply", registryParams());
        expect(r1.code).to.equal(1);
        expect(r1.stderr).to.contain('nginx rejected /etc/nginx/conf.d/registry.conf (previous version put back): nginx: [emerg] unknown directive "bad"');
        expect(exists(first, "/etc/nginx/conf.d/registry.conf")).to.equal(false);
        expect(mutations(first)).not.to.include("systemctl reload nginx");

        const h = makeHost("el9");
        ok(h, "private-registry.sh", "apply", registryParams());
        fs.writeFileSync(`${h.state}/nginx-bad`, "");
        clearCalls(h);
        const r = run(h, "private-registry.sh", "apply", registryParams({ NGINX_CONF: "server { bad; }\n" }));
        expect(r.code).to.equal(1);
        expect(read(h, "/etc/nginx/conf.d/registry.conf")).to.equal(NGINX_SITE);
        expect(mutations(h)).to.deep.equal([]);
        // fixed config: applied on the next run
        fs.rmSync(`${h.state}/nginx-bad`);
        ok(h, "private-registry.sh", "apply", registryParams({ NGINX_CONF: "server { good; }\n" }));
        expect(read(h, "/etc/nginx/conf.d/registry.conf")).to.equal("server { good; }\n");
        expect(mutations(h)).to.deep.equal(["systemctl reload nginx"]);
    });

    it("the htpasswd content is never printed (apply, check, drift, nginx failure, remove)", () => {
        const h = makeHost("debian12");
        let all = "";
        const collect = (r: Run) => (all += r.stdout + r.stderr);
        collect(run(h, "private-registry.sh", "apply", registryParams()));
        fs.writeFileSync(path.join(h.root, "/etc/nginx/.ngxpasswd"), "tampered\n");
        collect(run(h, "private-registry.sh", "check", registryParams()));
        expect(all).to.contain("drift /etc/nginx/.ngxpasswd content differs (a secret: not shown)");
        expect(all).not.to.contain("tampered");
        fs.writeFileSync(`${h.state}/nginx-bad`, "");
        collect(run(h, "private-registry.sh", "apply", registryParams({ NGINX_CONF: "x\n" })));
        collect(run(h, "private-registry.sh", "remove", registryParams()));
        expect(all).not.to.contain("S3cr3t");
        expect(all).not.to.contain("tampered");
    });

    it("EL with SELinux enforcing: httpd_can_network_connect turned on for the proxy, off again by remove", () => {
        const h = makeHost("el8");
        fs.writeFileSync(`${h.state}/selinux`, "");
        const out = ok(h, "private-registry.sh", "apply", registryParams());
        expect(out).to.contain("changed selinux:httpd_can_network_connect on");
        expect(mutations(h)).to.include("setsebool -P httpd_can_network_connect 1");
        clearCalls(h);
        expectNoChange(ok(h, "private-registry.sh", "apply", registryParams()), "el8", "registry");
        ok(h, "private-registry.sh", "remove", registryParams());
        expect(mutations(h)).to.include("setsebool -P httpd_can_network_connect 0");
        // already on before: left as it was
        const on = makeHost("el9");
        fs.writeFileSync(`${on.state}/selinux`, "");
        fs.writeFileSync(`${on.state}/sebool-on`, "");
        ok(on, "private-registry.sh", "apply", registryParams());
        ok(on, "private-registry.sh", "remove", registryParams());
        expect(calls(on)).not.to.contain("setsebool");
    });

    it("etcd: an existing data dir gets mode 0700 back; a parent that existed is not chowned", () => {
        const h = makeHost("el9");
        fs.mkdirSync(path.join(h.root, ETCD.DATA_DIR), { recursive: true, mode: 0o755 });
        fs.chmodSync(path.join(h.root, ETCD.DATA_DIR), 0o755);
        const out = ok(h, "etcd-member.sh", "apply", ETCD);
        expect(out).to.contain(`changed ${ETCD.DATA_DIR} mode 0700`);
        expect(mode(h, ETCD.DATA_DIR)).to.equal(0o700);
        expect(calls(h)).not.to.contain(`chown etcd: ${h.root}/var/lib/etcd\n`);
        const fresh = makeHost("el9");
        ok(fresh, "etcd-member.sh", "apply", ETCD);
        expect(calls(fresh)).to.contain(`chown etcd: ${fresh.root}/var/lib/etcd\n`);
    });

    it("etcd: a member whose data is gone while its peers run is removed, added again as a learner, joins as existing and is promoted", () => {
        const h = makeHost("debian12");
        const params = {
            ...ETCD,
            NAME: "etcd2",
            CLIENT_URL: "http://192.168.100.3:2379",
            PEER_URL: "http://etcd2:2380",
            PEER_CLIENT_URLS: "http://192.168.100.2:2379,http://192.168.100.4:2379",
        };
        const etcd1 = "8e9e05c52164694d, started, etcd1, http://etcd1:2380, http://192.168.100.2:2379, false";
        fs.writeFileSync(`${h.state}/etcd-members`, `${etcd1}\n91bc3c398fb3c146, started, etcd2, http://etcd2:2380, http://192.168.100.3:2379, false\n`);
        const out = ok(h, "etcd-member.sh", "apply", params);
        // against the started members other than itself only (etcd3 at .4 never ran)
        expect(calls(h)).to.match(/^etcdctl --endpoints=http:\/\/192\.168\.100\.2:2379 --command-timeout=10s member remove 91bc3c398fb3c146 /m);
        expect(calls(h)).to.match(/^etcdctl --endpoints=http:\/\/192\.168\.100\.2:2379 --command-timeout=10s member add etcd2 --peer-urls=http:\/\/etcd2:2380 --learner /m);
        const added = fs.readFileSync(`${h.state}/etcd-members`, "utf8").split("\n")[1];
        const id = added.split(", ")[0];
        expect(added).to.equal(`${id}, unstarted, , http://etcd2:2380, , false`);
        expect(read(h, ETCD_DROPIN)).to.equal(ETCD_DROPIN_CONTENT);
        expect(read(h, ETCD_JOIN_ENV)).to.equal(etcdJoinEnv("etcd2", "etcd1=http://etcd1:2380,etcd2=http://etcd2:2380", "existing"));
        expect(calls(h)).to.match(new RegExp(`^etcdctl --endpoints=http://192\\.168\\.100\\.2:2379 --command-timeout=10s member promote ${id} `, "m"));
        expect(out).to.contain("changed etcd member etcd2 removed (its data is gone)");
        expect(out).to.contain("changed etcd member etcd2 added to the running cluster as a learner");
        expect(out).to.contain("changed etcd member etcd2 promoted from learner");
        ok(h, "etcd-member.sh", "remove", params);
        expect(exists(h, ETCD_DROPIN) || exists(h, ETCD_JOIN_ENV)).to.equal(false);
        // listed but never started (added by an earlier run that failed before the start): started with the
        // initial cluster of the list, no remove/add; still a learner: promoted
        const fresh = makeHost("debian12");
        fs.writeFileSync(`${fresh.state}/etcd-members`, `${etcd1}\n91bc3c398fb3c146, unstarted, , http://etcd2:2380, , true\n`);
        const again = ok(fresh, "etcd-member.sh", "apply", params);
        expect(calls(fresh)).not.to.match(/member (remove|add) /);
        expect(again).to.contain("etcd member etcd2 is listed already (never started): starting it");
        expect(read(fresh, ETCD_JOIN_ENV)).to.equal(etcdJoinEnv("etcd2", "etcd1=http://etcd1:2380,etcd2=http://etcd2:2380", "existing"));
        expect(calls(fresh)).to.match(/ member promote 91bc3c398fb3c146 /);
        // nor is a founding member its peers list by name (static bootstrap) but that never ran: no client URLs
        const late = makeHost("debian12");
        fs.writeFileSync(`${late.state}/etcd-members`, `${etcd1}\n91bc3c398fb3c146, started, etcd2, http://etcd2:2380, , false\n`);
        ok(late, "etcd-member.sh", "apply", params);
        expect(calls(late)).not.to.match(/member (remove|add|promote) /);
        expect(read(late, ETCD_JOIN_ENV)).to.equal(etcdJoinEnv("etcd2", "etcd1=http://etcd1:2380,etcd2=http://etcd2:2380", "existing"));
        // a member with its data in place is never touched
        fs.mkdirSync(path.join(fresh.root, ETCD.DATA_DIR, "member"));
        fs.writeFileSync(`${fresh.state}/etcd-members`, `${etcd1}\n91bc3c398fb3c146, started, etcd2, http://etcd2:2380, http://192.168.100.3:2379, false\n`);
        clearCalls(fresh);
        ok(fresh, "etcd-member.sh", "apply", params);
        expect(calls(fresh)).not.to.match(/member (remove|add|promote) /);
    });

    it("etcd 3.5 (Debian 13): peers without a quorum time out on member list; a member other than the first cannot join: fails naming the first, nothing started, removed or added", () => {
        const h = makeHost("debian13");
        const peers = "http://192.168.100.2:2379,http://192.168.100.4:2379";
        const params = {
            ...ETCD,
            ETCD_ENV: `${ETCD.ETCD_ENV}ETCD_INITIAL_CLUSTER="etcd1=http://etcd1:2380,etcd2=http://etcd2:2380,etcd3=http://etcd3:2380"\n`,
            NAME: "etcd2",
            CLIENT_URL: "http://192.168.100.3:2379",
            PEER_URL: "http://etcd2:2380",
            PEER_CLIENT_URLS: peers,
        };
        fs.writeFileSync(`${h.state}/etcd-no-quorum`, peers);
        const r = run(h, "etcd-member.sh", "apply", params);
        expect(r.code).to.equal(1);
        expect(calls(h)).to.contain(`etcdctl --endpoints=${peers} --command-timeout=5s member list (ETCDCTL_API=3)`);
        expect(r.stderr).to.equal(
            `host-topology: lab-host: etcd member etcd2 has no data and none of the other members (${peers}) answers: it cannot join; the first member, etcd1, bootstraps a new cluster\n`,
        );
        expect(calls(h)).not.to.match(/member (remove|add) /);
        expect(exists(h, ETCD_DROPIN) || exists(h, ETCD_JOIN_ENV)).to.equal(false);
        expect(mutations(h).filter((l) => l.startsWith("systemctl"))).to.deep.equal([]);
        expect(r.stdout + r.stderr).not.to.contain("context deadline exceeded");
    });
});

// =====================================================================================================

describe("host scripts: drift check", function () {
    this.timeout(30000);

    it("reports drift per item, changes nothing, and apply repairs exactly that", () => {
        const h = makeHost("debian12");
        ok(h, "private-registry.sh", "apply", registryParams());
        expect(ok(h, "private-registry.sh", "check", registryParams())).not.to.contain("drift");
        fs.appendFileSync(path.join(h.root, "/etc/docker/registry/config.yml"), "# edited\n");
        fs.rmSync(`${h.state}/units/nginx.enabled`);
        fs.rmSync(`${h.state}/units/nginx.active`);
        clearCalls(h);
        const drift = ok(h, "private-registry.sh", "check", registryParams())
            .split("\n")
            .filter((l) => l.startsWith("drift"));
        expect(drift).to.deep.equal(["drift /etc/docker/registry/config.yml content differs:", "drift service:nginx disabled,inactive (want enabled,active)"]);
        expect(mutations(h)).to.deep.equal([]);
        clearCalls(h);
        const repair = ok(h, "private-registry.sh", "apply", registryParams());
        expect(repair).to.contain("changed /etc/docker/registry/config.yml");
        expect(repair).to.contain("unchanged /etc/nginx/conf.d/registry.conf");
        expect(mutations(h)).to.deep.equal(["systemctl restart docker-registry", "systemctl enable -q nginx", "systemctl start nginx"]);
        expect(ok(h, "private-registry.sh", "check", registryParams())).not.to.contain("drift");
    });

    it("firewall: a unit turned back on and an active ufw are drift", () => {
        const h = makeHost("ubuntu2204");
        setUnit(h, "ufw", "enabled", "active");
        ok(h, "firewall-off.sh", "apply", { UNITS: "firewalld ufw" });
        setUnit(h, "ufw", "enabled");
        fs.writeFileSync(`${h.state}/ufw-active`, "");
        const out = ok(h, "firewall-off.sh", "check", { UNITS: "firewalld ufw" });
        expect(out).to.contain("drift service:ufw enabled,inactive (want disabled,inactive)");
        expect(out).to.contain("drift ufw active");
    });

    it("firewall: an empty unit list is fine", () => {
        const h = makeHost("el7");
        expect(ok(h, "firewall-off.sh", "apply", { UNITS: "" })).to.equal("ok firewall family=el7\n");
        const bad = run(h, "firewall-off.sh", "apply", { UNITS: "firewalld ../../x" });
        expect(bad.code).to.equal(1);
        expect(bad.stderr).to.contain("bad unit name in UNITS: ../../x");
    });

    it("put_file: a mode change alone is a change; no temp file is left behind", () => {
        const h = makeHost("debian12");
        ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        fs.chmodSync(path.join(h.root, "/etc/chrony/chrony.conf"), 0o600);
        expect(ok(h, "time-sync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY })).to.equal("drift /etc/chrony/chrony.conf mode 600 (want 644)\nok timesync family=debian12\n");
        clearCalls(h);
        const out = ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        expect(out).to.contain("changed /etc/chrony/chrony.conf");
        expect(mode(h, "/etc/chrony/chrony.conf")).to.equal(0o644);
        expect(fs.readdirSync(path.join(h.root, "etc/chrony"))).to.deep.equal(["chrony.conf"]);
    });
});

describe("host scripts: drift shown (diffs, packages) and secret parameters kept apart", function () {
    this.timeout(30000);
    const registry = path.join(SCRIPTS_DIR, "private-registry.sh");
    const hashesOf = (script: string) => ({ SCRIPT_SHA256: sha256File(script), LIB_SHA256: libSha256(SCRIPTS_DIR) });
    const SECRET_HEADER = "# host-topology secret parameters, format 2";
    const FILE = "/var/lib/host-topology/secrets/master-registry";
    /** The registry's plain stdin (HTPASSWD apart) and its secrets' framing, as the program sends them. */
    const split = (htpasswd: string, digest = "d1") => {
        const { HTPASSWD: _, ...plain } = registryParams();
        return {
            plain: encodeParams({ ...hashesOf(registry), ...plain, SECRETS_FILE: FILE, SECRETS_DIGEST: digest }),
            secrets: encodeParams({ HTPASSWD: htpasswd, SECRETS_OF: digest }, SECRET_HEADER),
        };
    };

    it("a managed file's drift comes with the unified diff of the host's file against the wanted one", () => {
        const h = makeHost("debian12");
        ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        fs.writeFileSync(path.join(h.root, "/etc/chrony/chrony.conf"), CHRONY.replace("server 192.168.100.2 iburst", "server 10.0.0.9 iburst"));
        expect(ok(h, "time-sync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY })).to.equal(
            [
                "drift /etc/chrony/chrony.conf content differs:",
                "| --- /etc/chrony/chrony.conf (on the host)",
                "| +++ /etc/chrony/chrony.conf (wanted)",
                "| @@ -1,3 +1,3 @@",
                "|  # managed by host-topology",
                "| -server 10.0.0.9 iburst",
                "| +server 192.168.100.2 iburst",
                "|  makestep 1.0 3",
                "ok timesync family=debian12",
                "",
            ].join("\n"),
        );
        // A long diff is cut at 200 lines, saying how many more there were.
        fs.writeFileSync(path.join(h.root, "/etc/chrony/chrony.conf"), Array.from({ length: 300 }, (_, i) => `line ${i}\n`).join(""));
        const long = ok(h, "time-sync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY }).split("\n").filter((l) => l.startsWith("| "));
        expect(long.length).to.equal(201);
        expect(long[200]).to.equal("| ... 106 more lines");
    });

    it("a package removed by hand is drift: package:<name> missing", () => {
        const h = makeHost("debian12");
        ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        expect(ok(h, "time-sync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY })).not.to.contain("drift");
        fs.rmSync(`${h.state}/pkgs/chrony`);
        expect(ok(h, "time-sync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY })).to.equal("drift package:chrony missing\nok timesync family=debian12\n");
        clearCalls(h);
        expect(ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY })).to.contain("changed packages chrony");
        expect(ok(h, "time-sync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY })).not.to.contain("drift");
    });

    it("apply reads the secret parameters from the step's file; a missing or stale file is a clear error naming it", () => {
        const h = makeHost("debian12");
        const { plain, secrets } = split(HTPASSWD);
        const missing = runRaw(h, registry, "apply", plain);
        expect(missing.code).to.equal(1);
        expect(missing.stderr).to.contain(`its secret parameters are missing on the host (${FILE}): run pulumi up --refresh`);
        expect(mutations(h)).to.deep.equal([]);
        fs.mkdirSync(path.join(h.root, path.dirname(FILE)), { recursive: true });
        fs.writeFileSync(path.join(h.root, FILE), split(HTPASSWD, "an-older-digest").secrets);
        const stale = runRaw(h, registry, "apply", plain);
        expect(stale.code).to.equal(1);
        expect(stale.stderr).to.contain(`its secret parameters on the host (${FILE}) are not the ones this step applies`);
        fs.writeFileSync(path.join(h.root, FILE), secrets);
        const r = runRaw(h, registry, "apply", plain);
        expect(r.code, r.stderr).to.equal(0);
        expect(read(h, "/etc/nginx/.ngxpasswd")).to.equal(HTPASSWD);
        expect(r.stdout + r.stderr).not.to.contain(HTPASSWD.split(":")[1]);
        // remove needs no secret: without the file it warns and goes on.
        fs.rmSync(path.join(h.root, FILE));
        const rm = runRaw(h, registry, "remove", plain);
        expect(rm.code, rm.stderr).to.equal(0);
        expect(rm.stdout).to.contain(`warning: its secret parameters are missing on the host (${FILE})`);
        expect(exists(h, "/etc/nginx/.ngxpasswd")).to.equal(false);
    });

    it("the secrets on stdin after the plain ones (a drift check): the file is checked without showing it, and a repair puts it back 0600", () => {
        const h = makeHost("debian12");
        const { plain, secrets } = split(HTPASSWD);
        fs.mkdirSync(path.join(h.root, path.dirname(FILE)), { recursive: true });
        fs.writeFileSync(path.join(h.root, FILE), secrets, { mode: 0o600 }); // as the step's secrets command writes it
        expect(runRaw(h, registry, "apply", plain).code).to.equal(0);
        const check = () => runRaw(h, registry, "check", plain + secrets);
        expect(check().stdout).not.to.contain("drift");
        fs.rmSync(path.join(h.root, FILE));
        expect(check().stdout).to.contain(`drift ${FILE} missing`);
        fs.writeFileSync(path.join(h.root, FILE), "tampered\n");
        fs.writeFileSync(path.join(h.root, "/etc/nginx/.ngxpasswd"), "tampered too\n");
        const drift = check().stdout.split("\n").filter((l) => l.startsWith("drift") || l.startsWith("|"));
        expect(drift).to.deep.equal([
            "drift /etc/nginx/.ngxpasswd content differs (a secret: not shown)",
            `drift ${FILE} content differs (a secret: not shown)`,
        ]);
        const repair = runRaw(h, registry, "apply", plain + secrets);
        expect(repair.code, repair.stderr).to.equal(0);
        expect(read(h, FILE)).to.equal(secrets);
        expect((fs.statSync(path.join(h.root, FILE)).mode & 0o777).toString(8)).to.equal("600");
        expect(read(h, "/etc/nginx/.ngxpasswd")).to.equal(HTPASSWD);
        expect(check().stdout).not.to.contain("drift");
        // Secrets on stdin that are not the step's (another digest) are refused too.
        const wrong = runRaw(h, registry, "check", plain + split(HTPASSWD, "other").secrets);
        expect(wrong.code).to.equal(1);
        expect(wrong.stderr).to.contain("are not the ones this step applies");
    });
});

describe("host scripts: etcd membership (a fake cluster in the etcdctl stub)", function () {
    this.timeout(60000);
    // Members etcd1..etcd3 on 192.168.100.2..4, in the program's order (etcd1 bootstraps).
    const ids = ["", "8e9e05c52164694d", "91bc3c398fb3c146", "fd422379fda50e48"];
    const url = (i: number) => `http://192.168.100.${i + 1}:2379`;
    const started = (i: number) => `${ids[i]}, started, etcd${i}, http://etcd${i}:2380, ${url(i)}, false`;
    const env = (i: number, extra = "") =>
        `# Managed by Pulumi (host-topology). Local changes are overwritten on the next \`pulumi up\`.\nETCD_NAME="etcd${i}"\nETCD_DATA_DIR="/var/lib/etcd/etcd${i}.etcd"\n` +
        `ETCD_LISTEN_CLIENT_URLS="${url(i)}"\nETCD_INITIAL_ADVERTISE_PEER_URLS="http://etcd${i}:2380"\n` +
        `ETCD_INITIAL_CLUSTER="etcd1=http://etcd1:2380,etcd2=http://etcd2:2380,etcd3=http://etcd3:2380"\n${extra}`;
    const member = (i: number, extra: Record<string, string> = {}) => ({
        ETCD_ENV: env(i),
        NAME: `etcd${i}`,
        DATA_DIR: `/var/lib/etcd/etcd${i}.etcd`,
        CLIENT_URL: url(i),
        PEER_URL: `http://etcd${i}:2380`,
        PEER_CLIENT_URLS: [1, 2, 3].filter((j) => j !== i).map(url).join(","),
        HEALTH_TIMEOUT: "4",
        ...extra,
    });
    const cluster = (h: Host, ...members: string[]) => fs.writeFileSync(`${h.state}/etcd-members`, members.map((m) => `${m}\n`).join(""));
    const listed = (h: Host) => fs.readFileSync(`${h.state}/etcd-members`, "utf8");
    const down = (h: Host, ...urls: string[]) => fs.writeFileSync(`${h.state}/etcd-down`, urls.map((u) => `${u}\n`).join(""));
    const leader = (h: Host, id?: string) => (id === undefined ? fs.readFileSync(`${h.state}/etcd-leader`, "utf8").trim() : fs.writeFileSync(`${h.state}/etcd-leader`, `${id}\n`));
    /** etcd ran here: its data dir has a member dir. */
    const hasData = (h: Host, i: number) => fs.mkdirSync(path.join(h.root, `/var/lib/etcd/etcd${i}.etcd/member`), { recursive: true, mode: 0o700 });
    const ctl = (h: Host) => calls(h).split("\n").filter((l) => l.startsWith("etcdctl "));
    /** The calls that matter for the order of a membership change. */
    const steps = (h: Host) =>
        calls(h)
            .split("\n")
            .filter((l) => / (member (add|remove|promote)|move-leader) (?!--help)/.test(l) || /^systemctl (daemon-reload|restart|start|stop|disable)\b/.test(l));
    const api = " (ETCDCTL_API=3)";

    it("the first member, no other member answering: bootstraps a new cluster of its own (join env STATE new, drop-in); idempotent; remove as the last member", () => {
        const h = makeHost("debian12");
        down(h, url(2), url(3));
        const out = ok(h, "etcd-member.sh", "apply", member(1));
        expect(ctl(h)).to.include(`etcdctl --endpoints=${url(2)},${url(3)} --command-timeout=5s member list${api}`);
        expect(out).to.contain("etcd member etcd1 bootstraps a new cluster (the other members join it one at a time)");
        expect(read(h, ETCD_JOIN_ENV)).to.equal(etcdJoinEnv("etcd1", "etcd1=http://etcd1:2380", "new"));
        expect(read(h, ETCD_DROPIN)).to.equal(ETCD_DROPIN_CONTENT);
        expect(steps(h)).to.deep.equal(["systemctl daemon-reload", "systemctl restart --no-block etcd"]);
        expect(out).to.contain("healthy etcd1 http://192.168.100.2:2379");
        // etcd started and wrote its data: nothing to do next time
        hasData(h, 1);
        clearCalls(h);
        expectNoChange(ok(h, "etcd-member.sh", "apply", member(1)), "debian12", "etcd");
        expect(mutations(h)).to.deep.equal([]);
        clearCalls(h);
        const gone = ok(h, "etcd-member.sh", "remove", member(1));
        expect(gone).to.contain("etcd member etcd1 is the last member of its cluster: stopped with its data");
        expect(exists(h, ETCD_JOIN_ENV) || exists(h, ETCD_DROPIN)).to.equal(false);
        expect(exists(h, "/var/lib/etcd/etcd1.etcd/member")).to.equal(true);
        expect(calls(h)).not.to.contain("member remove");
    });

    it("a second member joins as a learner against the started members and is promoted once in sync (promote retried); join env from member add's output, STATE existing", () => {
        const h = makeHost("el9");
        cluster(h, started(1));
        down(h, url(3)); // etcd3 not there yet
        fs.writeFileSync(`${h.state}/etcd-promote-fails`, "3");
        const out = ok(h, "etcd-member.sh", "apply", member(2));
        const added = listed(h).split("\n")[1];
        const id = added.split(", ")[0];
        expect(listed(h)).to.equal(`${started(1)}\n${id}, unstarted, , http://etcd2:2380, , false\n`);
        expect(ctl(h)).to.include(`etcdctl member add --help${api}`);
        const promote = `etcdctl --endpoints=${url(1)} --command-timeout=10s member promote ${id}${api}`;
        expect(steps(h)).to.deep.equal([
            `etcdctl --endpoints=${url(1)} --command-timeout=10s member add etcd2 --peer-urls=http://etcd2:2380 --learner${api}`,
            "systemctl daemon-reload",
            "systemctl restart --no-block etcd",
            promote,
            promote,
            promote,
            promote,
        ]);
        expect(read(h, ETCD_JOIN_ENV)).to.equal(etcdJoinEnv("etcd2", "etcd1=http://etcd1:2380,etcd2=http://etcd2:2380", "existing"));
        expect(read(h, ETCD_DROPIN)).to.equal(ETCD_DROPIN_CONTENT);
        expect(out).to.contain("changed etcd member etcd2 added to the running cluster as a learner");
        expect(out).to.contain("changed etcd member etcd2 promoted from learner");
        expect(out).to.contain(`healthy etcd2 ${url(2)}`);
        // the health wait comes after the promotion
        const c = calls(h);
        expect(c.lastIndexOf(`--endpoints=${url(2)} --command-timeout=3s endpoint health`)).to.be.greaterThan(c.lastIndexOf(" member promote "));
    });

    it("a member add that etcd refuses for now (\"unhealthy cluster\" right after another change) is tried again", () => {
        const h = makeHost("debian12");
        cluster(h, started(1) + "\n" + started(2));
        fs.writeFileSync(`${h.state}/etcd-reconfig-refusals`, "2");
        const out = ok(h, "etcd-member.sh", "apply", member(3));
        expect(steps(h).filter((l) => l.includes(" member add etcd3 "))).to.have.length(3);
        expect(out).to.contain("changed etcd member etcd3 added to the running cluster as a learner");
        expect(out).to.not.contain("unhealthy cluster");
    });

    it("a learner an earlier run could not promote in time (it has data now) is promoted by the next apply", () => {
        const h = makeHost("debian12");
        cluster(h, started(1), started(3), `${ids[2]}, started, etcd2, http://etcd2:2380, ${url(2)}, true`);
        hasData(h, 2);
        setUnit(h, "etcd", "enabled", "active");
        const out = ok(h, "etcd-member.sh", "apply", member(2, { HEALTH_TIMEOUT: "2" }));
        expect(ctl(h)).to.include(`etcdctl --endpoints=${url(1)},${url(3)} --command-timeout=10s member promote ${ids[2]}${api}`);
        expect(out).to.contain("changed etcd member etcd2 promoted from learner");
        expect(listed(h)).to.contain(started(2));
        expect(calls(h)).not.to.match(/member (add|remove) /);
    });

    it("etcdctl before 3.4 (member add --help without --learner): a plain member add, no promote", () => {
        const h = makeHost("el7");
        cluster(h, started(1));
        fs.writeFileSync(`${h.state}/etcd-no-learner`, "");
        const out = ok(h, "etcd-member.sh", "apply", member(2));
        const id = listed(h).split("\n")[1].split(", ")[0];
        expect(listed(h)).to.equal(`${started(1)}\n${id}, unstarted, , http://etcd2:2380, , false\n`);
        expect(steps(h)).to.deep.equal([
            `etcdctl --endpoints=${url(1)} --command-timeout=10s member add etcd2 --peer-urls=http://etcd2:2380${api}`,
            "systemctl daemon-reload",
            "systemctl restart --no-block etcd",
        ]);
        expect(out).to.match(/^changed etcd member etcd2 added to the running cluster$/m);
        expect(read(h, ETCD_JOIN_ENV)).to.equal(etcdJoinEnv("etcd2", "etcd1=http://etcd1:2380,etcd2=http://etcd2:2380", "existing"));
    });

    it("a member with data: an ETCD_ENV change of ETCD_INITIAL_* lines only is written without a restart; any other line restarts", () => {
        const h = makeHost("debian12");
        cluster(h, started(1), started(2), started(3));
        hasData(h, 1);
        ok(h, "etcd-member.sh", "apply", member(1));
        clearCalls(h);
        const grown = member(1, { ETCD_ENV: env(1).replace("etcd3=http://etcd3:2380", "etcd3=http://etcd3:2380,etcd4=http://etcd4:2380") });
        const out = ok(h, "etcd-member.sh", "apply", grown);
        expect(out).to.contain("changed /etc/default/etcd");
        expect(out).to.contain("etcd member etcd1: only ETCD_INITIAL_* settings changed (read at a first start only): not restarted");
        expect(read(h, "/etc/default/etcd")).to.equal(grown.ETCD_ENV);
        expect(mutations(h)).to.deep.equal([]);
        clearCalls(h);
        ok(h, "etcd-member.sh", "apply", { ...grown, ETCD_ENV: grown.ETCD_ENV + 'ETCD_HEARTBEAT_INTERVAL="200"\n' });
        expect(mutations(h)).to.deep.equal(["systemctl restart --no-block etcd"]);
        // without data (no first start yet) the same kind of change restarts it
        const fresh = makeHost("debian12");
        ok(fresh, "etcd-member.sh", "apply", member(1, { PEER_CLIENT_URLS: "" }));
        clearCalls(fresh);
        ok(fresh, "etcd-member.sh", "apply", { ...grown, PEER_CLIENT_URLS: "" });
        expect(mutations(fresh)).to.deep.equal(["systemctl restart --no-block etcd"]);
    });

    it("a leader hands leadership to a started voting member (not a learner, not one that never ran) before its restart; a follower just restarts", () => {
        const h = makeHost("el9");
        const learner = `c0ffee0123456789, started, etcd4, http://etcd4:2380, http://192.168.100.5:2379, true`;
        const neverRan = `${ids[2]}, started, etcd2, http://etcd2:2380, , false`;
        cluster(h, started(1), learner, neverRan, started(3));
        leader(h, ids[1]);
        hasData(h, 1);
        ok(h, "etcd-member.sh", "apply", member(1)); // not running yet: started without a hand-over
        expect(calls(h)).not.to.contain("endpoint status");
        clearCalls(h);
        const out = ok(h, "etcd-member.sh", "apply", member(1, { ETCD_ENV: env(1, 'ETCD_HEARTBEAT_INTERVAL="200"\n') }));
        expect(ctl(h)).to.include(`etcdctl --endpoints=${url(1)} --command-timeout=3s endpoint status${api}`);
        expect(steps(h)).to.deep.equal([`etcdctl --endpoints=${url(1)} --command-timeout=10s move-leader ${ids[3]}${api}`, "systemctl restart --no-block etcd"]);
        expect(out).to.contain(`etcd member etcd1 handed leadership to ${ids[3]} before restarting`);
        expect(leader(h)).to.equal(ids[3]);
        clearCalls(h);
        ok(h, "etcd-member.sh", "apply", member(1));
        expect(steps(h)).to.deep.equal(["systemctl restart --no-block etcd"]);
    });

    it("remove from a 3-member cluster: the others' health checked, leadership handed over, member remove of its own id against the others, stopped, data dir kept as *.removed-*", () => {
        const h = makeHost("debian12");
        cluster(h, started(1), started(2), started(3));
        leader(h, ids[1]);
        hasData(h, 1);
        ok(h, "etcd-member.sh", "apply", member(1));
        fs.writeFileSync(path.join(h.root, "/var/lib/etcd/etcd1.etcd/member/db"), "data");
        clearCalls(h);
        const out = ok(h, "etcd-member.sh", "remove", member(1));
        const others = `${url(2)},${url(3)}`;
        const health = (e: string) => `etcdctl --endpoints=${e} --command-timeout=5s endpoint health${api}`;
        const c = ctl(h);
        expect(c.indexOf(health(url(2)))).to.be.at.least(0);
        expect(c.indexOf(health(url(3)))).to.be.at.least(0);
        expect(steps(h)).to.deep.equal([
            `etcdctl --endpoints=${url(1)} --command-timeout=10s move-leader ${ids[2]}${api}`,
            `etcdctl --endpoints=${others} --command-timeout=10s member remove ${ids[1]}${api}`,
            "systemctl disable --now -q etcd",
        ]);
        expect(c.indexOf(health(url(3)))).to.be.lessThan(c.findIndex((l) => l.includes(" move-leader ")));
        // the others healthy again before it stops
        expect(c).to.include(`etcdctl --endpoints=${others} --command-timeout=3s endpoint health${api}`);
        expect(listed(h)).to.equal(`${started(2)}\n${started(3)}\n`);
        const kept = fs.readdirSync(path.join(h.root, "var/lib/etcd"));
        expect(kept).to.have.length(1);
        expect(kept[0]).to.match(/^etcd1\.etcd\.removed-\d{14}$/);
        expect(read(h, `/var/lib/etcd/${kept[0]}/member/db`)).to.equal("data");
        expect(has(h, "etcd", "active") || has(h, "etcd", "enabled")).to.equal(false);
        expect(out).to.contain("changed etcd member etcd1 removed from the cluster");
        expect(out).to.contain("kept /var/lib/etcd/etcd1.etcd as etcd1.etcd.removed-* (the member left the cluster)");
        expect(read(h, "/etc/default/etcd")).to.equal(pkgDefault("etcd-server", "/etc/default/etcd"));
    });

    it("remove is refused while another member is unhealthy: exit 1 naming it, nothing stopped, removed or moved", () => {
        const h = makeHost("ubuntu2404");
        cluster(h, started(1), started(2), started(3));
        hasData(h, 1);
        ok(h, "etcd-member.sh", "apply", member(1));
        down(h, url(3));
        clearCalls(h);
        const r = run(h, "etcd-member.sh", "remove", member(1));
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain(`etcd member etcd1 stays: member at ${url(3)} is not healthy, and the cluster would lose its quorum without etcd1`);
        expect(steps(h)).to.deep.equal([]);
        expect(has(h, "etcd", "active") && has(h, "etcd", "enabled")).to.equal(true);
        expect(listed(h)).to.equal(`${started(1)}\n${started(2)}\n${started(3)}\n`);
        expect(exists(h, "/var/lib/etcd/etcd1.etcd/member")).to.equal(true);
        expect(read(h, "/etc/default/etcd")).to.equal(env(1));
    });

    it("remove of the last member: no member remove, stopped with its data in place; a member not running just stops", () => {
        const h = makeHost("debian13");
        cluster(h, started(1));
        hasData(h, 1);
        ok(h, "etcd-member.sh", "apply", member(1));
        clearCalls(h);
        const out = ok(h, "etcd-member.sh", "remove", member(1));
        expect(out).to.contain("etcd member etcd1 is the last member of its cluster: stopped with its data");
        expect(steps(h)).to.deep.equal(["systemctl disable --now -q etcd"]);
        expect(exists(h, "/var/lib/etcd/etcd1.etcd/member")).to.equal(true);
        expect(listed(h)).to.equal(`${started(1)}\n`);
        // not running: not taken out of any cluster
        const off = makeHost("debian13");
        cluster(off, started(1), started(2), started(3));
        hasData(off, 1);
        ok(off, "etcd-member.sh", "apply", member(1));
        fs.rmSync(`${off.state}/units/etcd.active`);
        clearCalls(off);
        expect(ok(off, "etcd-member.sh", "remove", member(1))).to.contain("etcd member etcd1 is not running: not removed from any cluster");
        expect(ctl(off)).to.deep.equal([]);
        expect(exists(off, "/var/lib/etcd/etcd1.etcd/member")).to.equal(true);
        expect(has(off, "etcd", "enabled")).to.equal(false);
    });

    it("a host running a member another step applied under another name (managed env file, data, active): apply refuses, nothing changed; the same step's name edited by hand is repaired", () => {
        const h = makeHost("debian12");
        hasData(h, 1);
        ok(h, "etcd-member.sh", "apply", member(1, { PEER_CLIENT_URLS: "", OWNER: "host-topology/dev/master-etcd1" }));
        // a hand edit of the name: drift of the same step, repaired
        fs.writeFileSync(path.join(h.root, "/etc/default/etcd"), env(1).replace('ETCD_NAME="etcd1"', 'ETCD_NAME="edited"'));
        ok(h, "etcd-member.sh", "apply", member(1, { PEER_CLIENT_URLS: "", OWNER: "host-topology/dev/master-etcd1" }));
        expect(read(h, "/etc/default/etcd")).to.equal(env(1));
        clearCalls(h);
        const r = run(h, "etcd-member.sh", "apply", member(2, { PEER_CLIENT_URLS: "", OWNER: "host-topology/dev/master-etcd2" }));
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain(
            "this host runs etcd member etcd1 (data in /var/lib/etcd/etcd1.etcd), not etcd2: renaming a member is not supported; set its name in etcdMembers (name: etcd1) to keep it",
        );
        expect(read(h, "/etc/default/etcd")).to.equal(env(1));
        expect(mutations(h)).to.deep.equal([]);
        expect(exists(h, "/var/lib/etcd/etcd2.etcd")).to.equal(false);
    });

    it("OWNER: apply records it; a remove by another step (a renamed one) leaves everything as it is; the recorded owner's remove works; without OWNER as before", () => {
        const h = makeHost("debian12");
        const [a, b] = ["dev/host-topology/etcd-old", "dev/host-topology/etcd-new"];
        const owners = "/var/lib/host-topology/owners/etcd";
        ok(h, "etcd-member.sh", "apply", { ...ETCD, OWNER: a });
        expect(read(h, owners)).to.equal(a);
        // the renamed step applies first (it owns the host's etcd now), the old one is deleted at the end
        ok(h, "etcd-member.sh", "apply", { ...ETCD, OWNER: b });
        expect(read(h, owners)).to.equal(b);
        clearCalls(h);
        const out = ok(h, "etcd-member.sh", "remove", { ...ETCD, OWNER: a });
        expect(out).to.equal(`left alone: etcd on lab-host was applied by ${b}, not by this step (${a}): nothing removed\nok etcd family=debian12\n`);
        expect(ctl(h)).to.deep.equal([]);
        expect(mutations(h)).to.deep.equal([]);
        expect(read(h, "/etc/default/etcd")).to.equal(ETCD.ETCD_ENV);
        expect(read(h, owners)).to.equal(b);
        expect(has(h, "etcd", "active") && has(h, "etcd", "enabled")).to.equal(true);
        ok(h, "etcd-member.sh", "remove", { ...ETCD, OWNER: b });
        expect(read(h, "/etc/default/etcd")).to.equal(pkgDefault("etcd-server", "/etc/default/etcd"));
        expect(has(h, "etcd", "active") || has(h, "etcd", "enabled")).to.equal(false);
        expect(exists(h, owners)).to.equal(false);
        // a step applied before owners were recorded: no record; its remove proceeds whatever is recorded
        const old = makeHost("debian12");
        ok(old, "etcd-member.sh", "apply", ETCD);
        expect(exists(old, owners)).to.equal(false);
        ok(old, "etcd-member.sh", "apply", { ...ETCD, OWNER: b });
        ok(old, "etcd-member.sh", "remove", ETCD);
        expect(has(old, "etcd", "active") || has(old, "etcd", "enabled")).to.equal(false);
        expect(exists(old, owners)).to.equal(false);
    });
});

describe("host scripts: etcd TLS (etcdTls)", function () {
    this.timeout(30000);
    const TLS = {
        ...ETCD,
        CLIENT_URL: "https://192.168.100.2:2379",
        PKI_DIR: "/etc/etcd/pki",
        TLS_CA: "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
        TLS_CERT: "-----BEGIN CERTIFICATE-----\nmember\n-----END CERTIFICATE-----\n",
        TLS_KEY: "-----BEGIN EC PRIVATE KEY-----\nmember-key-material\n-----END EC PRIVATE KEY-----\n",
        TLS_CLIENT_CERT: "-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n",
        TLS_CLIENT_KEY: "-----BEGIN EC PRIVATE KEY-----\nclient-key-material\n-----END EC PRIVATE KEY-----\n",
    };

    for (const family of ["el7", "debian12", "debian13"]) {
        it(`${family}: writes the TLS files (member key for the etcd group only), etcdctl shows the client certificate; idempotent; never prints a key`, () => {
            const h = makeHost(family);
            const out = ok(h, "etcd-member.sh", "apply", TLS);
            const pki = (f: string) => `/etc/etcd/pki/${f}`;
            expect(read(h, pki("ca.crt"))).to.equal(TLS.TLS_CA);
            expect(read(h, pki("member.crt"))).to.equal(TLS.TLS_CERT);
            expect(read(h, pki("member.key"))).to.equal(TLS.TLS_KEY);
            expect(read(h, pki("client.key"))).to.equal(TLS.TLS_CLIENT_KEY);
            expect(mode(h, pki("ca.crt"))).to.equal(0o644);
            expect(mode(h, pki("member.key"))).to.equal(0o640);
            expect(mode(h, pki("client.key"))).to.equal(0o600);
            // The etcd group exists only after the package is installed: the key is still given to it.
            expect(calls(h)).to.contain(`chown root:etcd ${h.root}/etc/etcd/pki/member.key`);
            const tlsArgs = `--cacert=${h.root}/etc/etcd/pki/ca.crt --cert=${h.root}/etc/etcd/pki/client.crt --key=${h.root}/etc/etcd/pki/client.key`;
            expect(calls(h)).to.contain(`etcdctl ${tlsArgs} --endpoints=https://192.168.100.2:2379 --command-timeout=3s endpoint health`);
            expect(mutations(h).filter((l) => l.startsWith("systemctl"))).to.deep.equal(["systemctl enable -q etcd", "systemctl restart --no-block etcd"]);
            for (const text of [out, calls(h)]) {
                expect(text).not.to.contain("member-key-material");
                expect(text).not.to.contain("client-key-material");
            }
            expect(ok(h, "etcd-member.sh", "check", TLS)).not.to.contain("drift");

            clearCalls(h);
            expectNoChange(ok(h, "etcd-member.sh", "apply", TLS), family, "etcd");
            expect(mutations(h)).to.deep.equal([]);
        });
    }

    it("a new certificate restarts etcd; a tampered key is drift; turning TLS off removes the files; remove keeps data", () => {
        const h = makeHost("debian12");
        ok(h, "etcd-member.sh", "apply", TLS);
        clearCalls(h);
        const renewed = ok(h, "etcd-member.sh", "apply", { ...TLS, TLS_CERT: TLS.TLS_CERT.replace("member", "member-renewed") });
        expect(renewed).to.contain("changed /etc/etcd/pki/member.crt");
        expect(mutations(h)).to.deep.equal(["systemctl restart --no-block etcd"]);

        fs.writeFileSync(path.join(h.root, "/etc/etcd/pki/member.key"), "tampered\n");
        const drift = ok(h, "etcd-member.sh", "check", TLS).split("\n").filter((l) => l.startsWith("drift"));
        expect(drift).to.deep.equal(["drift /etc/etcd/pki/member.crt content differs:", "drift /etc/etcd/pki/member.key content differs (a secret: not shown)"]);

        const plain = Object.fromEntries(Object.entries(TLS).filter(([k]) => !k.startsWith("TLS_") && k !== "PKI_DIR"));
        const off = ok(h, "etcd-member.sh", "apply", { ...plain, CLIENT_URL: "http://192.168.100.2:2379" });
        expect(off).to.contain("removed /etc/etcd/pki/member.key");
        expect(exists(h, "/etc/etcd/pki")).to.equal(false);
        expect(ok(h, "etcd-member.sh", "check", { ...plain, CLIENT_URL: "http://192.168.100.2:2379" })).not.to.contain("drift");

        ok(h, "etcd-member.sh", "apply", TLS);
        fs.writeFileSync(path.join(h.root, ETCD.DATA_DIR, "db"), "data");
        ok(h, "etcd-member.sh", "remove", TLS);
        expect(exists(h, "/etc/etcd/pki")).to.equal(false);
        expect(read(h, `${ETCD.DATA_DIR}/db`)).to.equal("data");
    });
});

describe("host scripts: registry TLS (registryTls)", function () {
    this.timeout(30000);
    const CA = "-----BEGIN CERTIFICATE-----\nregistry-ca\n-----END CERTIFICATE-----\n";
    const TLS = { TLS_CERT: "-----BEGIN CERTIFICATE-----\nnginx\n-----END CERTIFICATE-----\n", TLS_KEY: "-----BEGIN EC PRIVATE KEY-----\nnginx-key-material\n-----END EC PRIVATE KEY-----\n" };

    for (const [family, anchor, update] of [
        ["debian12", "/usr/local/share/ca-certificates/host-topology-registry.crt", "update-ca-certificates"],
        ["debian13", "/usr/local/share/ca-certificates/host-topology-registry.crt", "update-ca-certificates"],
        ["el9", "/etc/pki/ca-trust/source/anchors/host-topology-registry.crt", "update-ca-trust extract"],
    ]) {
        it(`${family}: hostbase trusts the CA (${anchor}), rebuilds the trust store only on a change, and removes it`, () => {
            const h = makeHost(family);
            ok(h, "host-base.sh", "apply", { ...HOSTBASE, TRUSTED_CA: CA });
            expect(read(h, anchor)).to.equal(CA);
            expect(mode(h, anchor)).to.equal(0o644);
            expect(calls(h).split("\n").filter((l) => l.startsWith("update-ca"))).to.deep.equal([update]);
            expect(ok(h, "host-base.sh", "check", { ...HOSTBASE, TRUSTED_CA: CA })).not.to.contain("drift");
            clearCalls(h);
            expectNoChange(ok(h, "host-base.sh", "apply", { ...HOSTBASE, TRUSTED_CA: CA }), family, "hostbase");
            expect(calls(h)).not.to.contain("update-ca");
            fs.writeFileSync(path.join(h.root, anchor), "tampered\n");
            expect(ok(h, "host-base.sh", "check", { ...HOSTBASE, TRUSTED_CA: CA })).to.contain(`drift ${anchor} content differs`);
            // registryTls turned off: the anchor goes, the store is rebuilt
            clearCalls(h);
            expect(ok(h, "host-base.sh", "apply", HOSTBASE)).to.contain(`removed ${anchor}`);
            expect(exists(h, anchor)).to.equal(false);
            expect(calls(h).split("\n").filter((l) => l.startsWith("update-ca"))).to.deep.equal([update]);
            ok(h, "host-base.sh", "apply", { ...HOSTBASE, TRUSTED_CA: CA });
            ok(h, "host-base.sh", "remove", { ...HOSTBASE, TRUSTED_CA: CA });
            expect(exists(h, anchor)).to.equal(false);
        });
    }

    it("registry: nginx's certificate and key written (key 0600), nginx reloaded on a change, key never printed; off removes them", () => {
        const h = makeHost("debian12");
        const out = ok(h, "private-registry.sh", "apply", registryParams(TLS));
        expect(read(h, "/etc/nginx/tls/registry.crt")).to.equal(TLS.TLS_CERT);
        expect(read(h, "/etc/nginx/tls/registry.key")).to.equal(TLS.TLS_KEY);
        expect(mode(h, "/etc/nginx/tls/registry.key")).to.equal(0o600);
        expect(out + calls(h)).not.to.contain("nginx-key-material");
        expect(ok(h, "private-registry.sh", "check", registryParams(TLS))).not.to.contain("drift");
        clearCalls(h);
        expectNoChange(ok(h, "private-registry.sh", "apply", registryParams(TLS)), "debian12", "registry");
        clearCalls(h);
        const renewed = ok(h, "private-registry.sh", "apply", registryParams({ ...TLS, TLS_CERT: TLS.TLS_CERT.replace("nginx", "nginx-renewed") }));
        expect(renewed).to.contain("changed /etc/nginx/tls/registry.crt");
        expect(mutations(h)).to.deep.equal(["systemctl reload nginx"]);
        fs.rmSync(path.join(h.root, "/etc/nginx/tls/registry.key"));
        expect(ok(h, "private-registry.sh", "check", registryParams(TLS))).to.contain("drift /etc/nginx/tls/registry.key missing");
        ok(h, "private-registry.sh", "apply", registryParams());
        expect(exists(h, "/etc/nginx/tls")).to.equal(false);
        ok(h, "private-registry.sh", "apply", registryParams(TLS));
        ok(h, "private-registry.sh", "remove", registryParams(TLS));
        expect(exists(h, "/etc/nginx/tls")).to.equal(false);
    });
});

describe("host scripts: install-packages.sh (a host's packages in one transaction, before its steps)", function () {
    this.timeout(30000);
    const SETS = { PACKAGES: "chrony registry etcd" };
    for (const family of ["debian12", "debian13", "el9"]) {
        it(`${family}: every set's packages in one install and no service change; the steps then install nothing; check finds a package removed`, () => {
            const h = makeHost(family);
            const f = FAMILIES[family];
            const want = [f.chrony.pkg, f.registry.pkg, "nginx", ...f.etcd.pkgs];
            const out = ok(h, "install-packages.sh", "apply", SETS);
            for (const p of want) expect(installed(h, p), p).to.equal(true);
            expect(mutations(h).length, "one install, nothing else").to.equal(1);
            expect(mutations(h)[0]).to.match(/\binstall\b/);
            expect(out).to.contain(`changed packages ${want.join(" ")}\n`);
            clearCalls(h);
            expectNoChange(ok(h, "install-packages.sh", "apply", SETS), family, "packages");
            expect(mutations(h)).to.deep.equal([]);
            // The steps find their packages in place: no install of their own.
            ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
            ok(h, "etcd-member.sh", "apply", ETCD);
            expect(mutations(h).filter((m) => /\binstall\b/.test(m))).to.deep.equal([]);
            expect(ok(h, "install-packages.sh", "check", SETS)).not.to.contain("drift");
            fs.rmSync(`${h.state}/pkgs/nginx`);
            expect(ok(h, "install-packages.sh", "check", SETS)).to.contain("drift package:nginx missing");
        });
    }

    it("apt: its lists refresh and install read Acquire::Languages none from APT_CONFIG (no Translation files), a file removed afterwards; the steps' apt runs do not", () => {
        const h = makeHost("debian12");
        ok(h, "install-packages.sh", "apply", { PACKAGES: "chrony" });
        const lines = calls(h).split("\n");
        const configs = lines.filter((l) => l.startsWith("apt-get APT_CONFIG "));
        const runs = lines.filter((l) => /^apt-get -o .* (update|install)\b/.test(l));
        expect(runs.map((l) => l.split(" ").find((w) => w === "update" || w === "install"))).to.deep.equal(["update", "install"]);
        for (const run of runs) expect(lines[lines.indexOf(run) + 1], `${run}: its configuration`).to.match(/^apt-get APT_CONFIG \/\S+\/host-topology-apt\.\w+: Acquire::Languages "none"; $/);
        for (const c of configs) expect(fs.existsSync(c.split(" ")[2].replace(/:$/, "")), "removed after the run").to.equal(false);
        // A step installing for itself (here ntp, which install-packages.sh did not install) uses the host's configuration.
        clearCalls(h);
        ok(h, "time-sync.sh", "apply", { IMPL: "ntp", CONFIG: "server 192.0.2.1 iburst\n" });
        expect(calls(h)).to.match(/^apt-get -o .* install -y --no-install-recommends ntpsec$/m);
        expect(calls(h)).not.to.contain("APT_CONFIG");
        // A caller's own APT_CONFIG is left as it is.
        clearCalls(h);
        const own = path.join(h.root, "own-apt.conf");
        fs.writeFileSync(own, 'Acquire::Languages "en";\n');
        fs.rmSync(`${h.state}/pkgs/chrony`);
        ok(h, "install-packages.sh", "apply", { PACKAGES: "chrony" }, { env: { APT_CONFIG: own } });
        expect(calls(h)).to.contain(`apt-get APT_CONFIG ${own}: Acquire::Languages "en"; `);
        expect(fs.existsSync(own)).to.equal(true);
    });

    it("apt: a dpkg run interrupted earlier (its journal left behind) is finished with dpkg --configure -a, no service started, then the install", () => {
        const h = makeHost("debian12");
        fs.mkdirSync(path.join(h.root, "var/lib/dpkg/updates"), { recursive: true });
        fs.writeFileSync(path.join(h.root, "var/lib/dpkg/updates/0001"), "");
        // The step alone (as before install-packages.sh) is stuck: apt refuses while the journal is there.
        expect(run(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY }).stderr).to.contain("dpkg was interrupted");
        clearCalls(h);
        const out = ok(h, "install-packages.sh", "apply", { PACKAGES: "chrony" });
        expect(out).to.match(/^finishing an interrupted dpkg run \(dpkg --configure -a\)\nchanged packages: an interrupted dpkg run finished\n/m);
        expect(calls(h).split("\n").filter((l) => l.startsWith("dpkg "))).to.deep.equal(["dpkg --force-confdef --force-confold --configure -a"]);
        expect(installed(h, "chrony")).to.equal(true);
        expect(exists(h, "/usr/sbin/policy-rc.d"), "policy-rc.d removed").to.equal(false);
        clearCalls(h);
        expect(ok(h, "install-packages.sh", "apply", { PACKAGES: "chrony" })).not.to.contain("dpkg");
    });

    it("ntp where there is none (EL9) is left to TimeSync's own error; an unknown set is an error naming it, nothing installed", () => {
        const h = makeHost("el9");
        ok(h, "install-packages.sh", "apply", { PACKAGES: "ntp" });
        expect(mutations(h)).to.deep.equal([]);
        const r = run(h, "install-packages.sh", "apply", { PACKAGES: "chrony postgres" });
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain("unknown package set postgres (known: chrony, ntp, registry, etcd)");
        expect(mutations(h)).to.deep.equal([]);
        const d = makeHost("debian12");
        ok(d, "install-packages.sh", "apply", { PACKAGES: "ntp" });
        expect(installed(d, "ntpsec")).to.equal(true);
    });
});
