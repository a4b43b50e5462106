// The program under Pulumi mocks: which resources exist per host, their parents, inputs, secrets and
// dependency edges (read from the mock monitor's registerResource requests).
import { expect } from "chai";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { containsSecret, recorded, resetRecorded, settle, setupMocks, type Recorded, valueOf } from "./harness.ts";
setupMocks();
import * as pulumi from "@pulumi/pulumi";
import { buildTopology, parseConfig, scriptSha256, type BuiltTopology as Topology } from "../../components/index.ts";
import { LIB_FILES, SCRIPTS_DIR, libSha256 } from "../../components/step.ts";
import { HOST_KEYS, documentedRaw } from "./fixtures.ts";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nmock-key-material\n-----END OPENSSH PRIVATE KEY-----\n";

async function build(extra: Record<string, string> = {}): Promise<{ res: Recorded[]; topo: Topology }> {
    resetRecorded();
    const topo = buildTopology(parseConfig(documentedRaw(extra)), pulumi.secret(KEY));
    await settle();
    return { res: [...recorded], topo };
}

const byName = (res: Recorded[], name: string): Recorded => {
    const r = res.find((x) => x.name === name);
    if (!r) throw new Error(`no resource named ${name}; have ${res.map((x) => x.name).join(", ")}`);
    return r;
};

/** Decodes the parameters' framing (lib.sh's read_records): header lines, `KEY=value`, `KEY<<DELIM [-n]` ... DELIM. */
export function decodeParams(text: string): Record<string, string> {
    const out: Record<string, string> = {};
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
        const line = lines[i];
        if (line === "" || line.startsWith("# host-topology ")) continue;
        const single = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
        const multi = /^([A-Z][A-Z0-9_]*)<<([A-Za-z0-9_]+)( -n)?$/.exec(line);
        if (single) out[single[1]] = single[2];
        else if (multi) {
            const end = lines.indexOf(multi[2], i + 1);
            if (end < 0) throw new Error(`${multi[1]}: no closing ${multi[2]}`);
            const v = lines.slice(i + 1, end).join("\n") + "\n";
            out[multi[1]] = multi[3] ? v.slice(0, -1) : v;
            i = end;
        } else throw new Error(`bad parameter line ${line}`);
    }
    return out;
}

/** A step's plain parameters: its stdin. */
function params(r: Recorded): Record<string, string> {
    return decodeParams(String(r.inputs.stdin));
}

/**
 * A step with secret parameters keeps them apart: its stdin is plain and carries their digest; its `-secrets` command
 * puts them on the host; its check gets them as a secret input of their own. Returns the secret parameters.
 */
function secretsApart(res: Recorded[], step: string, keys: string[]): Record<string, string> {
    const run = byName(res, `${step}-run`);
    const put = byName(res, `${step}-secrets`);
    const check = byName(res, `${step}-check`);
    const plain = params(run);
    const secret = decodeParams(String(put.inputs.stdin));
    expect(containsSecret(run.rawInputs.stdin), `${step}: the plain stdin is not secret`).to.equal(false);
    expect(containsSecret(put.rawInputs.stdin), `${step}: the secrets' stdin is secret`).to.equal(true);
    for (const k of keys) expect(plain, `${step} plain`).not.to.have.property(k);
    expect(Object.keys(secret).sort()).to.deep.equal([...keys, "SECRETS_OF"].sort());
    const file = `/var/lib/host-topology/secrets/${step}`;
    expect(plain.SECRETS_FILE).to.equal(file);
    expect(put.inputs.create).to.equal(
        `umask 077 && mkdir -p /var/lib/host-topology/secrets && cat > ${file}.tmp.$$ && mv -f ${file}.tmp.$$ ${file}`,
    );
    expect(put.inputs.delete).to.equal(`rm -f ${file}`);
    // The digest: HMAC-SHA256 of the secrets' framing, keyed with the step's own random key (all zeros in the mocks).
    const key = byName(res, `${step}-digest-key`);
    expect(key.type).to.equal("random:index/randomBytes:RandomBytes");
    const framing = String(put.inputs.stdin).replace(/SECRETS_OF=[0-9a-f]+\n$/, "");
    expect(plain.SECRETS_DIGEST).to.equal(crypto.createHmac("sha256", Buffer.alloc(32)).update(framing).digest("hex"));
    expect(secret.SECRETS_OF).to.equal(plain.SECRETS_DIGEST);
    expect(run.dependencies).to.include(put.urn);
    expect(check.inputs.stdin).to.equal(run.inputs.stdin);
    expect(containsSecret(check.rawInputs.stdin), `${step}: the check's stdin is not secret`).to.equal(false);
    expect(check.inputs.secretStdin).to.equal(put.inputs.stdin);
    expect(containsSecret(check.rawInputs.secretStdin), `${step}: the check's secretStdin is secret`).to.equal(true);
    return secret;
}

