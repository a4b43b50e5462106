// The host scripts (host/*.sh) on every OS family, run for real by bash under a temp root
// (HOST_TOPOLOGY_ROOT) with stateful stubs first on PATH (tests/fixtures/scripts/stubs: systemctl, apt-get, yum, dnf,
// dpkg-query, rpm, etcdctl, nginx, ...). The stubs keep installed packages, unit files and enabled/active
// units in a state dir, so the scripts get consistent answers, and log every call.
// Parameters are encoded here independently of the program, from the protocol (lib.sh's read_records).
// Shared by the per-script test files of tests/unit/host/ (one per host/<kebab-name>.sh, protocol.test.ts for the library).
import { expect } from "chai";
import * as cp from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";

export const SCRIPTS_DIR = path.resolve(import.meta.dirname, "../../../host");
export const FIXTURES = path.resolve(import.meta.dirname, "../../fixtures/scripts");
export const LIB = ["checks.sh", "files.sh", "os.sh", "packages.sh", "params.sh", "services.sh", "step.sh"].map((f) => `lib/${f}`);
export const SCRIPTS = ["host-base.sh", "time-sync.sh", "firewall-off.sh", "private-registry.sh", "etcd-member.sh", ...LIB];
/** Copies the scripts and their library into dir, as HostScripts lays them out on a host. */
export function copyScripts(dir: string): void {
    fs.mkdirSync(path.join(dir, "lib"), { recursive: true });
    for (const s of SCRIPTS) fs.copyFileSync(path.join(SCRIPTS_DIR, s), path.join(dir, s));
}
/** The library's one digest, from the protocol: sha256 of its files (sorted by name) one after another. */
export function libSha256(dir: string): string {
    const h = crypto.createHash("sha256");
    for (const f of LIB) h.update(fs.readFileSync(path.join(dir, f)));
    return h.digest("hex");
}

// ---- the per-family table, written from the documented protocol (not read from lib/os.sh) ----

