// The host scripts for every OS family, with stub package managers, systemctl and friends first on PATH
// and every path under a temp root (HOSTINFRA_ROOT). The stubs keep state (installed packages, unit files,
// enabled/active units) so the scripts see consistent answers, and log every call.
import { expect } from "chai";
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { encodeParams, scriptSha256, SCRIPTS_DIR } from "../components/hostScript";

const FAMILIES: Record<string, { osRelease: string; pm: "apt" | "yum" | "dnf" }> = {
    debian12: { osRelease: 'ID=debian\nVERSION_ID="12"\n', pm: "apt" },
    ubuntu2204: { osRelease: 'ID=ubuntu\nVERSION_ID="22.04"\n', pm: "apt" },
    ubuntu2404: { osRelease: 'ID=ubuntu\nVERSION_ID="24.04"\n', pm: "apt" },
    el7: { osRelease: 'ID="centos"\nVERSION_ID="7"\n', pm: "yum" },
    el8: { osRelease: 'ID="rocky"\nVERSION_ID="8.9"\n', pm: "dnf" },
    el9: { osRelease: 'ID="almalinux"\nVERSION_ID="9.3"\n', pm: "dnf" },
};

// Units each package brings (what the real packages ship).
const PACKAGE_UNITS: Record<string, string> = {
    chrony: "chrony chronyd",
    ntpsec: "ntpsec",
    ntp: "ntp ntpd",
    nginx: "nginx",
    "docker-registry": "docker-registry",
    "docker-distribution": "docker-distribution",
    "etcd-server": "etcd",
    etcd: "etcd",
};

const STUBS: Record<string, string> = {
    systemctl: `
log systemctl "$@"
args=(); for a in "$@"; do case "$a" in -q|--quiet|--no-block|--no-pager|--value) ;; -p) ;; *) args+=("$a");; esac; done
cmd=\${args[0]}; u=\${args[-1]}; u=\${u%.service}
exists() { [ -e "$S/units/$u" ]; }
case "$cmd" in
  cat) exists ;;
  is-enabled) if ! exists; then exit 1; elif [ -e "$S/units/$u.enabled" ]; then echo enabled; else echo disabled; exit 1; fi ;;
  is-active) if [ -e "$S/units/$u.active" ]; then echo active; else echo inactive; exit 3; fi ;;
  enable) exists || exit 1; touch "$S/units/$u.enabled"; [[ " $* " == *" --now "* ]] && touch "$S/units/$u.active"; true ;;
  disable) rm -f "$S/units/$u.enabled"; [[ " $* " == *" --now "* ]] && rm -f "$S/units/$u.active"; true ;;
  start|restart|reload) exists || exit 5; [ -e "$S/units/$u.fail" ] && exit 1; [ -e "$S/units/$u.skip" ] || touch "$S/units/$u.active" ;;
  stop) rm -f "$S/units/$u.active" ;;
  show) if [ -e "$S/units/$u.skip" ]; then echo no; else echo yes; fi ;;
  status) echo "x $u.service - stub"; echo "   Active: failed" ;;
esac`,
    "dpkg-query": `log dpkg-query "$@"; p=\${!#}; [ -e "$S/pkgs/$p" ] && echo "install ok installed"`,
    rpm: `log rpm "$@"; [ -e "$S/pkgs/\${!#}" ]`,
    "apt-get": `log apt-get "$@"; [[ " $* " == *" install "* ]] && [ -x "$HOSTINFRA_ROOT/usr/sbin/policy-rc.d" ] && log "policy-rc.d: $(tail -1 "$HOSTINFRA_ROOT/usr/sbin/policy-rc.d")"; [[ " $* " == *" install "* ]] && [ -e "$S/apt-fail-once" ] && { rm -f "$S/apt-fail-once"; exit 100; }; install_pkgs "$@"`,
    yum: `log yum "$@"; install_pkgs "$@"`,
    dnf: `log dnf "$@"; install_pkgs "$@"`,
    hostnamectl: `log hostnamectl "$@"; echo "$2" > "$S/hostname"`,
    hostname: `if [ $# -gt 0 ]; then log hostname "$@"; echo "$1" > "$S/hostname"; else cat "$S/hostname"; fi`,
    journalctl: `log journalctl "$@"; echo "stub journal: $2 exited with status 1"`,
    etcdctl: `log etcdctl "$@"; [ ! -e "$S/etcd-unhealthy" ] || exit 1; [[ " $* " == *" member list"* ]] && [ -e "$S/etcd-members" ] && cat "$S/etcd-members"; true`,
    nginx: `log nginx "$@"; [ ! -e "$S/nginx-bad" ] || { echo "nginx: [emerg] bad directive"; exit 1; }`,
    getent: `exit 2`,
    chown: `log chown "$@"`,
    sleep: `:`,
};