/** All URNs a resource transitively depends on (explicit dependencies, through components to their children). */
function dependsOnTransitively(res: Recorded[], r: Recorded): Set<string> {
    const seen = new Set<string>();
    const stack = [...r.dependencies];
    while (stack.length) {
        const u = stack.pop()!;
        if (seen.has(u)) continue;
        seen.add(u);
        const dep = res.find((x) => x.urn === u);
        if (dep) stack.push(...dep.dependencies);
    }
    return seen;
}

describe("program under mocks: the documented topology", function () {
    let res: Recorded[];
    let topo: Topology;
    before(async () => {
        ({ res, topo } = await build());
    });

    it("creates the five components with their type tokens", () => {
        // (HostCheck, HostKey, Pki and HostScripts are the provider plugin's custom resources, under the same package.)
        const comps = res
            .filter((r) => r.type.startsWith("host-topology:") && !/:(HostCheck|HostKey|Pki|HostScripts)$/.test(r.type))
            .map((r) => `${r.type} ${r.name}`);
        expect(comps.sort()).to.deep.equal(
            [
                "host-topology:index:HostBase master",
                "host-topology:index:HostBase node1",
                "host-topology:index:HostBase node2",
                "host-topology:index:TimeSync master-time",
                "host-topology:index:TimeSync node1-time",
                "host-topology:index:TimeSync node2-time",
                "host-topology:index:FirewallOff master-firewall",
                "host-topology:index:FirewallOff node1-firewall",
                "host-topology:index:FirewallOff node2-firewall",
                "host-topology:index:PrivateRegistry master-registry",
                "host-topology:index:EtcdMember master-etcd1",
            ].sort(),
        );
    });

    it("gives every host its scripts (the first contact, no readiness Command) and the hosts step, parented to its HostBase", () => {
        expect(
            res.filter((r) => r.name.endsWith("-ready")).map((r) => r.name),
            "HostScripts waits for sshd itself",
        ).to.deep.equal([]);
        for (const h of ["master", "node1", "node2"]) {
            const base = byName(res, h);
            for (const [child, type] of [
                [`${h}-scripts`, "host-topology:index:HostScripts"],
                [`${h}-hosts-run`, "command:remote:Command"],
            ]) {
                const r = byName(res, child);
                expect(r.type, child).to.equal(type);
                expect(r.parent, child).to.equal(base.urn);
            }
        }
        expect(
            res.filter((r) => r.type === "command:remote:CopyToRemote").map((r) => r.name),
            "no upload per step",
        ).to.deep.equal([]);
    });

    it("puts every script on every host by one HostScripts: the hashes in the state, the key secret, after the host keys", () => {
        const shipped = fs
            .readdirSync(SCRIPTS_DIR, { recursive: true, encoding: "utf8" })
            .filter((f) => f.endsWith(".sh"))
            .sort();
        expect(shipped).to.include.members([
            "lib/step.sh",
            "host-base.sh",
            "time-sync.sh",
            "firewall-off.sh",
            "private-registry.sh",
            "etcd-member.sh",
        ]);
        for (const h of ["master", "node1", "node2"]) {
            const scripts = byName(res, `${h}-scripts`);
            expect(scripts.inputs.dir).to.equal("/usr/local/lib/host-topology");
            expect(scripts.inputs.files).to.deep.equal(Object.fromEntries(shipped.map((f) => [f, scriptSha256(f)])));
            expect(fs.existsSync(path.join(scripts.inputs.sourceDir, "lib", "step.sh")), "sourceDir relative to the project").to.equal(
                true,
            );
            expect(scripts.inputs.connection).to.include({
                host: byName(res, `${h}-hosts-run`).inputs.connection.host,
                user: "root",
                port: 22,
                privateKey: KEY,
            });
            expect(scripts.inputs).not.to.have.property("sudo");
            expect(containsSecret(scripts.rawInputs.connection), "connection secret").to.equal(true);
            expect(scripts.dependencies).to.include(byName(res, `${h}-hostkey`).urn);
            for (const step of res.filter((r) => r.name.startsWith(`${h}-`) && r.name.endsWith("-run")))
                expect(dependsOnTransitively(res, step).has(scripts.urn), `${step.name} after ${h}-scripts`).to.equal(true);
        }
    });

    it("installs each host's packages in one transaction at its first contact: the master's for time, registry and etcd; a node's for time", async () => {
        expect(byName(res, "master-scripts").inputs.packages).to.deep.equal(["chrony", "etcd", "registry"]);
        for (const n of ["node1", "node2"]) expect(byName(res, `${n}-scripts`).inputs.packages, n).to.deep.equal(["chrony"]);
        expect(byName(res, "node1-scripts").inputs, "the lists' default age is no input").not.to.have.property("packageListsMaxAge");
        // The sets follow the roles and the time daemon.
        const moved = (
            await build({
                timeImplementation: "ntp",
                hosts: JSON.stringify([
                    { name: "master", address: "192.168.100.2", roles: ["master"], hostKey: HOST_KEYS.master },
                    { name: "node1", address: "192.168.100.3", roles: ["node", "etcd", "registry"], hostKey: HOST_KEYS.node1 },
                    { name: "node2", address: "192.168.100.4", roles: ["node"], hostKey: HOST_KEYS.node2 },
                ]),
            })
        ).res;
        expect(byName(moved, "master-scripts").inputs.packages).to.deep.equal(["ntp"]);
        expect(byName(moved, "node1-scripts").inputs.packages).to.deep.equal(["etcd", "ntp", "registry"]);
    });

    it("puts the registry and etcd only on the master", () => {
        const onHost = (prefix: string) => res.filter((r) => r.name.startsWith(prefix)).map((r) => r.name);
        expect(onHost("node1").filter((n) => /registry|etcd/.test(n))).to.deep.equal([]);
        expect(byName(res, "master-registry-run").parent).to.equal(byName(res, "master-registry").urn);
        expect(byName(res, "master-etcd1-run").parent).to.equal(byName(res, "master-etcd1").urn);
    });

    it("connects to each host at its documented address as root, key secret, with a bounded dial retry", () => {
        for (const [h, ip] of [
            ["master", "192.168.100.2"],
            ["node1", "192.168.100.3"],
            ["node2", "192.168.100.4"],
        ]) {
            for (const r of res.filter((x) => x.name.startsWith(`${h}-`) && x.type.startsWith("command:remote:"))) {
                expect(r.inputs.connection.host, r.name).to.equal(ip);
                expect(r.inputs.connection.user).to.equal("root");
                expect(r.inputs.connection.dialErrorLimit).to.equal(30);
                expect(r.inputs.connection.privateKey).to.equal(KEY);
                expect(containsSecret(r.rawInputs.connection), `${r.name} connection must be secret`).to.equal(true);
            }
        }
    });

    it("runs each script with apply/remove and its parameters as data on stdin, including the script hashes", () => {
        const run = byName(res, "master-registry-run");
        expect(run.inputs.create).to.equal("bash /usr/local/lib/host-topology/private-registry.sh apply");
        expect(run.inputs.delete).to.equal("bash /usr/local/lib/host-topology/private-registry.sh remove");
        expect(run.inputs.addPreviousOutputInEnv).to.equal(false);
        expect(run.inputs.environment).to.equal(undefined);
        const p = params(run);
        expect(p.SCRIPT_SHA256).to.equal(scriptSha256("private-registry.sh"));
        // The library's one digest: its files (sorted by name) one after another.
        const lib = crypto.createHash("sha256");
        for (const f of LIB_FILES) lib.update(fs.readFileSync(path.join(SCRIPTS_DIR, f)));
        expect(LIB_FILES).to.deep.equal(["checks", "files", "os", "packages", "params", "services", "step"].map((f) => `lib/${f}.sh`));
        expect(p.LIB_SHA256).to.equal(lib.digest("hex"));
        expect(p.REGISTRY_CONFIG).to.contain("addr: 127.0.0.1:5000");
        expect(p.NGINX_CONF).to.contain("server_name registry.danran.com;");
        expect(p.HTPASSWD).to.equal("");
        expect(run.dependencies).to.include(byName(res, "master-scripts").urn);
    });

    it("sends every host the same hosts block and its own hostname", () => {
        const blocks = ["master", "node1", "node2"].map((h) => params(byName(res, `${h}-hosts-run`)));
        expect(new Set(blocks.map((b) => b.HOSTS_BLOCK)).size).to.equal(1);
        expect(blocks.map((b) => [b.HOSTNAME, b.FQDN])).to.deep.equal([
            ["master", "master.danran.com"],
            ["node1", "node1.danran.com"],
            ["node2", "node2.danran.com"],
        ]);
        expect(blocks[0].HOSTS_BLOCK).to.contain("192.168.100.2 master.danran.com master etcd1 registry registry.danran.com");
    });

    it("orders steps: HostBase before everything on its host", () => {
        for (const h of ["master", "node1", "node2"]) {
            const first = byName(res, `${h}-scripts`).urn;
            const others = res.filter((r) => r.type.startsWith("command:remote:") && r.name.startsWith(`${h}-`));
            expect(others.length).to.be.at.least(3);
            for (const r of others) expect(dependsOnTransitively(res, r).has(first), `${r.name} after ${h}-scripts`).to.equal(true);
            for (const step of ["time-run", "firewall-run"]) {
                const deps = dependsOnTransitively(res, byName(res, `${h}-${step}`));
                expect(deps.has(byName(res, `${h}-hosts-run`).urn), `${h}-${step} after the hosts file`).to.equal(true);
            }
        }
    });

    it("pins each host's key: a HostKey per host, its key on every connection; a host's commands wait for its own key only", () => {
        const keys = res.filter((r) => r.type === "host-topology:index:HostKey");
        expect(keys.map((k) => k.name).sort()).to.deep.equal(["master-hostkey", "node1-hostkey", "node2-hostkey"]);
        expect(keys.map((k) => k.inputs.pinned)).to.deep.equal([HOST_KEYS.master, HOST_KEYS.node1, HOST_KEYS.node2]);
        for (const r of res.filter((x) => x.type.startsWith("command:remote:"))) {
            const host = r.name.split("-")[0];
            const deps = dependsOnTransitively(res, r);
            expect(deps.has(byName(res, `${host}-hostkey`).urn), `${r.name} after ${host}-hostkey`).to.equal(true);
            // The pinned key itself, known to the program: a failed HostKey leaves the connection complete, so the
            // engine skips the host's steps under --continue-on-error instead of failing on an unknown connection.
            expect(r.inputs.connection.hostKey, `${r.name}'s pinned key`).to.equal(HOST_KEYS[host as keyof typeof HOST_KEYS]);
        }
        // A host that is down, or shows another key, stops nothing on the others (up --continue-on-error goes on).
        for (const h of ["node1", "node2"]) {
            for (const step of ["scripts", "hosts-run", "firewall-run"]) {
                const deps = dependsOnTransitively(res, byName(res, `${h}-${step}`));
                for (const k of keys.filter((k) => k.name !== `${h}-hostkey`))
                    expect(deps.has(k.urn), `${h}-${step} must not wait for ${k.name}`).to.equal(false);
            }
        }
    });

    it("records each step's owner (project/stack/step) in its stdin, for remove to undo only its own apply", () => {
        expect(params(byName(res, "node2-hosts-run")).OWNER).to.equal("host-topology/test/node2-hosts");
        expect(params(byName(res, "master-etcd1-run")).OWNER).to.equal("host-topology/test/master-etcd1");
    });

    it("orders steps: TimeSync and FirewallOff before the registry and etcd", () => {
        for (const svc of ["master-registry-run", "master-etcd1-run"]) {
            const deps = dependsOnTransitively(res, byName(res, svc));
            expect(deps.has(byName(res, "master-time-run").urn), `${svc} after time`).to.equal(true);
            expect(deps.has(byName(res, "master-firewall-run").urn), `${svc} after firewall`).to.equal(true);
        }
    });

    it("orders steps: each etcd member after every member's HostBase and after the member before it", async () => {
        const { res: r3 } = await build({ etcdMembers: '["master","node1","node2"]' });
        for (const m of ["master-etcd1-run", "node1-etcd2-run", "node2-etcd3-run"]) {
            const deps = dependsOnTransitively(r3, byName(r3, m));
            for (const h of ["master", "node1", "node2"]) {
                expect(deps.has(byName(r3, `${h}-hosts-run`).urn), `${m} after ${h}'s hosts file`).to.equal(true);
            }
        }
        // One member at a time: each member's step (and its drift repair) after the member before it.
        expect(dependsOnTransitively(r3, byName(r3, "node1-etcd2-run")).has(byName(r3, "master-etcd1-check").urn)).to.equal(true);
        expect(dependsOnTransitively(r3, byName(r3, "node2-etcd3-run")).has(byName(r3, "node1-etcd2-check").urn)).to.equal(true);
        expect(dependsOnTransitively(r3, byName(r3, "node2-etcd3-check")).has(byName(r3, "node1-etcd2-check").urn)).to.equal(true);
        expect(dependsOnTransitively(r3, byName(r3, "master-etcd1-run")).has(byName(r3, "node1-etcd2-run").urn)).to.equal(false);
        const tokens = ["master-etcd1-run", "node1-etcd2-run", "node2-etcd3-run"].map(
            (m) => /ETCD_INITIAL_CLUSTER_TOKEN="([^"]+)"/.exec(params(byName(r3, m)).ETCD_ENV)![1],
        );
        expect(new Set(tokens)).to.deep.equal(new Set(["mocktoken0123456789a"]));
    });

    it("nodes sync time from the master only when the master serves time", async () => {
        expect(params(byName(res, "node1-time-run")).CONFIG).to.contain("server 0.pool.ntp.org iburst");
        const { res: served } = await build({ timeServeFromMaster: "true" });
        const node = byName(served, "node1-time-run");
        expect(params(node).CONFIG).to.contain("server 192.168.100.2 iburst");
        expect(dependsOnTransitively(served, node).has(byName(served, "master-time-run").urn)).to.equal(true);
        expect(params(byName(served, "master-time-run")).CONFIG).to.contain("allow 192.168.100.3");
    });

    it("exports the inventory, etcd endpoints and the registry endpoint", async () => {
        expect(topo.etcdClientEndpoints).to.deep.equal(["http://192.168.100.2:2379"]);
        expect(await valueOf(topo.registry!.endpoint)).to.equal("http://registry.danran.com");
        expect(await valueOf(topo.registry!.credentials)).to.equal(undefined);
        const inv = await valueOf(pulumi.output(topo.inventory));
        expect(inv.map((h) => [h.name, h.fqdn, h.address, h.roles, h.os])).to.deep.equal([
            ["master", "master.danran.com", "192.168.100.2", ["master", "etcd", "registry"], "debian 12"],
            ["node1", "node1.danran.com", "192.168.100.3", ["node"], "debian 12"],
            ["node2", "node2.danran.com", "192.168.100.4", ["node"], "debian 12"],
        ]);
    });

    it("the inputs depend on what the config says, not on how it is written: key order in objects, role order", async () => {
        const a = (await build({ etcdMembers: JSON.stringify([{ host: "master", name: "etcd1" }]) })).res.map((r) => [
            r.type,
            r.name,
            JSON.stringify(r.inputs),
        ]);
        // The same hosts and members, every object's keys in another order and the master's roles reordered.
        const hosts = JSON.parse(documentedRaw().hosts!).map((h: Record<string, unknown>) =>
            Object.fromEntries(Object.entries(h).reverse()),
        );
        hosts[0].roles = [...hosts[0].roles].reverse();
        const b = (await build({ hosts: JSON.stringify(hosts), etcdMembers: JSON.stringify([{ name: "etcd1", host: "master" }]) })).res.map(
            (r) => [r.type, r.name, JSON.stringify(r.inputs)],
        );
        expect(b.sort()).to.deep.equal(a.sort());
        // And a change of substance shows: another domain changes the hosts block of every host.
        const c = (await build({ domain: "example.org" })).res;
        expect(params(byName(c, "node1-hosts-run")).HOSTS_BLOCK).to.include("192.168.100.2 master.example.org master");
    });
});

