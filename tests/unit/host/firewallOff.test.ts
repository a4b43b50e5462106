// host/firewall-off.sh (FirewallOff): the firewall units and ufw turned off (and back on by remove), and their drift.
import { expect } from "chai";
import * as fs from "fs";
import { FAMILIES, makeHost, setUnit, run, ok, calls, clearCalls, exists, has, mutations, expectNoChange } from "./support.ts";

describe("host scripts on every OS family (stubbed package managers and systemd)", function () {
    this.timeout(30000);

    for (const [family, f] of Object.entries(FAMILIES)) {
        describe(family, () => {
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
        });
    }
});

// =====================================================================================================

describe("host scripts: drift check", function () {
    this.timeout(30000);

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
});