const PRELUDE = `#!/usr/bin/env bash
S="$STUB_STATE"
log() { printf '%s\\n' "$*" >> "$S/calls.log"; }
install_pkgs() {
  local a on=0
  for a in "$@"; do
    if [ "$a" = install ]; then on=1; continue; fi
    [ $on = 1 ] && [[ $a != -* ]] || continue
    touch "$S/pkgs/$a"
    for u in $(grep "^$a=" "$S/package-units" | cut -d= -f2); do touch "$S/units/$u"; done
  done
}
`;

interface Host {
    root: string;
    state: string;
    env: NodeJS.ProcessEnv;
}

function makeHost(family: string): Host {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `host-${family}-`));
    const root = path.join(dir, "root");
    const state = path.join(dir, "state");
    const bin = path.join(dir, "bin");
    for (const d of [root, `${root}/etc`, state, `${state}/pkgs`, `${state}/units`, bin]) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(`${root}/etc/os-release`, FAMILIES[family].osRelease);
    fs.writeFileSync(`${state}/hostname`, "lab-host\n");
    fs.writeFileSync(`${state}/calls.log`, "");
    fs.writeFileSync(`${state}/package-units`, Object.entries(PACKAGE_UNITS).map(([p, u]) => u.split(" ").map((x) => `${p}=${x}`).join("\n")).join("\n") + "\n");
    for (const [name, body] of Object.entries(STUBS)) fs.writeFileSync(path.join(bin, name), PRELUDE + body + "\n", { mode: 0o755 });
    return {
        root,
        state,
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, HOSTINFRA_ROOT: root, STUB_STATE: state, HOSTINFRA_SKIP_HTTP_WAIT: "1", SERVICE_WAIT: "2" },
    };
}

interface Run {
    code: number;
    stdout: string;
    stderr: string;
}