describe("program under mocks: a sudo user and a bastion", () => {
    it("a non-root user: scripts to ~/.host-topology, install and run through sudo -n; the proxy on every connection", async () => {
        const { res } = await build({
            sshUser: "deploy",
            sshProxy: JSON.stringify({ host: "192.168.100.2", hostKey: HOST_KEYS.master }),
            packageListsMaxAge: "30m",
        });
        // HostScripts, the first contact, checks sudo (provider/hostScripts.ts; its test runs a password-asking sudo).
        expect(byName(res, "node1-scripts").inputs.sudo).to.equal(true);
        expect(byName(res, "node1-scripts").inputs.dir).to.equal(".host-topology");
        expect(byName(res, "node1-scripts").inputs.connection).to.include({ user: "deploy" });
        const run = byName(res, "node1-hosts-run");
        expect(run.inputs.create).to.equal(
            "sudo -n install -D -m 0644 -t /usr/local/lib/host-topology .host-topology/host-base.sh && " +
                "sudo -n install -D -m 0644 -t /usr/local/lib/host-topology/lib " +
                LIB_FILES.map((f) => `.host-topology/${f}`).join(" ") +
                " && sudo -n bash /usr/local/lib/host-topology/host-base.sh apply",
        );
        expect(byName(res, "node1-time-run").inputs.create).to.equal(
            "sudo -n install -D -m 0644 -t /usr/local/lib/host-topology .host-topology/time-sync.sh && sudo -n bash /usr/local/lib/host-topology/time-sync.sh apply",
        );
        expect(params(run).PKG_LISTS_MAX_AGE).to.equal("1800");
        expect(byName(res, "node1-scripts").inputs.packageListsMaxAge, "the one install of the host's packages too").to.equal(1800);
        expect(byName(res, "node1-hosts-check").inputs.script).to.equal("sudo -n bash /usr/local/lib/host-topology/host-base.sh");
        expect(byName(res, "proxy-hostkey").inputs.pinned).to.equal(HOST_KEYS.master);
        for (const r of res.filter((x) => x.type.startsWith("command:remote:"))) {
            expect(r.inputs.connection.user, r.name).to.equal("deploy");
            expect(r.inputs.connection.proxy, r.name).to.include({ host: "192.168.100.2", port: 22, user: "deploy" });
        }
    });

    it("root and the default package list age: the commands and stdin of earlier versions (no re-run on upgrade)", async () => {
        const { res } = await build();
        expect(byName(res, "node1-hosts-run").inputs.create).to.equal("bash /usr/local/lib/host-topology/host-base.sh apply");
        expect(params(byName(res, "node1-hosts-run"))).to.not.have.property("PKG_LISTS_MAX_AGE");
        expect(byName(res, "node1-scripts").inputs.dir).to.equal("/usr/local/lib/host-topology");
    });
});

