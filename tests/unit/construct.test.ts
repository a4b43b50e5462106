// The plugin's construct (provider/construct.ts), which builds the five components for programs in other languages:
// under Pulumi mocks, the same children and edges as the TypeScript classes, references to components resolved to
// the objects this process built, and bad input refused naming the component and the input.
import { expect } from "chai";
import { etcdMemberDefaults } from "../../components/config/index.ts";
import { recorded, resetRecorded, settle, setupMocks, valueOf } from "./harness.ts";
setupMocks();
import * as pulumi from "@pulumi/pulumi";
import { COMPONENTS, construct, registerComponents } from "../../provider/construct.ts";
import { HostBase, TimeSync } from "../../components/index.ts";
import { documentedRaw } from "./fixtures.ts";
import { createRequire } from "module";

/** CommonJS modules loaded as the SDK loads them (this file is an ES module). */
const require = createRequire(import.meta.url);

const rpc = require("@pulumi/pulumi/runtime/rpc.js");
const RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e";
const HOSTS_BLOCK = "192.168.100.2 master.danran.com master etcd1\n192.168.100.3 node1.danran.com node1\n";
const connection = (host: string) => ({
    host,
    privateKey: pulumi.secret("key"),
    hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEN0WfoGVumrPR/1FAM8fbWxdv/4UK8lF6ox8J/Jz1Er",
});
const hostBase = (name: string, host: string) =>
    construct(
        name,
        "host-topology:index:HostBase",
        { connection: connection(host), hostname: name, fqdn: `${name}.danran.com`, hostsBlock: HOSTS_BLOCK },
        {},
        "0.2.0",
    );
const childrenOf = (name: string) => recorded.filter((r) => r.urn.endsWith(`::${name}`) || r.parent.endsWith(`::${name}`));
const etcd1 = { host: "master", name: "etcd1", clientUrl: "http://192.168.100.2:2379", peerUrl: "http://etcd1:2380" };

