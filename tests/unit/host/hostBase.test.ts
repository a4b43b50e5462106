// host/host-base.sh (HostBase): /etc/hosts' managed block, the hostname, the trusted registry CA and the
// removal of the uploaded scripts, on every OS family.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import {
    SCRIPTS,
    copyScripts,
    FAMILIES,
    makeHost,
    run,
    ok,
    calls,
    clearCalls,
    read,
    exists,
    mode,
    mutations,
    expectNoChange,
    CHRONY,
    BLOCK,
    HOSTBASE,
    BEGIN,
    END,
} from "./support.ts";

describe("host scripts on every OS family (stubbed package managers and systemd)", function () {
    this.timeout(30000);

    for (const family of Object.keys(FAMILIES)) {
        describe(family, () => {
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
                expect(ok(h, "host-base.sh", "check", HOSTBASE)).to.equal(
                    `drift /etc/hosts managed block or conflicting lines differ\nok hostbase family=${family}\n`,
                );
            });
        });
    }
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
        const old =
            "127.0.0.1 localhost\n" +
            BEGIN +
            "192.168.100.9 old.danran.com old\n" +
            END +
            "10.0.0.8 node2-old node2\n# user line after the block\n";
        fs.writeFileSync(path.join(h.root, "etc/hosts"), old);
        const withNode2 = BLOCK + "192.168.100.4 node2.danran.com node2\n";
        ok(h, "host-base.sh", "apply", { ...HOSTBASE, HOSTS_BLOCK: withNode2 });
        expect(read(h, "/etc/hosts")).to.equal(
            "127.0.0.1 localhost\n" +
                BEGIN +
                withNode2 +
                END +
                "#host-topology-disabled# 10.0.0.8 node2-old node2\n# user line after the block\n",
        );
        ok(h, "host-base.sh", "apply", HOSTBASE);
        expect(read(h, "/etc/hosts")).to.equal(
            "127.0.0.1 localhost\n" + BEGIN + BLOCK + END + "10.0.0.8 node2-old node2\n# user line after the block\n",
        );
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
        expect(
            fs
                .readdirSync(dir, { recursive: true })
                .filter((f) => f !== "lib")
                .sort(),
        ).to.deep.equal([...SCRIPTS].sort());
    });
});

// =====================================================================================================

describe("host scripts: registry TLS (registryTls)", function () {
    this.timeout(30000);
    const CA = "-----BEGIN CERTIFICATE-----\nregistry-ca\n-----END CERTIFICATE-----\n";

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
            expect(
                calls(h)
                    .split("\n")
                    .filter((l) => l.startsWith("update-ca")),
            ).to.deep.equal([update]);
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
            expect(
                calls(h)
                    .split("\n")
                    .filter((l) => l.startsWith("update-ca")),
            ).to.deep.equal([update]);
            ok(h, "host-base.sh", "apply", { ...HOSTBASE, TRUSTED_CA: CA });
            ok(h, "host-base.sh", "remove", { ...HOSTBASE, TRUSTED_CA: CA });
            expect(exists(h, anchor)).to.equal(false);
        });
    }
});