describe("program under mocks: SSH dial settings", () => {
    it("sshPerDialTimeout reaches the plugin's connections (HostScripts dials first); at its default they carry none", async () => {
        const def = (await build()).res;
        expect(byName(def, "node1-hosts-run").inputs.connection.perDialTimeout).to.equal(10);
        // The plugin's default is the same 10 s: the connections of earlier states stay as they were (no update).
        for (const n of ["node1-scripts", "node1-hosts-check"])
            expect(byName(def, n).inputs.connection, n).not.to.have.property("perDialTimeout");
        const slow = (await build({ sshPerDialTimeout: "45", sshDialErrorLimit: "4" })).res;
        for (const n of ["node1-scripts", "node1-hosts-check", "node1-hosts-run"])
            expect(byName(slow, n).inputs.connection, n).to.include({ perDialTimeout: 45, dialErrorLimit: 4 });
    });
});

describe("program under mocks: registry basic auth", () => {
    it("uses a random password, keeps the htpasswd stdin and the credentials output secret", async () => {
        const { res, topo } = await build({ registryAuth: "true" });
        const pw = byName(res, "master-registry-password");
        expect(pw.type).to.equal("random:index/randomPassword:RandomPassword");
        expect(pw.parent).to.equal(byName(res, "master-registry").urn);
        const run = byName(res, "master-registry-run");
        const secret = secretsApart(res, "master-registry", ["HTPASSWD"]);
        expect(secret.HTPASSWD).to.match(/^registry:\$2a\$10\$/);
        expect(params(run).NGINX_CONF).to.contain("auth_basic_user_file /etc/nginx/.ngxpasswd;");
        expect(JSON.stringify(res.map((r) => r.inputs))).not.to.contain("mock-password");
        const creds = topo.registry!.credentials;
        expect(await pulumi.isSecret(creds)).to.equal(true);
        expect(await valueOf(creds)).to.deep.equal({ username: "registry", password: "mock-password-0123456789" });
        // Without auth nothing secret goes into the registry step.
        const plainRes = (await build()).res;
        const plain = byName(plainRes, "master-registry-run");
        expect(containsSecret(plain.rawInputs.stdin)).to.equal(false);
        expect(params(plain).HTPASSWD).to.equal("");
        expect(plainRes.map((r) => r.name)).not.to.include.members(["master-registry-secrets", "master-registry-digest-key"]);
    });
});