function run(h: Host, script: string, action: string, params: Record<string, string>, extra: Record<string, string> = {}): Run {
    const stdin = encodeParams({ ...params, SCRIPT_SHA256: scriptSha256(script), LIB_SHA256: scriptSha256("lib.sh"), ...extra });
    const r = cp.spawnSync("bash", [path.join(SCRIPTS_DIR, script), action], { input: stdin, env: h.env, encoding: "utf8" });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function ok(h: Host, script: string, action: string, params: Record<string, string>): string {
    const r = run(h, script, action, params);
    expect(r.code, `${script} ${action} failed:\n${r.stdout}\n${r.stderr}`).to.equal(0);
    return r.stdout;
}

const calls = (h: Host) => fs.readFileSync(`${h.state}/calls.log`, "utf8");
const clearCalls = (h: Host) => fs.writeFileSync(`${h.state}/calls.log`, "");
const read = (h: Host, p: string) => fs.readFileSync(path.join(h.root, p), "utf8");
const exists = (h: Host, p: string) => fs.existsSync(path.join(h.root, p));
const unit = (h: Host, u: string, what: "enabled" | "active") => fs.existsSync(`${h.state}/units/${u}.${what}`);

const TABLE: Record<string, { chrony: [string, string]; registry: [string, string]; etcd: [string[], string]; nginxGroup: string; ntp?: [string, string, string] }> = {
    debian12: { chrony: ["chrony", "/etc/chrony/chrony.conf"], registry: ["docker-registry", "/etc/docker/registry/config.yml"], etcd: [["etcd-server", "etcd-client"], "/etc/default/etcd"], nginxGroup: "www-data", ntp: ["ntpsec", "ntpsec", "/etc/ntpsec/ntp.conf"] },
    ubuntu2204: { chrony: ["chrony", "/etc/chrony/chrony.conf"], registry: ["docker-registry", "/etc/docker/registry/config.yml"], etcd: [["etcd-server", "etcd-client"], "/etc/default/etcd"], nginxGroup: "www-data", ntp: ["ntp", "ntp", "/etc/ntp.conf"] },
    ubuntu2404: { chrony: ["chrony", "/etc/chrony/chrony.conf"], registry: ["docker-registry", "/etc/docker/registry/config.yml"], etcd: [["etcd-server", "etcd-client"], "/etc/default/etcd"], nginxGroup: "www-data", ntp: ["ntpsec", "ntpsec", "/etc/ntpsec/ntp.conf"] },
    el7: { chrony: ["chronyd", "/etc/chrony.conf"], registry: ["docker-distribution", "/etc/docker-distribution/registry/config.yml"], etcd: [["etcd"], "/etc/etcd/etcd.conf"], nginxGroup: "nginx", ntp: ["ntp", "ntpd", "/etc/ntp.conf"] },
    el8: { chrony: ["chronyd", "/etc/chrony.conf"], registry: ["docker-distribution", "/etc/docker-distribution/registry/config.yml"], etcd: [["etcd"], "/etc/etcd/etcd.conf"], nginxGroup: "nginx" },
    el9: { chrony: ["chronyd", "/etc/chrony.conf"], registry: ["docker-distribution", "/etc/docker-distribution/registry/config.yml"], etcd: [["etcd"], "/etc/etcd/etcd.conf"], nginxGroup: "nginx" },
};

const CHRONY = "# managed\nserver 192.168.100.2 iburst\n";
const REGISTRY = { REGISTRY_CONFIG: "version: 0.1\nhttp:\n  addr: 127.0.0.1:5000\n", NGINX_CONF: "server { listen 80; }\n", HTPASSWD: "registry:$2a$10$hash\n", STORAGE_DIR: "/var/lib/registry" };
const ETCD = { ETCD_ENV: 'ETCD_NAME="etcd1"\n', NAME: "etcd1", DATA_DIR: "/var/lib/etcd/etcd1.etcd", CLIENT_URL: "http://192.168.100.2:2379", HEALTH_TIMEOUT: "4" };

describe("host scripts on every OS family (stubbed package manager and systemd)", function () {
    this.timeout(30000);
    for (const [family, t] of Object.entries(TABLE)) {
        describe(family, () => {
            const pm = FAMILIES[family].pm === "apt" ? "apt-get" : FAMILIES[family].pm;

            it("timesync: installs chrony with the family's manager, writes its config path, enables it; a second apply changes nothing", () => {
                const h = makeHost(family);
                const out = ok(h, "timesync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
                expect(out).to.contain(`ok timesync apply family=${family}`);
                expect(calls(h)).to.match(new RegExp(`^${pm} .*install .*chrony`, "m"));
                expect(read(h, t.chrony[1])).to.equal(CHRONY);
                expect(unit(h, t.chrony[0], "enabled") && unit(h, t.chrony[0], "active")).to.equal(true);
                clearCalls(h);
                const again = ok(h, "timesync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
                expect(again).not.to.match(/^changed/m);
                expect(calls(h)).not.to.match(/install|restart|^systemctl (start|enable)/m);
                clearCalls(h);
                ok(h, "timesync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY + "makestep 1 3\n" });
                expect(calls(h)).to.match(new RegExp(`^systemctl restart ${t.chrony[0]}$`, "m"));
            });

            it("timesync: ntp where the family has it, a clear refusal where not", () => {
                const h = makeHost(family);
                const r = run(h, "timesync.sh", "apply", { IMPL: "ntp", CONFIG: "server pool.ntp.org iburst\n" });
                if (t.ntp) {
                    expect(r.code, r.stderr).to.equal(0);
                    expect(calls(h)).to.match(new RegExp(`install .*\\b${t.ntp[0]}\\b`));
                    expect(read(h, t.ntp[2])).to.equal("server pool.ntp.org iburst\n");
                    expect(unit(h, t.ntp[1], "enabled")).to.equal(true);
                } else {
                    expect(r.code).to.not.equal(0);
                    expect(r.stderr).to.match(/ntp is not available on EL[89]; use chrony/);
                    expect(calls(h)).not.to.match(/install/);
                }
            });

            it("registry: the family's package, config path and nginx group; nginx -t before reload", () => {
                const h = makeHost(family);
                ok(h, "registry.sh", "apply", REGISTRY);
                expect(calls(h)).to.match(new RegExp(`^${pm} .*install .*${t.registry[0]}.*nginx`, "m"));
                expect(read(h, t.registry[1])).to.equal(REGISTRY.REGISTRY_CONFIG);
                expect(read(h, "/etc/nginx/conf.d/registry.conf")).to.equal(REGISTRY.NGINX_CONF);
                expect(read(h, "/etc/nginx/.ngxpasswd")).to.equal(REGISTRY.HTPASSWD);
                expect(fs.statSync(path.join(h.root, "/etc/nginx/.ngxpasswd")).mode & 0o777).to.equal(0o640);
                expect(calls(h)).to.contain(`chown root:${t.nginxGroup}`);
                expect(calls(h)).to.match(/^nginx -t$/m);
                expect(unit(h, t.registry[0], "active") && unit(h, "nginx", "active")).to.equal(true);
                expect(exists(h, "/var/lib/registry")).to.equal(true);
            });

            it("etcd: the family's packages and config path, started without blocking, waits for health", () => {
                const h = makeHost(family);
                const out = ok(h, "etcd.sh", "apply", ETCD);
                for (const p of t.etcd[0]) expect(calls(h)).to.match(new RegExp(`install .*\\b${p}\\b`));
                expect(read(h, t.etcd[1])).to.equal(ETCD.ETCD_ENV);
                expect(calls(h)).to.match(/^systemctl restart --no-block etcd$/m);
                expect(calls(h)).to.match(/^etcdctl --endpoints=http:\/\/192\.168\.100\.2:2379 .*endpoint health$/m);
                expect(out).to.contain("healthy etcd1 http://192.168.100.2:2379");
                expect(fs.statSync(path.join(h.root, ETCD.DATA_DIR)).mode & 0o777).to.equal(0o700);
            });
        });
    }
});

describe("host scripts: behaviour (Debian 12)", function () {
    this.timeout(30000);

    it("hostbase: sets the hostname, keeps localhost lines, disables conflicting lines, replaces its block", () => {
        const h = makeHost("debian12");
        fs.writeFileSync(path.join(h.root, "etc/hosts"), "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n127.0.1.1\tnode1\n10.0.0.9 other.example\n");
        const block = "192.168.100.2 master.danran.com master etcd1\n192.168.100.3 node1.danran.com node1\n";
        ok(h, "hostbase.sh", "apply", { HOSTNAME: "node1", FQDN: "node1.danran.com", HOSTS_BLOCK: block });
        expect(fs.readFileSync(`${h.state}/hostname`, "utf8").trim()).to.equal("node1");
        const hosts = read(h, "/etc/hosts");
        expect(hosts).to.equal(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n#host-topology-disabled# 127.0.1.1\tnode1\n10.0.0.9 other.example\n" +
                "# BEGIN host-topology managed block (pulumi)\n" + block + "# END host-topology managed block\n",
        );
        // A changed block replaces the old one instead of adding a second.
        const block2 = block + "192.168.100.4 node2.danran.com node2\n";
        ok(h, "hostbase.sh", "apply", { HOSTNAME: "node1", FQDN: "node1.danran.com", HOSTS_BLOCK: block2 });
        expect(read(h, "/etc/hosts").match(/BEGIN host-topology/g)?.length).to.equal(1);
        expect(read(h, "/etc/hosts")).to.contain(block2);
        expect(ok(h, "hostbase.sh", "check", { HOSTNAME: "node1", FQDN: "node1.danran.com", HOSTS_BLOCK: block2 })).not.to.contain("drift");
        ok(h, "hostbase.sh", "remove", { HOSTNAME: "node1", FQDN: "node1.danran.com", HOSTS_BLOCK: block2 });
        expect(read(h, "/etc/hosts")).to.equal("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n127.0.1.1\tnode1\n10.0.0.9 other.example\n");
    });

    it("check reports drift per item and apply repairs exactly that", () => {
        const h = makeHost("debian12");
        ok(h, "registry.sh", "apply", REGISTRY);
        expect(ok(h, "registry.sh", "check", REGISTRY)).not.to.contain("drift");
        fs.appendFileSync(path.join(h.root, "/etc/docker/registry/config.yml"), "# edited\n");
        fs.rmSync(`${h.state}/units/nginx.enabled`);
        fs.rmSync(`${h.state}/units/nginx.active`);
        const drift = ok(h, "registry.sh", "check", REGISTRY).split("\n").filter((l) => l.startsWith("drift"));
        expect(drift).to.deep.equal([
            "drift /etc/docker/registry/config.yml content differs",
            "drift service:nginx disabled,inactive (want enabled,active)",
        ]);
        clearCalls(h);
        const repair = ok(h, "registry.sh", "apply", REGISTRY);
        expect(repair).to.contain("changed /etc/docker/registry/config.yml");
        expect(repair).to.contain("unchanged /etc/nginx/conf.d/registry.conf");
        expect(calls(h)).to.match(/^systemctl restart docker-registry$/m);
        expect(ok(h, "registry.sh", "check", REGISTRY)).not.to.contain("drift");
    });

    it("remove restores the originals, removes what it added and keeps data dirs", () => {
        const h = makeHost("debian12");
        fs.mkdirSync(path.join(h.root, "etc/default"), { recursive: true });
        fs.writeFileSync(path.join(h.root, "etc/default/etcd"), "# package default\n");
        ok(h, "etcd.sh", "apply", ETCD);
        fs.writeFileSync(path.join(h.root, ETCD.DATA_DIR, "db"), "data");
        ok(h, "etcd.sh", "remove", ETCD);
        expect(read(h, "/etc/default/etcd")).to.equal("# package default\n");
        expect(read(h, `${ETCD.DATA_DIR}/db`)).to.equal("data");
        expect(unit(h, "etcd", "enabled") || unit(h, "etcd", "active")).to.equal(false);

        ok(h, "registry.sh", "apply", REGISTRY);
        fs.writeFileSync(path.join(h.root, "/var/lib/registry/blob"), "layer");
        ok(h, "registry.sh", "remove", REGISTRY);
        expect(exists(h, "/etc/nginx/conf.d/registry.conf") || exists(h, "/etc/nginx/.ngxpasswd")).to.equal(false);
        expect(exists(h, "/etc/docker/registry/config.yml")).to.equal(false);
        expect(read(h, "/var/lib/registry/blob")).to.equal("layer");
    });

    it("firewall: missing units are fine, enabled ones are turned off and back on by remove", () => {
        const h = makeHost("debian12");
        for (const f of ["ufw", "ufw.enabled", "ufw.active"]) fs.writeFileSync(`${h.state}/units/${f}`, "");
        const out = ok(h, "firewall.sh", "apply", { UNITS: "firewalld iptables ufw" });
        expect(out).to.contain("absent service:firewalld");
        expect(out).to.contain("changed service:ufw disabled,stopped");
        expect(unit(h, "ufw", "enabled") || unit(h, "ufw", "active")).to.equal(false);
        expect(ok(h, "firewall.sh", "check", { UNITS: "firewalld iptables ufw" })).not.to.contain("drift");
        ok(h, "firewall.sh", "remove", { UNITS: "firewalld iptables ufw" });
        expect(unit(h, "ufw", "enabled") && unit(h, "ufw", "active")).to.equal(true);
    });

    it("a service that fails to start: the error names the host and unit and shows the journal", () => {
        const h = makeHost("debian12");
        fs.writeFileSync(`${h.state}/hostname`, "master\n");
        fs.writeFileSync(`${h.state}/pkgs/chrony`, "");
        fs.writeFileSync(`${h.state}/units/chrony`, "");
        fs.writeFileSync(`${h.state}/units/chrony.fail`, "");
        const r = run(h, "timesync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain("host-topology: master: unit chrony failed to start");
        expect(r.stderr).to.contain("--- journalctl -u chrony (last 30 lines) ---\nstub journal: chrony exited with status 1");
    });

    it("etcd that never gets healthy fails after the bounded wait with the journal tail", () => {
        const h = makeHost("debian12");
        fs.writeFileSync(`${h.state}/etcd-unhealthy`, "");
        const r = run(h, "etcd.sh", "apply", { ...ETCD, HEALTH_TIMEOUT: "2" });
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain("etcd member etcd1 not healthy at http://192.168.100.2:2379 after 2s");
        expect(r.stderr).to.contain("stub journal: etcd");
    });

    it("etcd: a member whose data is gone while its peers run is removed, added again and joins as existing", () => {
        const h = makeHost("debian12");
        const params = { ...ETCD, NAME: "etcd2", PEER_URL: "http://etcd2:2380", PEER_CLIENT_URLS: "http://192.168.100.2:2379,http://192.168.100.4:2379" };
        fs.writeFileSync(`${h.state}/etcd-members`, "8e9e05c52164694d, started, etcd1, http://etcd1:2380, http://192.168.100.2:2379, false\n91bc3c398fb3c146, started, etcd2, http://etcd2:2380, http://192.168.100.3:2379, false\n");
        const out = ok(h, "etcd.sh", "apply", params);
        expect(calls(h)).to.match(/^etcdctl --endpoints=http:\/\/192\.168\.100\.2:2379,http:\/\/192\.168\.100\.4:2379 --command-timeout=5s member remove 91bc3c398fb3c146$/m);
        expect(calls(h)).to.match(/member add etcd2 --peer-urls=http:\/\/etcd2:2380$/m);
        expect(read(h, "/etc/systemd/system/etcd.service.d/host-topology-join.conf")).to.equal("[Service]\nEnvironment=ETCD_INITIAL_CLUSTER_STATE=existing\n");
        expect(out).to.contain("changed etcd member etcd2 added to the running cluster");
        // A member listed as unstarted belongs to a new cluster still bootstrapping: no remove/add.
        const fresh = makeHost("debian12");
        fs.writeFileSync(`${fresh.state}/etcd-members`, "91bc3c398fb3c146, unstarted, , http://etcd2:2380, , false\n");
        ok(fresh, "etcd.sh", "apply", params);
        expect(calls(fresh)).not.to.match(/member (remove|add)/);
        // A member with its data dir in place is never touched.
        fs.mkdirSync(path.join(h.root, ETCD.DATA_DIR, "member"));
        clearCalls(h);
        ok(h, "etcd.sh", "apply", params);
        expect(calls(h)).not.to.match(/member (remove|add)/);
    });

    it("chrony skipped by its systemd Condition (a container) is a warning, not a failure", () => {
        const h = makeHost("debian12");
        fs.writeFileSync(`${h.state}/pkgs/chrony`, "");
        fs.writeFileSync(`${h.state}/units/chrony`, "");
        fs.writeFileSync(`${h.state}/units/chrony.skip`, "");
        const out = ok(h, "timesync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        expect(out).to.match(/^warning: chrony is enabled but skipped by a systemd Condition/m);
        expect(ok(h, "timesync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY })).not.to.contain("drift");
    });

    it("nginx -t failure puts the previous site back and fails", () => {
        const h = makeHost("debian12");
        ok(h, "registry.sh", "apply", REGISTRY);
        fs.writeFileSync(`${h.state}/nginx-bad`, "");
        const r = run(h, "registry.sh", "apply", { ...REGISTRY, NGINX_CONF: "server { bad; }\n" });
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain("nginx rejected /etc/nginx/conf.d/registry.conf (previous version put back): nginx: [emerg] bad directive");
        expect(read(h, "/etc/nginx/conf.d/registry.conf")).to.equal(REGISTRY.NGINX_CONF);
    });

    it("apt: waits for the dpkg lock (DPkg::Lock::Timeout) and retries once after an update", () => {
        const h = makeHost("debian12");
        fs.writeFileSync(`${h.state}/apt-fail-once`, "");
        ok(h, "timesync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        const apt = calls(h).split("\n").filter((l) => l.startsWith("apt-get"));
        expect(apt[0]).to.contain("-o DPkg::Lock::Timeout=600");
        expect(apt.filter((l) => / install /.test(l)).length).to.equal(2);
        expect(apt.some((l) => / update$/.test(l))).to.equal(true);
        // No service starts with package defaults during installation; the policy is gone afterwards.
        expect(calls(h).match(/^policy-rc\.d: exit 101$/gm)?.length).to.equal(2);
        expect(exists(h, "/usr/sbin/policy-rc.d")).to.equal(false);
    });

    it("rejects a script that differs from the program's (exit 3), a missing parameter, an unsupported OS", () => {
        const h = makeHost("debian12");
        const bad = run(h, "timesync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY }, { SCRIPT_SHA256: "0".repeat(64) });
        expect(bad.code).to.equal(3);
        expect(bad.stderr).to.match(/timesync\.sh on lab-host differs from the program's version \(expected 0{64}, found [0-9a-f]{64}\)/);
        expect(run(h, "timesync.sh", "remove", { IMPL: "chrony", CONFIG: CHRONY }, { SCRIPT_SHA256: "0".repeat(64) }).code).to.equal(0);
        const missing = run(h, "timesync.sh", "apply", { IMPL: "chrony" });
        expect(missing.code).to.equal(1);
        expect(missing.stderr).to.contain("missing parameter CONFIG");
        fs.writeFileSync(path.join(h.root, "etc/os-release"), 'ID=arch\nVERSION_ID="rolling"\n');
        const arch = run(h, "timesync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        expect(arch.stderr).to.contain("unsupported OS arch rolling");
        expect(calls(h)).not.to.match(/install/);
    });

    it("keeps file contents byte for byte, trailing newlines included", () => {
        const h = makeHost("debian12");
        ok(h, "timesync.sh", "apply", { IMPL: "chrony", CONFIG: "a\n\n\n" });
        expect(read(h, "/etc/chrony/chrony.conf")).to.equal("a\n\n\n");
    });
});
