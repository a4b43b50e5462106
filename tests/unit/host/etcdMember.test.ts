// host/etcd-member.sh (EtcdMember): an etcd member on every OS family, its health, its membership in a fake
// cluster (the etcdctl stub) and its TLS.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import type { Host } from "./support.ts";
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
    ETCD,
    ETCD_JOIN_ENV,
    ETCD_DROPIN,
    ETCD_DROPIN_CONTENT,
    etcdJoinEnv,
} from "./support.ts";

describe("host scripts on every OS family (stubbed package managers and systemd)", function () {
    this.timeout(30000);

    for (const [family, f] of Object.entries(FAMILIES)) {
        describe(family, () => {
            const installRe = (pkgs: string[]) =>
                f.pm === "apt-get"
                    ? new RegExp(`^apt-get -o DPkg::Lock::Timeout=600 .*install -y --no-install-recommends ${pkgs.join(" ")}$`, "m")
                    : new RegExp(`^${f.pm} -y install ${pkgs.join(" ")}$`, "m");

            it(`etcd: ${f.etcd.pkgs.join(" + ")}, ${f.etcd.conf}, data dir 0700 for etcd, --no-block start, bounded health wait; idempotent; remove keeps data`, () => {
                const h = makeHost(family);
                const out = ok(h, "etcd-member.sh", "apply", ETCD);
                expect(calls(h)).to.match(installRe(f.etcd.pkgs));
                expect(read(h, f.etcd.conf)).to.equal(ETCD.ETCD_ENV);
                expect(mode(h, ETCD.DATA_DIR)).to.equal(0o700);
                expect(calls(h)).to.contain(`chown etcd: ${h.root}${ETCD.DATA_DIR}`);
                expect(mutations(h).filter((l) => l.startsWith("systemctl"))).to.deep.equal([
                    "systemctl enable -q etcd",
                    "systemctl restart --no-block etcd",
                ]);
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

describe("host scripts: services, health and failures", function () {
    this.timeout(30000);

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
        fs.writeFileSync(
            `${h.state}/etcd-members`,
            `${etcd1}\n91bc3c398fb3c146, started, etcd2, http://etcd2:2380, http://192.168.100.3:2379, false\n`,
        );
        const out = ok(h, "etcd-member.sh", "apply", params);
        // against the started members other than itself only (etcd3 at .4 never ran)
        expect(calls(h)).to.match(
            /^etcdctl --endpoints=http:\/\/192\.168\.100\.2:2379 --command-timeout=10s member remove 91bc3c398fb3c146 /m,
        );
        expect(calls(h)).to.match(
            /^etcdctl --endpoints=http:\/\/192\.168\.100\.2:2379 --command-timeout=10s member add etcd2 --peer-urls=http:\/\/etcd2:2380 --learner /m,
        );
        const added = fs.readFileSync(`${h.state}/etcd-members`, "utf8").split("\n")[1];
        const id = added.split(", ")[0];
        expect(added).to.equal(`${id}, unstarted, , http://etcd2:2380, , false`);
        expect(read(h, ETCD_DROPIN)).to.equal(ETCD_DROPIN_CONTENT);
        expect(read(h, ETCD_JOIN_ENV)).to.equal(etcdJoinEnv("etcd2", "etcd1=http://etcd1:2380,etcd2=http://etcd2:2380", "existing"));
        expect(calls(h)).to.match(
            new RegExp(`^etcdctl --endpoints=http://192\\.168\\.100\\.2:2379 --command-timeout=10s member promote ${id} `, "m"),
        );
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
        fs.writeFileSync(
            `${fresh.state}/etcd-members`,
            `${etcd1}\n91bc3c398fb3c146, started, etcd2, http://etcd2:2380, http://192.168.100.3:2379, false\n`,
        );
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
        PEER_CLIENT_URLS: [1, 2, 3]
            .filter((j) => j !== i)
            .map(url)
            .join(","),
        HEALTH_TIMEOUT: "4",
        ...extra,
    });
    const cluster = (h: Host, ...members: string[]) => fs.writeFileSync(`${h.state}/etcd-members`, members.map((m) => `${m}\n`).join(""));
    const listed = (h: Host) => fs.readFileSync(`${h.state}/etcd-members`, "utf8");
    const down = (h: Host, ...urls: string[]) => fs.writeFileSync(`${h.state}/etcd-down`, urls.map((u) => `${u}\n`).join(""));
    const leader = (h: Host, id?: string) =>
        id === undefined ? fs.readFileSync(`${h.state}/etcd-leader`, "utf8").trim() : fs.writeFileSync(`${h.state}/etcd-leader`, `${id}\n`);
    /** etcd ran here: its data dir has a member dir. */
    const hasData = (h: Host, i: number) =>
        fs.mkdirSync(path.join(h.root, `/var/lib/etcd/etcd${i}.etcd/member`), { recursive: true, mode: 0o700 });
    const ctl = (h: Host) =>
        calls(h)
            .split("\n")
            .filter((l) => l.startsWith("etcdctl "));
    /** The calls that matter for the order of a membership change. */
    const steps = (h: Host) =>
        calls(h)
            .split("\n")
            .filter(
                (l) =>
                    / (member (add|remove|promote)|move-leader) (?!--help)/.test(l) ||
                    /^systemctl (daemon-reload|restart|start|stop|disable)\b/.test(l),
            );
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
        expect(c.lastIndexOf(`--endpoints=${url(2)} --command-timeout=3s endpoint health`)).to.be.greaterThan(
            c.lastIndexOf(" member promote "),
        );
    });

    it('a member add that etcd refuses for now ("unhealthy cluster" right after another change) is tried again', () => {
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
        expect(steps(h)).to.deep.equal([
            `etcdctl --endpoints=${url(1)} --command-timeout=10s move-leader ${ids[3]}${api}`,
            "systemctl restart --no-block etcd",
        ]);
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
        expect(r.stderr).to.contain(
            `etcd member etcd1 stays: member at ${url(3)} is not healthy, and the cluster would lose its quorum without etcd1`,
        );
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
        expect(out).to.equal(
            `left alone: etcd on lab-host was applied by ${b}, not by this step (${a}): nothing removed\nok etcd family=debian12\n`,
        );
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

// =====================================================================================================

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
            expect(mutations(h).filter((l) => l.startsWith("systemctl"))).to.deep.equal([
                "systemctl enable -q etcd",
                "systemctl restart --no-block etcd",
            ]);
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
        const drift = ok(h, "etcd-member.sh", "check", TLS)
            .split("\n")
            .filter((l) => l.startsWith("drift"));
        expect(drift).to.deep.equal([
            "drift /etc/etcd/pki/member.crt content differs:",
            "drift /etc/etcd/pki/member.key content differs (a secret: not shown)",
        ]);

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