describe("program under mocks: drift checks", () => {
    it("adds a HostCheck after every step, with the step's stdin and a secret connection", async () => {
        const { res } = await build({ registryAuth: "true" });
        const runs = res.filter((r) => r.name.endsWith("-run"));
        expect(runs.length).to.equal(3 * 3 + 2);
        for (const run of runs) {
            const check = byName(res, run.name.replace(/-run$/, "-check"));
            expect(check.type).to.equal("host-topology:index:HostCheck");
            expect(check.parent).to.equal(run.parent);
            expect(check.dependencies).to.include(run.urn);
            expect(check.inputs.stdin).to.equal(run.inputs.stdin);
            expect(check.inputs.script).to.equal(run.inputs.create.replace(/ apply$/, ""));
            expect(check.inputs.drift).to.deep.equal({});
            const remotePath = run.inputs.create.split(" ")[1];
            // The state keeps the script's hash and the library's one digest (the steps' LIB_SHA256), not one hash per
            // library file; a repair reads the scripts from sourceDir.
            expect(check.inputs.files).to.deep.equal({
                [remotePath]: scriptSha256(path.basename(remotePath)),
                "/usr/local/lib/host-topology/lib/": libSha256(),
            });
            expect(decodeParams(check.inputs.stdin).LIB_SHA256).to.equal(libSha256());
            expect(fs.existsSync(path.join(check.inputs.sourceDir, path.basename(remotePath)))).to.equal(true);
            // A reset host is repaired base first: the hosts step's check restores the scripts.
            const host = run.name.split("-")[0];
            if (!run.name.endsWith("-hosts-run")) expect(check.dependencies).to.include(byName(res, `${host}-hosts-check`).urn);
            expect(check.inputs.connection.privateKey).to.equal(KEY);
            expect(containsSecret(check.rawInputs.connection), `${check.name} connection secret`).to.equal(true);
        }
        expect(containsSecret(byName(res, "master-registry-check").rawInputs.stdin)).to.equal(false);
        expect(containsSecret(byName(res, "master-registry-check").rawInputs.secretStdin)).to.equal(true);
    });

    it("with the key from a file (sshPrivateKeyPath), the plugin's connections name the file and hold no secret; the step commands keep the key", async () => {
        resetRecorded();
        buildTopology(parseConfig(documentedRaw()), pulumi.secret(KEY), ".lab/ssh/id_ed25519");
        await settle();
        const res = [...recorded];
        const plugin = res.filter((r) => /:(HostCheck|HostScripts)$/.test(r.type));
        expect(plugin.length).to.equal(3 + 3 * 3 + 2);
        for (const r of plugin) {
            expect(r.inputs.connection, r.name).to.include({
                privateKey: "",
                privateKeyPath: ".lab/ssh/id_ed25519",
                user: "root",
                port: 22,
            });
            expect(JSON.stringify(r.rawInputs), `${r.name} holds no key`).not.to.contain("mock-key-material");
            expect(containsSecret(r.rawInputs.connection), `${r.name} connection plain`).to.equal(false);
            expect(r.additionalSecretOutputs, r.name).not.to.include("connection");
        }
        expect(byName(res, "master-registry-check").additionalSecretOutputs).to.include("secretStdin");
        for (const run of res.filter((r) => r.type === "command:remote:Command")) {
            expect(run.inputs.connection.privateKey, run.name).to.equal(KEY);
            expect(containsSecret(run.rawInputs.connection), `${run.name} connection secret`).to.equal(true);
        }
        // Without the file (the key from secret config), the checks keep the key and the engine keeps it secret.
        const { res: keyed } = await build();
        expect(byName(keyed, "master-etcd1-check").additionalSecretOutputs).to.include("connection");
        expect(byName(keyed, "master-etcd1-check").inputs.connection).not.to.have.property("privateKeyPath");
    });

    it("driftChecks: false leaves them out", async () => {
        const { res } = await build({ driftChecks: "false" });
        expect(res.filter((r) => r.name.endsWith("-check"))).to.deep.equal([]);
    });
});

