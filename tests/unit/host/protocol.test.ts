// What the host scripts share (host/lib/*.sh): the parameters' framing and integrity, OS detection, packages and
// their lists' freshness, services, drift output and secret parameters.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { encodeParams as programEncodeParams } from "../../../components/step.ts";
import type { Host } from "./support.ts";
import {
    SCRIPTS_DIR,
    libSha256,
    EL_REGISTRY,
    FAMILIES,
    PARAMS_HEADER,
    encodeParams,
    encodeBase64Params,
    sha256File,
    makeHost,
    stubInstall,
    setUnit,
    runRaw,
    run,
    ok,
    calls,
    clearCalls,
    read,
    exists,
    mode,
    has,
    installed,
    pkgDefault,
    mutations,
    expectNoChange,
    HTPASSWD,
    registryParams,
    CHRONY,
    ETCD,
    HOSTBASE,
} from "./support.ts";

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
        [
            "record syntax inside",
            "IMPL=ntp\nCONFIG<<EOF\n# host-topology parameters, format 2\n# host-topology secret parameters, format 2\n",
        ],
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
        expect(s.stderr).to.equal(
            `host-topology: ${timesync} on lab-host differs from the program's version (expected ${wrong}, found ${sha256File(timesync)})\n`,
        );
        const l = run(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY, LIB_SHA256: wrong });
        expect(l.code).to.equal(3);
        expect(l.stderr).to.contain(
            `${path.join(SCRIPTS_DIR, "lib")} on lab-host differs from the program's version (expected ${wrong}, found ${libSha256(SCRIPTS_DIR)})`,
        );
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
        ["ID=fedora\nVERSION_ID=40", null],
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
        expect(
            ok(h, "host-base.sh", "apply", HOSTBASE, { env: { HOST_TOPOLOGY_OS_RELEASE: path.join(h.dir, "alt-os-release") } }),
        ).to.contain("ok hostbase family=el9");
        const r = run(h, "host-base.sh", "apply", HOSTBASE, { env: { HOST_TOPOLOGY_OS_RELEASE: path.join(h.dir, "nope") } });
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain(`cannot read ${path.join(h.dir, "nope")}`);
    });
});

// =====================================================================================================

