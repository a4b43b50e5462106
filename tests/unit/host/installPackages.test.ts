// host/install-packages.sh (InstallPackages): a host's packages in one transaction, before its steps.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { FAMILIES, makeHost, run, ok, calls, clearCalls, exists, installed, mutations, expectNoChange, CHRONY, ETCD } from "./support.ts";

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
        for (const run of runs)
            expect(lines[lines.indexOf(run) + 1], `${run}: its configuration`).to.match(
                /^apt-get APT_CONFIG \/\S+\/host-topology-apt\.\w+: Acquire::Languages "none"; $/,
            );
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
        expect(out).to.match(
            /^finishing an interrupted dpkg run \(dpkg --configure -a\)\nchanged packages: an interrupted dpkg run finished\n/m,
        );
        expect(
            calls(h)
                .split("\n")
                .filter((l) => l.startsWith("dpkg ")),
        ).to.deep.equal(["dpkg --force-confdef --force-confold --configure -a"]);
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