describe("program under mocks: etcd TLS (etcdTls)", () => {
    it("one Pki for the etcd cluster; each member gets its own certificate and key on stdin, kept secret", async () => {
        const { res, topo } = await build({ etcdTls: "true", etcdMembers: '["master","node1","node2"]' });
        const pki = byName(res, "etcd-pki");
        expect(pki.type).to.equal("host-topology:index:Pki");
        expect(pki.inputs.certs.map((c: { id: string; cn: string; usage: string }) => [c.id, c.cn, c.usage])).to.deep.equal([
            ["etcd-member/etcd1", "etcd1", "serverAuth,clientAuth"],
            ["etcd-member/etcd2", "etcd2", "serverAuth,clientAuth"],
            ["etcd-member/etcd3", "etcd3", "serverAuth,clientAuth"],
            ["etcd-client", "etcd-client", "clientAuth"],
        ]);
        expect(pki.inputs.certs[1].sans).to.include.members([
            "DNS:etcd2",
            "DNS:node1",
            "DNS:node1.danran.com",
            "IP:192.168.100.3",
            "IP:127.0.0.1",
        ]);
        for (const [run, member] of [
            ["master-etcd1-run", "etcd1"],
            ["node1-etcd2-run", "etcd2"],
            ["node2-etcd3-run", "etcd3"],
        ]) {
            const r = byName(res, run);
            const p = params(r);
            const secret = secretsApart(res, run.replace(/-run$/, ""), ["TLS_CLIENT_KEY", "TLS_KEY"]);
            expect(p.TLS_CERT).to.equal(`mock-cert etcd-member/${member}`);
            expect(secret.TLS_KEY).to.equal(`mock-key etcd-member/${member}`);
            expect(p.TLS_CA).to.equal("mock-ca-cert etcd-pki");
            expect(secret.TLS_CLIENT_KEY).to.equal("mock-key etcd-client");
            expect(p.PKI_DIR).to.equal("/etc/etcd/pki");
            expect(p.ETCD_ENV).to.contain('ETCD_PEER_CLIENT_CERT_AUTH="true"');
            expect(p.CLIENT_URL).to.match(/^https:\/\//);
            expect(p.PEER_URL).to.equal(`https://${member}:2380`);
            expect(JSON.stringify(r.inputs)).not.to.contain("mock-ca-key");
            expect(JSON.stringify(r.inputs)).not.to.match(/mock-key etcd/);
        }
        expect(topo.etcdClientEndpoints).to.deep.equal([
            "https://192.168.100.2:2379",
            "https://192.168.100.3:2379",
            "https://192.168.100.4:2379",
        ]);
        expect(await pulumi.isSecret(topo.etcdClientTls!)).to.equal(true);
        expect(await valueOf(topo.etcdClientTls!)).to.deep.equal({
            ca: "mock-ca-cert etcd-pki",
            cert: "mock-cert etcd-client",
            key: "mock-key etcd-client",
        });
    });

    it("without etcdTls: no PKI, no TLS parameters, plain http as documented", async () => {
        const { res, topo } = await build();
        expect(res.filter((r) => r.type.endsWith(":Pki"))).to.deep.equal([]);
        const p = params(byName(res, "master-etcd1-run"));
        expect(Object.keys(p).filter((k) => k.startsWith("TLS_") || k === "PKI_DIR")).to.deep.equal([]);
        expect(p.ETCD_ENV).not.to.contain("ETCD_CERT_FILE");
        expect(containsSecret(byName(res, "master-etcd1-run").rawInputs.stdin)).to.equal(false);
        expect(topo.etcdClientTls).to.equal(undefined);
    });
});

describe("program under mocks: registry TLS (registryTls)", () => {
    it("nginx gets its certificate and key (secret), every host trusts the registry CA, the endpoint is https", async () => {
        const { res, topo } = await build({ registryTls: "true" });
        const pki = byName(res, "registry-pki");
        expect(pki.type).to.equal("host-topology:index:Pki");
        expect(pki.inputs.caName).to.equal("host-topology registry CA");
        expect(pki.inputs.certs).to.deep.equal([
            {
                id: "registry",
                cn: "registry.danran.com",
                sans: ["DNS:master", "DNS:master.danran.com", "DNS:registry", "DNS:registry.danran.com", "IP:192.168.100.2"],
                usage: "serverAuth",
            },
        ]);
        const run = byName(res, "master-registry-run");
        const p = params(run);
        expect(p.TLS_CERT).to.equal("mock-cert registry");
        expect(secretsApart(res, "master-registry", ["TLS_KEY"]).TLS_KEY).to.equal("mock-key registry");
        expect(p.NGINX_CONF).to.contain("listen 443 ssl;");
        for (const h of ["master", "node1", "node2"]) {
            const hosts = byName(res, `${h}-hosts-run`);
            expect(params(hosts).TRUSTED_CA, h).to.equal("mock-ca-cert registry-pki");
            expect(JSON.stringify(hosts.inputs)).not.to.contain("mock-key registry");
        }
        expect(await valueOf(topo.registry!.endpoint)).to.equal("https://registry.danran.com");
        expect(await valueOf(topo.registryCaCert!)).to.equal("mock-ca-cert registry-pki");
        // Off by default: no CA, no TLS parameters, http on 80 as documented.
        const { res: plain, topo: plainTopo } = await build();
        expect(params(byName(plain, "node1-hosts-run"))).not.to.have.property("TRUSTED_CA");
        expect(params(byName(plain, "master-registry-run"))).not.to.have.property("TLS_CERT");
        expect(plainTopo.registryCaCert).to.equal(undefined);
    });
});
