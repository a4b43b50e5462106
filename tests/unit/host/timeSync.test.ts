// host/time-sync.sh (TimeSync): chrony or ntp on every OS family.
import { expect } from "chai";
import * as fs from "fs";
import {
    FAMILIES,
    withoutDetail,
    makeHost,
    setUnit,
    run,
    ok,
    calls,
    clearCalls,
    read,
    exists,
    mode,
    has,
    pkgDefault,
    mutations,
    expectNoChange,
    CHRONY,
} from "./support.ts";

describe("host scripts on every OS family (stubbed package managers and systemd)", function () {
    this.timeout(30000);

    for (const [family, f] of Object.entries(FAMILIES)) {
        describe(family, () => {
            const installRe = (pkgs: string[]) =>
                f.pm === "apt-get"
                    ? new RegExp(`^apt-get -o DPkg::Lock::Timeout=600 .*install -y --no-install-recommends ${pkgs.join(" ")}$`, "m")
                    : new RegExp(`^${f.pm} -y install ${pkgs.join(" ")}$`, "m");

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
                expect(fs.readFileSync(`${h.root}/var/lib/host-topology/backup${f.chrony.conf}`, "utf8")).to.equal(
                    pkgDefault("chrony", f.chrony.conf),
                );
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
                    expect(ok(h, "time-sync.sh", "check", { IMPL: "ntp", CONFIG: "server pool.ntp.org iburst\n" })).to.equal(
                        `ok timesync family=${family}\n`,
                    );
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
        });
    }
});