describe("host scripts: packages", function () {
    this.timeout(30000);

    it("apt: updates first when the lists are empty (not after); DPkg::Lock::Timeout=600, noninteractive, no recommends; only missing packages", () => {
        const h = makeHost("debian12", { installed: ["nginx"] });
        ok(h, "private-registry.sh", "apply", registryParams());
        const apt = calls(h)
            .split("\n")
            .filter((l) => l.startsWith("apt-get"));
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
        const apt = calls(h)
            .split("\n")
            .filter((l) => /^apt-get -o/.test(l));
        expect(apt.every((l) => l.startsWith("apt-get -o DPkg::Lock::Timeout=7 "))).to.equal(true);
        expect(apt.map((l) => l.split(" ").find((w) => w === "update" || w === "install"))).to.deep.equal([
            "update",
            "install",
            "update",
            "install",
        ]);
        expect(installed(h, "chrony")).to.equal(true);
    });

    it("apt: a persistent failure is an error with apt's output; no service config written; policy-rc.d removed", () => {
        const h = makeHost("debian12");
        fs.writeFileSync(`${h.state}/apt-fail-always`, "");
        const r = run(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain(
            "host-topology: lab-host: could not install chrony with apt-get: E: Could not get lock /var/lib/dpkg/lock-frontend",
        );
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
        for (const f of [
            "deb.debian.org_debian_dists_bookworm_InRelease",
            "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages",
        ]) {
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
        expect(
            calls(h)
                .split("\n")
                .filter((l) => l.startsWith("apt-get -o"))[0],
        ).to.equal(UPDATE);
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
        aptList(
            contrib,
            "deb.debian.org_debian_dists_bookworm_InRelease",
            0,
            " 0a 1 main/binary-amd64/Packages.xz\n 0b 2 contrib/binary-amd64/Packages.xz\n",
        );
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
        expect(
            refreshLines(
                ok(h, "time-sync.sh", "apply", { IMPL: "ntp", CONFIG: "server pool.ntp.org iburst\n", PKG_LISTS_MAX_AGE: "3600" }),
            ),
        ).to.deep.equal(["refreshed package lists (older than 3600s)"]);
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
        expect(r.stderr).to.contain(
            "host-topology: lab-host: could not refresh the package lists with apt-get update: E: Could not get lock",
        );
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
            expect(refreshLines(ok(h, "private-registry.sh", "apply", { ...registryParams(), PKG_LISTS_MAX_AGE: "3600" }))).to.deep.equal(
                [],
            );
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
                expect(r.stderr, JSON.stringify(bad)).to.equal(
                    "host-topology: lab-host: parameter PKG_LISTS_MAX_AGE must be a whole number of seconds\n",
                );
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
            expect(r.stderr, `lists ${age}`).to.equal(
                "host-topology: lab-host: parameter PKG_LISTS_MAX_AGE must be a whole number of seconds\n",
            );
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
        expect(drift).to.deep.equal([
            "drift /etc/docker/registry/config.yml content differs:",
            "drift service:nginx disabled,inactive (want enabled,active)",
        ]);
        expect(mutations(h)).to.deep.equal([]);
        clearCalls(h);
        const repair = ok(h, "private-registry.sh", "apply", registryParams());
        expect(repair).to.contain("changed /etc/docker/registry/config.yml");
        expect(repair).to.contain("unchanged /etc/nginx/conf.d/registry.conf");
        expect(mutations(h)).to.deep.equal(["systemctl restart docker-registry", "systemctl enable -q nginx", "systemctl start nginx"]);
        expect(ok(h, "private-registry.sh", "check", registryParams())).not.to.contain("drift");
    });

    it("put_file: a mode change alone is a change; no temp file is left behind", () => {
        const h = makeHost("debian12");
        ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        fs.chmodSync(path.join(h.root, "/etc/chrony/chrony.conf"), 0o600);
        expect(ok(h, "time-sync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY })).to.equal(
            "drift /etc/chrony/chrony.conf mode 600 (want 644)\nok timesync family=debian12\n",
        );
        clearCalls(h);
        const out = ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        expect(out).to.contain("changed /etc/chrony/chrony.conf");
        expect(mode(h, "/etc/chrony/chrony.conf")).to.equal(0o644);
        expect(fs.readdirSync(path.join(h.root, "etc/chrony"))).to.deep.equal(["chrony.conf"]);
    });
});

// =====================================================================================================

describe("host scripts: drift shown (diffs, packages) and secret parameters kept apart", function () {
    this.timeout(30000);
    const registry = path.join(SCRIPTS_DIR, "private-registry.sh");
    const hashesOf = (script: string) => ({ SCRIPT_SHA256: sha256File(script), LIB_SHA256: libSha256(SCRIPTS_DIR) });
    const SECRET_HEADER = "# host-topology secret parameters, format 2";
    const FILE = "/var/lib/host-topology/secrets/master-registry";
    /** The registry's plain stdin (HTPASSWD apart) and its secrets' framing, as the program sends them. */
    const split = (htpasswd: string, digest = "d1") => {
        // eslint-disable-next-line @typescript-eslint/no-unused-vars -- HTPASSWD is left out of the plain parameters
        const { HTPASSWD: _, ...plain } = registryParams();
        return {
            plain: encodeParams({ ...hashesOf(registry), ...plain, SECRETS_FILE: FILE, SECRETS_DIGEST: digest }),
            secrets: encodeParams({ HTPASSWD: htpasswd, SECRETS_OF: digest }, SECRET_HEADER),
        };
    };

    it("a managed file's drift comes with the unified diff of the host's file against the wanted one", () => {
        const h = makeHost("debian12");
        ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        fs.writeFileSync(
            path.join(h.root, "/etc/chrony/chrony.conf"),
            CHRONY.replace("server 192.168.100.2 iburst", "server 10.0.0.9 iburst"),
        );
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
        const long = ok(h, "time-sync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY })
            .split("\n")
            .filter((l) => l.startsWith("| "));
        expect(long.length).to.equal(201);
        expect(long[200]).to.equal("| ... 106 more lines");
    });

    it("a package removed by hand is drift: package:<name> missing", () => {
        const h = makeHost("debian12");
        ok(h, "time-sync.sh", "apply", { IMPL: "chrony", CONFIG: CHRONY });
        expect(ok(h, "time-sync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY })).not.to.contain("drift");
        fs.rmSync(`${h.state}/pkgs/chrony`);
        expect(ok(h, "time-sync.sh", "check", { IMPL: "chrony", CONFIG: CHRONY })).to.equal(
            "drift package:chrony missing\nok timesync family=debian12\n",
        );
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
        const drift = check()
            .stdout.split("\n")
            .filter((l) => l.startsWith("drift") || l.startsWith("|"));
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