export interface Svc {
    pkg: string;
    svc: string;
    conf: string;
}
export interface Family {
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

export const EL_REGISTRY = { pkg: "docker-distribution", svc: "docker-distribution", conf: "/etc/docker-distribution/registry/config.yml" };
export const APT_REGISTRY = {
    pkg: "docker-registry",
    svc: "docker-registry",
    conf: "/etc/docker/registry/config.yml",
    user: "docker-registry",
};
export const EL_ETCD = { pkgs: ["etcd"], svc: "etcd", conf: "/etc/etcd/etcd.conf" };
export const APT_ETCD = { pkgs: ["etcd-server", "etcd-client"], svc: "etcd", conf: "/etc/default/etcd" };
export const EL_CHRONY = { pkg: "chrony", svc: "chronyd", conf: "/etc/chrony.conf" };
export const APT_CHRONY = { pkg: "chrony", svc: "chrony", conf: "/etc/chrony/chrony.conf" };
export const NTPSEC = { pkg: "ntpsec", svc: "ntpsec", conf: "/etc/ntpsec/ntp.conf" };
export const EL_FIREWALL = {
    units: "firewalld iptables ip6tables",
    present: { firewalld: "enabled", iptables: "disabled" } as const,
    ufw: false,
};

export const FAMILIES: Record<string, Family> = {
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
    el8: {
        osRelease: 'NAME="Rocky Linux"\nID="rocky"\nVERSION_ID="8.9"\n',
        pm: "dnf",
        chrony: EL_CHRONY,
        registry: EL_REGISTRY,
        etcd: EL_ETCD,
        nginxGroup: "nginx",
        firewall: EL_FIREWALL,
    },
    el9: {
        osRelease: 'NAME="AlmaLinux"\nID="almalinux"\nVERSION_ID="9.3"\n',
        pm: "dnf",
        chrony: EL_CHRONY,
        registry: EL_REGISTRY,
        etcd: EL_ETCD,
        nginxGroup: "nginx",
        firewall: EL_FIREWALL,
    },
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

export const PARAMS_HEADER = "# host-topology parameters, format 2";

/**
 * The protocol's framing, written apart from the program's encoder (which picks EOF, EOF1, ...): the header, then
 * `KEY=value` for a value without a newline, else `KEY<<DELIM [-n]`, its lines, DELIM; here DELIM is random.
 */
export function encodeParams(params: Record<string, string>, header = PARAMS_HEADER): string {
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
export function encodeBase64Params(params: Record<string, string>): string {
    return (
        Object.entries(params)
            .map(([k, v]) => `${k}=${Buffer.from(v, "utf8").toString("base64")}`)
            .join("\n") + "\n"
    );
}

/** The check output without the `| ` detail lines (the diffs). */
export const withoutDetail = (out: string) =>
    out
        .split("\n")
        .filter((l) => !l.startsWith("| "))
        .join("\n");

export const sha256File = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

// ---- a fake host ----

export interface Host {
    family: string;
    dir: string;
    root: string;
    state: string;
    env: NodeJS.ProcessEnv;
}

export interface HostOptions {
    hostname?: string;
    /** packages already installed (with what they ship) */
    installed?: string[];
}

function lines(entries: [string, string][]): string {
    return entries.map(([k, v]) => `${k}=${v}\n`).join("");
}

const tempDirs: string[] = [];

export function makeHost(family: string, opts: HostOptions = {}): Host {
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
        fs.writeFileSync(path.join(bin, name), `#!/usr/bin/env bash\n. '${FIXTURES}/stub-lib.sh'\n. '${FIXTURES}/stubs/${name}'\n`, {
            mode: 0o755,
        });
    }
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith("HOSTINFRA_") || k === "APT_LOCK_TIMEOUT" || k === "SERVICE_WAIT") delete env[k];
    // No sbin on PATH: a real ufw, getsebool, ... of the test machine must never answer.
    Object.assign(env, {
        PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`,
        HOST_TOPOLOGY_ROOT: root,
        STUB_STATE: state,
        SERVICE_WAIT: "3",
        LC_ALL: "C",
    });
    const h = { family, dir, root, state, env };
    for (const p of opts.installed ?? []) stubInstall(h, p);
    return h;
}

/** Installs a package on the fake host the way the package manager stubs do. */
export function stubInstall(h: Host, pkg: string): void {
    const r = cp.spawnSync("bash", ["-c", `. '${FIXTURES}/stub-lib.sh' && install_pkg "$1"`, "x", pkg], { env: h.env, encoding: "utf8" });
    expect(r.status, r.stderr).to.equal(0);
}

export function setUnit(h: Host, unit: string, ...flags: ("enabled" | "active" | "static" | "fail" | "skip")[]): void {
    fs.writeFileSync(`${h.state}/units/${unit}`, "");
    for (const f of flags) fs.writeFileSync(`${h.state}/units/${unit}.${f}`, "");
}

export interface Run {
    code: number;
    stdout: string;
    stderr: string;
}

export function runRaw(h: Host, scriptPath: string, action: string, stdin: string, env: Record<string, string> = {}): Run {
    const r = cp.spawnSync("bash", [scriptPath, action], { input: stdin, env: { ...h.env, ...env }, encoding: "utf8", timeout: 30000 });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a script with the protocol's parameters (the hashes of the script and its library added unless given). */
export function run(
    h: Host,
    script: string,
    action: string,
    params: Record<string, string>,
    opts: { dir?: string; env?: Record<string, string> } = {},
): Run {
    const dir = opts.dir ?? SCRIPTS_DIR;
    const all = { SCRIPT_SHA256: sha256File(path.join(dir, script)), LIB_SHA256: libSha256(dir), ...params };
    return runRaw(h, path.join(dir, script), action, encodeParams(all), opts.env);
}

export function ok(
    h: Host,
    script: string,
    action: string,
    params: Record<string, string>,
    opts: { dir?: string; env?: Record<string, string> } = {},
): string {
    const r = run(h, script, action, params, opts);
    expect(r.code, `${script} ${action} on ${h.family} exited ${r.code}:\n${r.stdout}\n${r.stderr}`).to.equal(0);
    return r.stdout;
}

export const calls = (h: Host) => fs.readFileSync(`${h.state}/calls.log`, "utf8");
export const clearCalls = (h: Host) => fs.writeFileSync(`${h.state}/calls.log`, "");
export const read = (h: Host, p: string) => fs.readFileSync(path.join(h.root, p), "utf8");
export const exists = (h: Host, p: string) => fs.existsSync(path.join(h.root, p));
export const mode = (h: Host, p: string) => fs.statSync(path.join(h.root, p)).mode & 0o777;
export const has = (h: Host, unit: string, what: "enabled" | "active") => fs.existsSync(`${h.state}/units/${unit}.${what}`);
export const installed = (h: Host, pkg: string) => fs.existsSync(`${h.state}/pkgs/${pkg}`);
export const pkgDefault = (pkg: string, p: string) => `# ${pkg} default ${p}\n`;

/** Calls that change the host: package installs and service state changes, in order. */
export function mutations(h: Host): string[] {
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
export function expectNoChange(out: string, family: string, script: string): void {
    const body = out.trimEnd().split("\n");
    expect(body[body.length - 1]).to.equal(`ok ${script} family=${family}`);
    for (const l of body.slice(0, -1)) expect(l, out).to.match(/^(unchanged|absent|healthy|member) /);
}

// ---- a stand-in for the registry's HTTP API on an ephemeral port ----

export let registryPort = 0; // answers 200 on /v2/ only
export let notFoundPort = 0; // answers 404 to everything
export let closedPort = 0; // nothing listens
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

// Root hooks, registered once: this module is evaluated once, when the first test file imports it.
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

export const registryConfig = (port: number) =>
    `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: 127.0.0.1:${port}\n`;
export const NGINX_SITE =
    "server {\n    listen 80;\n    server_name registry.danran.com;\n    location / { proxy_pass http://127.0.0.1:5000; }\n}\n";
export const HTPASSWD = "registry:$2y$10$S3cr3tBcryptHashThatMustNeverBePrinted0123456789abcdefgh\n";
export const registryParams = (extra: Record<string, string> = {}) => ({
    REGISTRY_CONFIG: registryConfig(registryPort),
    NGINX_CONF: NGINX_SITE,
    HTPASSWD,
    STORAGE_DIR: "/var/lib/registry",
    HEALTH_TIMEOUT: "5",
    ...extra,
});
export const CHRONY = "# managed by host-topology\nserver 192.168.100.2 iburst\nmakestep 1.0 3\n";
export const ETCD = {
    ETCD_ENV: 'ETCD_NAME="etcd1"\nETCD_DATA_DIR="/var/lib/etcd/etcd1.etcd"\n',
    NAME: "etcd1",
    DATA_DIR: "/var/lib/etcd/etcd1.etcd",
    CLIENT_URL: "http://192.168.100.2:2379",
    HEALTH_TIMEOUT: "4",
};
export const ETCD_JOIN_ENV = "/var/lib/host-topology/etcd-join.env";
export const ETCD_DROPIN = "/etc/systemd/system/etcd.service.d/host-topology-join.conf";
export const ETCD_DROPIN_CONTENT = "[Service]\nEnvironmentFile=/var/lib/host-topology/etcd-join.env\n";
/** The settings of a member's first start that etcd-member.sh writes (read through the drop-in). */
export const etcdJoinEnv = (name: string, cluster: string, state: "new" | "existing") =>
    `# host-topology: how etcd member ${name} first started (read by etcd only with an empty data dir)\nETCD_INITIAL_CLUSTER="${cluster}"\nETCD_INITIAL_CLUSTER_STATE="${state}"\n`;
export const BLOCK = "192.168.100.2 master.danran.com master etcd1 registry registry.danran.com\n192.168.100.3 node1.danran.com node1\n";
export const HOSTBASE = { HOSTNAME: "master", FQDN: "master.danran.com", HOSTS_BLOCK: BLOCK };
export const BEGIN = "# BEGIN host-topology managed block (pulumi)\n";
export const END = "# END host-topology managed block\n";