describe("provider construct: the five components and the Topology for other languages", () => {
    before(() => registerComponents("0.2.0"));
    beforeEach(resetRecorded);

    it("serves exactly the five components and the Topology, and refuses another type", async () => {
        expect([...COMPONENTS]).to.deep.equal(["HostBase", "TimeSync", "FirewallOff", "PrivateRegistry", "EtcdMember", "Topology"]);
        let err: Error | undefined;
        await construct("x", "host-topology:index:HostCheck", {}, {}, "0.2.0").catch((e) => (err = e));
        expect(err?.message).to.equal("host-topology provider: unknown component type host-topology:index:HostCheck");
    });

    it("Topology: the hosts list and settings as values build the five components per host; its outputs as state", async () => {
        const hosts = JSON.parse(documentedRaw().hosts!);
        const r = await construct(
            "lab",
            "host-topology:index:Topology",
            { hosts, sshPrivateKey: pulumi.secret("key"), timeServeFromMaster: true },
            {},
            "0.2.0",
        );
        await settle();
        const components = recorded.filter((x) => x.parent.endsWith("::lab")).map((x) => `${x.type.split(":").pop()} ${x.name}`);
        expect(components).to.include.members([
            "HostBase master",
            "TimeSync node1-time",
            "FirewallOff node2-firewall",
            "PrivateRegistry master-registry",
            "EtcdMember master-etcd1",
        ]);
        expect(await valueOf(r.state.etcdClientEndpoints)).to.deep.equal(["http://192.168.100.2:2379"]);
        expect(await valueOf(r.state.registryEndpoint)).to.equal("http://registry.danran.com");
        expect(((await valueOf(r.state.inventory)) as { fqdn: string }[]).map((h) => h.fqdn)).to.deep.equal([
            "master.danran.com",
            "node1.danran.com",
            "node2.danran.com",
        ]);
        // Bad settings: one error naming each, as the stack config's.
        let err: Error | undefined;
        await construct(
            "bad",
            "host-topology:index:Topology",
            { hosts, sshPrivateKey: "k", timeImplementation: "ptp", sshPort: 0 },
            {},
            "0.2.0",
        ).catch((e) => (err = e));
        expect(err?.message).to.match(/^Topology bad: [\s\S]*timeImplementation: must be chrony or ntp, got "ptp"/);
        expect(err?.message).to.contain("sshPort");
    });

    it("HostBase: the class of the TypeScript program, with its children, and its state (os, hostname, fqdn)", async () => {
        const r = await hostBase("master", "192.168.100.2");
        await settle();
        const byName = Object.fromEntries(childrenOf("master").map((x) => [x.name, x.type]));
        expect(byName).to.deep.equal({
            master: "host-topology:index:HostBase",
            "master-scripts": "host-topology:index:HostScripts",
            "master-hosts-run": "command:remote:Command",
            "master-hosts-check": "host-topology:index:HostCheck",
        });
        expect(await valueOf(pulumi.output(r.state.os))).to.equal("debian 12");
        expect(r.state.hostname).to.equal("master");
        expect(r.state.fqdn).to.equal("master.danran.com");
        const run = recorded.find((x) => x.name === "master-hosts-run")!;
        expect(run.inputs.stdin).to.include("HOSTS_BLOCK<<EOF\n192.168.100.2 master.danran.com master etcd1\n");
    });

    it("a reference to a component of this deployment deserializes to the object built; an unknown one is an error", async () => {
        const r = await hostBase("node1", "192.168.100.3");
        const urn = await valueOf(pulumi.output(r.urn));
        expect(
            rpc.deserializeProperty({ "4dabf18193072939515e22adb298388d": RESOURCE_SIG, urn, packageVersion: "0.2.0" }),
        ).to.be.instanceOf(HostBase);
        const other = urn.replace("::node1", "::node9");
        expect(() =>
            rpc.deserializeProperty({ "4dabf18193072939515e22adb298388d": RESOURCE_SIG, urn: other, packageVersion: "0.2.0" }),
        ).to.throw(/HostBase node9 is not a component of this deployment/);
    });

    it("TimeSync on a HostBase waits for the host's steps and for `after` (components resolved to their children)", async () => {
        const master = await hostBase("master", "192.168.100.2");
        const node1 = await hostBase("node1", "192.168.100.3");
        const masterUrn = await valueOf(pulumi.output(master.urn));
        const host = rpc.deserializeProperty({
            "4dabf18193072939515e22adb298388d": RESOURCE_SIG,
            urn: await valueOf(pulumi.output(node1.urn)),
            packageVersion: "0.2.0",
        });
        const mt = await construct(
            "master-time",
            "host-topology:index:TimeSync",
            {
                host: rpc.deserializeProperty({
                    "4dabf18193072939515e22adb298388d": RESOURCE_SIG,
                    urn: masterUrn,
                    packageVersion: "0.2.0",
                }),
                config: "server a iburst\n",
            },
            {},
            "0.2.0",
        );
        const mtUrn = await valueOf(pulumi.output(mt.urn));
        const after = rpc.deserializeProperty({ "4dabf18193072939515e22adb298388d": RESOURCE_SIG, urn: mtUrn, packageVersion: "0.2.0" });
        expect(after).to.be.instanceOf(TimeSync);
        await construct(
            "node1-time",
            "host-topology:index:TimeSync",
            { host, config: "server 192.168.100.2 iburst\n", after: [after] },
            {},
            "0.2.0",
        );
        await settle();
        const run = recorded.find((x) => x.name === "node1-time-run")!;
        const urnOf = (n: string) => recorded.find((x) => x.name === n)!.urn;
        // The host's steps and the master's TimeSync's children: what `dependsOn` on a component means in TypeScript.
        expect(run.dependencies).to.include.members([
            urnOf("node1-hosts-run"),
            urnOf("node1-scripts"),
            urnOf("master-time-run"),
            urnOf("master-time-check"),
        ]);
        expect(run.inputs.stdin).to.include("IMPL=chrony\n");
    });

    it("bad input is refused naming the component and the input", async () => {
        const master = await hostBase("master", "192.168.100.2");
        const host = rpc.deserializeProperty({
            "4dabf18193072939515e22adb298388d": RESOURCE_SIG,
            urn: await valueOf(pulumi.output(master.urn)),
            packageVersion: "0.2.0",
        });
        const refused = async (type: string, name: string, inputs: pulumi.Inputs) => {
            let err: Error | undefined;
            await construct(name, `host-topology:index:${type}`, inputs, {}, "0.2.0").catch((e) => (err = e));
            return err?.message;
        };
        expect(await refused("HostBase", "h", { hostname: "h" })).to.equal("HostBase h: missing connection, fqdn, hostsBlock");
        expect(await refused("TimeSync", "t", { host: "urn:pulumi:x", config: "c" })).to.match(
            /^TimeSync t: host must be a host-topology:index:HostBase of this program/,
        );
        expect(await refused("TimeSync", "t", { host, config: "c", implementation: "ntpd" })).to.equal(
            "TimeSync t: implementation must be chrony or ntp, not ntpd",
        );
        expect(
            await refused("EtcdMember", "e", { host, member: etcd1, members: [{ ...etcd1, name: "etcd2" }], clusterToken: "t" }),
        ).to.equal("EtcdMember e: members must include the member etcd1");
        expect(await refused("EtcdMember", "e", { host, member: { ...etcd1, peerUrl: "" }, members: [etcd1], clusterToken: "t" })).to.match(
            /^EtcdMember e: member: peerUrl is required/,
        );
        const unknown = new (pulumi.Output as unknown as new (...args: unknown[]) => pulumi.Output<string>)(
            new Set(),
            Promise.resolve(undefined),
            Promise.resolve(false),
            Promise.resolve(false),
            Promise.resolve(new Set()),
        );
        expect(
            await refused("HostBase", "h", { connection: connection("192.168.100.2"), hostname: unknown, fqdn: "h.d", hostsBlock: "x" }),
        ).to.match(/^HostBase h: hostname must be known when the program runs/);
    });

    it("EtcdMember: a member's listen URL and data dir follow from its URLs as in the config (etcdMemberDefaults)", async () => {
        const master = await hostBase("master", "192.168.100.2");
        const host = rpc.deserializeProperty({
            "4dabf18193072939515e22adb298388d": RESOURCE_SIG,
            urn: await valueOf(pulumi.output(master.urn)),
            packageVersion: "0.2.0",
        });
        const member = { host: "master", name: "etcd1", clientUrl: "https://192.168.100.2:2379", peerUrl: "https://etcd1:2390" };
        await construct(
            "master-etcd1",
            "host-topology:index:EtcdMember",
            { host, member, members: [member], clusterToken: "t" },
            {},
            "0.2.0",
        );
        await settle();
        const env = recorded.find((x) => x.name === "master-etcd1-run")!.inputs.stdin as string;
        expect(env).to.match(/ETCD_LISTEN_PEER_URLS="?https:\/\/192\.168\.100\.2:2390"?\n/);
        expect(env).to.match(/ETCD_DATA_DIR="?\/var\/lib\/etcd\/etcd1\.etcd"?\n/);
        expect(etcdMemberDefaults("etcd1", "https://etcd1:2390", "192.168.100.2")).to.deep.equal({
            listenPeerUrl: "https://192.168.100.2:2390",
            dataDir: "/var/lib/etcd/etcd1.etcd",
        });
        expect(etcdMemberDefaults("etcd2", "http://etcd2", "10.0.0.3").listenPeerUrl, "no port: 2380").to.equal("http://10.0.0.3:2380");
    });
});
