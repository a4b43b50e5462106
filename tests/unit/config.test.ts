import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import {
    ConfigError,
    parseConfig,
    parseDuration,
    parseHostsFrom,
    plaintextSecrets,
    urlProblem,
    isIPv4,
    type RawConfig,
} from "../../components/config/index.ts";
import { HOST_KEYS, documentedRaw } from "./fixtures.ts";
import { createRequire } from "module";

/** CommonJS modules loaded as the SDK loads them (this file is an ES module). */
const require = createRequire(import.meta.url);

function problems(raw: RawConfig, env = {}): string[] {
    try {
        parseConfig(raw, env);
    } catch (e) {
        expect(e).to.be.instanceOf(ConfigError);
        return (e as ConfigError).problems.map((p) => `${p.propertyPath}: ${p.reason}`);
    }
    return [];
}

function hostsWith(mutate: (hosts: Record<string, unknown>[]) => void): string {
    const hosts = JSON.parse(documentedRaw().hosts!);
    mutate(hosts);
    return JSON.stringify(hosts);
}

describe("parseConfig: the documented topology", () => {
    const cfg = parseConfig(documentedRaw());

    it("has the three documented hosts with their roles", () => {
        expect(cfg.hosts.map((h) => [h.name, h.address, h.roles.join(",")])).to.deep.equal([
            ["master", "192.168.100.2", "master,etcd,registry"],
            ["node1", "192.168.100.3", "node"],
            ["node2", "192.168.100.4", "node"],
        ]);
    });

    it("derives the single documented etcd member etcd1 on the master", () => {
        expect(cfg.etcdMembers).to.deep.equal([
            {
                host: "master",
                name: "etcd1",
                clientUrl: "http://192.168.100.2:2379",
                peerUrl: "http://etcd1:2380",
                listenPeerUrl: "http://192.168.100.2:2380",
                dataDir: "/var/lib/etcd/etcd1.etcd",
            },
        ]);
    });

    it("puts the registry on the master as registry.danran.com without auth", () => {
        expect(cfg.registry).to.deep.equal({
            host: "master",
            serverName: "registry.danran.com",
            auth: false,
            tls: false,
            user: "registry",
            storageDir: "/var/lib/registry",
        });
    });

    it("applies the defaults", () => {
        expect(cfg.ssh).to.deep.equal({
            user: "root",
            port: 22,
            privateKeyPath: undefined,
            dialErrorLimit: 30,
            perDialTimeout: 10,
            hostKeyPolicy: "strict",
        });
        expect(cfg.packageListsMaxAge).to.equal(3600);
        expect(cfg.time).to.deep.equal({
            implementation: "chrony",
            servers: ["0.pool.ntp.org", "1.pool.ntp.org", "2.pool.ntp.org", "3.pool.ntp.org"],
            serveFromMaster: false,
        });
        expect(cfg.firewallUnits).to.deep.equal(["firewalld", "iptables", "ip6tables", "ufw"]);
        expect(cfg.scriptDir).to.equal("/usr/local/lib/host-topology");
    });

    it("etcd TLS is off by default (the documented http URLs); etcdTls switches the default URLs to https", () => {
        expect(cfg.etcdTls).to.equal(false);
        const tls = parseConfig(documentedRaw({ etcdTls: "true" }));
        expect(tls.etcdTls).to.equal(true);
        expect(tls.etcdMembers.map((m) => [m.clientUrl, m.peerUrl, m.listenPeerUrl])).to.deep.equal([
            ["https://192.168.100.2:2379", "https://etcd1:2380", "https://192.168.100.2:2380"],
        ]);
    });

    it("builds a three-member static cluster when etcdMembers lists three hosts", () => {
        const c = parseConfig(documentedRaw({ etcdMembers: JSON.stringify(["master", "node1", { host: "node2", name: "etcd-c" }]) }));
        expect(c.etcdMembers.map((m) => [m.host, m.name, m.clientUrl, m.peerUrl, m.listenPeerUrl])).to.deep.equal([
            ["master", "etcd1", "http://192.168.100.2:2379", "http://etcd1:2380", "http://192.168.100.2:2380"],
            ["node1", "etcd2", "http://192.168.100.3:2379", "http://etcd2:2380", "http://192.168.100.3:2380"],
            ["node2", "etcd-c", "http://192.168.100.4:2379", "http://etcd-c:2380", "http://192.168.100.4:2380"],
        ]);
    });
});

describe("parseConfig: bad input is rejected with the key named", () => {
    const cases: [string, RawConfig, RegExp][] = [
        ["bad IP", documentedRaw({ hosts: hostsWith((h) => (h[1].address = "192.168.100.300")) }), /^hosts\[1\]\.address: must be an IPv4/],
        ["IP with leading zero", documentedRaw({ hosts: hostsWith((h) => (h[1].address = "192.168.100.03")) }), /^hosts\[1\]\.address/],
        [
            "bad host name",
            documentedRaw({ hosts: hostsWith((h) => (h[2].name = "Node_2")) }),
            /^hosts\[2\]\.name: must be a host name label/,
        ],
        [
            "duplicate name",
            documentedRaw({ hosts: hostsWith((h) => (h[2].name = "node1")) }),
            /^hosts: host name "node1" is used by more than one host/,
        ],
        [
            "duplicate address",
            documentedRaw({ hosts: hostsWith((h) => (h[2].address = "192.168.100.3")) }),
            /^hosts: address 192\.168\.100\.3 is used by more than one host/,
        ],
        [
            "unknown role",
            documentedRaw({ hosts: hostsWith((h) => (h[1].roles = ["worker"])) }),
            /^hosts\[1\]\.roles\[0\]: unknown role "worker"/,
        ],
        ["missing roles", documentedRaw({ hosts: hostsWith((h) => delete h[1].roles) }), /^hosts\[1\]\.roles: is required/],
        [
            "two registries",
            documentedRaw({ hosts: hostsWith((h) => (h[1].roles = ["registry"])) }),
            /^hosts: role "registry" is given to 2 hosts/,
        ],
        ["hosts missing", documentedRaw({ hosts: undefined }), /^hosts: is required/],
        ["hosts not a list", documentedRaw({ hosts: '{"name":"master"}' }), /^hosts: must be a non-empty list/],
        ["hosts not JSON", documentedRaw({ hosts: "master,node1" }), /^hosts: is not valid JSON/],
        [
            "unknown host property",
            documentedRaw({ hosts: hostsWith((h) => (h[0].adress = "1.2.3.4")) }),
            /^hosts\[0\]\.adress: is not a known host property/,
        ],
        [
            "etcd member on an unknown host",
            documentedRaw({ etcdMembers: '["master","node9","node1"]' }),
            /^etcdMembers\[1\]\.host: "node9" is not one of the hosts/,
        ],
        [
            "even etcd member count",
            documentedRaw({ etcdMembers: '["master","node1"]' }),
            /^etcdMembers: 2 members: an etcd cluster needs an odd number/,
        ],
        [
            "the notes' hhttp:// URL",
            documentedRaw({ etcdMembers: '[{"host":"master","clientUrl":"hhttp://192.168.100.2:2379"}]' }),
            /^etcdMembers\[0\]\.clientUrl: "hhttp:\/\/192\.168\.100\.2:2379": scheme "hhttp" is not http or https/,
        ],
        [
            "URL without port",
            documentedRaw({ etcdMembers: '[{"host":"master","peerUrl":"http://etcd1"}]' }),
            /^etcdMembers\[0\]\.peerUrl: .* has no port/,
        ],
        [
            "http URL with etcdTls",
            documentedRaw({ etcdTls: "true", etcdMembers: '[{"host":"master","clientUrl":"http://192.168.100.2:2379"}]' }),
            /^etcdMembers\[0\]\.clientUrl: "http:\/\/192\.168\.100\.2:2379" must be https:\/\/ when etcdTls is true/,
        ],
        [
            "https URL without etcdTls",
            documentedRaw({ etcdMembers: '[{"host":"master","peerUrl":"https://etcd1:2380"}]' }),
            /^etcdMembers\[0\]\.peerUrl: "https:\/\/etcd1:2380" must be http:\/\/ when etcdTls is false/,
        ],
        ["registryTls of wrong type", documentedRaw({ registryTls: "1" }), /^registryTls: must be true or false/],
        ["etcdTls of wrong type", documentedRaw({ etcdTls: "on" }), /^etcdTls: must be true or false/],
        [
            "duplicate etcd host",
            documentedRaw({ etcdMembers: '["master","master","node1"]' }),
            /^etcdMembers: host "master" has more than one member/,
        ],
        ["bad domain", documentedRaw({ domain: "danran..com" }), /^domain: must be a DNS domain/],
        ["bad port type", documentedRaw({ sshPort: "twenty-two" }), /^sshPort: must be an integer/],
        ["port out of range", documentedRaw({ sshPort: "70000" }), /^sshPort: must be between 1 and 65535/],
        ["boolean of wrong type", documentedRaw({ registryAuth: "yes" }), /^registryAuth: must be true or false/],
        ["unknown time implementation", documentedRaw({ timeImplementation: "ntpd" }), /^timeImplementation: must be chrony or ntp/],
        [
            "bad time server",
            documentedRaw({ timeServers: '["pool.ntp.org","bad server"]' }),
            /^timeServers\[1\]: must be a DNS name or IPv4/,
        ],
        ["time servers not a list", documentedRaw({ timeServers: '"pool.ntp.org"' }), /^timeServers: must be a list of strings/],
        ["no SSH key", documentedRaw({ sshPrivateKey: undefined }), /^sshPrivateKey: set sshPrivateKey \(secret\) or sshPrivateKeyPath/],
        ["SSH user with shell syntax", documentedRaw({ sshUser: "admin; reboot" }), /^sshUser: must be a user name/],
        [
            "host key not base64",
            documentedRaw({ hosts: hostsWith((h) => (h[1].hostKey = "ssh-ed25519 not*base64")) }),
            /^hosts\[1\]\.hostKey: the key after ssh-ed25519 is not base64/,
        ],
        [
            "host key of an unknown type",
            documentedRaw({ hosts: hostsWith((h) => (h[1].hostKey = "ssh-dss AAAAB3NzaC1kc3MAAACB")) }),
            /^hosts\[1\]\.hostKey: unknown key type "ssh-dss"/,
        ],
        [
            "host key whose data is another type",
            documentedRaw({ hosts: hostsWith((h) => (h[1].hostKey = "ecdsa-sha2-nistp256 " + HOST_KEYS.node1.split(" ")[1])) }),
            /^hosts\[1\]\.hostKey: the key data is a ssh-ed25519 key, not ecdsa-sha2-nistp256/,
        ],
        [
            "host key without data",
            documentedRaw({ hosts: hostsWith((h) => (h[1].hostKey = "ssh-ed25519")) }),
            /^hosts\[1\]\.hostKey: must be "<type> <base64>"/,
        ],
        [
            "host key not a string",
            documentedRaw({ hosts: hostsWith((h) => (h[1].hostKey = 42)) }),
            /^hosts\[1\]\.hostKey: must be a public key line/,
        ],
        [
            "no host key under strict",
            documentedRaw({ hosts: hostsWith((h) => delete h[2].hostKey) }),
            /^hosts\[2\]\.hostKey: no host key pinned for node2 \(192\.168\.100\.4\).*accept-new/,
        ],
        ["unknown host key policy", documentedRaw({ sshHostKeyPolicy: "trust" }), /^sshHostKeyPolicy: must be strict or accept-new/],
        ["proxy not an object", documentedRaw({ sshProxy: '"master"' }), /^sshProxy: must be an object/],
        ["proxy without host", documentedRaw({ sshProxy: "{}" }), /^sshProxy\.host: must be an IPv4 address or DNS name/],
        [
            "proxy port out of range",
            documentedRaw({ sshProxy: '{"host":"192.168.100.2","port":0}' }),
            /^sshProxy\.port: must be a port number/,
        ],
        [
            "proxy with an unknown property",
            documentedRaw({ sshProxy: '{"host":"192.168.100.2","hostkey":"x"}' }),
            /^sshProxy\.hostkey: is not a known proxy property/,
        ],
        [
            "proxy without a key under strict",
            documentedRaw({ sshProxy: '{"host":"192.168.100.2"}' }),
            /^sshProxy\.hostKey: no host key pinned for the proxy 192\.168\.100\.2/,
        ],
        ["package list age in words", documentedRaw({ packageListsMaxAge: "one hour" }), /^packageListsMaxAge: must be a duration/],
        ["unknown key", documentedRaw({ etcdMember: "[]" }), /^etcdMember: is not a known config key/],
        [
            "bad firewall unit",
            documentedRaw({ firewallUnits: '["firewalld","rm -rf /"]' }),
            /^firewallUnits\[1\]: must be a systemd unit name/,
        ],
        ["relative script dir", documentedRaw({ scriptDir: "tmp/x" }), /^scriptDir: must be an absolute path/],
        [
            "serve time without master",
            documentedRaw({ timeServeFromMaster: "true", hosts: hostsWith((h) => (h[0].roles = ["etcd", "registry"])) }),
            /^timeServeFromMaster: is true but no host has role master/,
        ],
        [
            "alias that collides with another host",
            documentedRaw({ hosts: hostsWith((h) => (h[1].aliases = ["registry"])) }),
            /^hosts: name "registry" would resolve to both master and node1/,
        ],
    ];
    for (const [what, raw, re] of cases) {
        it(`rejects ${what}`, () => {
            const ps = problems(raw);
            expect(
                ps.some((p) => re.test(p)),
                `problems were:\n${ps.join("\n")}`,
            ).to.equal(true);
        });
    }

    it("reports every problem in one error", () => {
        const raw = documentedRaw({
            sshPort: "0",
            hosts: hostsWith((h) => {
                h[0].address = "300.1.1.1";
                h[1].name = "-bad";
            }),
            etcdMembers: '["master","node2"]',
        });
        const ps = problems(raw);
        expect(ps.map((p) => p.split(":")[0])).to.include.members(["sshPort", "hosts[0].address", "hosts[1].name", "etcdMembers"]);
        try {
            parseConfig(raw);
            expect.fail("parseConfig accepted bad input");
        } catch (e) {
            expect((e as Error).message).to.match(/^invalid configuration \(\d+ problems\):\n {2}- /);
        }
    });

    it("checks that the key file is readable, without touching a host", () => {
        const ps = problems(documentedRaw({ sshPrivateKey: undefined, sshPrivateKeyPath: "/nonexistent/key" }), {
            fileReadable: () => false,
        });
        expect(ps).to.deep.equal([
            `sshPrivateKeyPath: "/nonexistent/key" is not a readable file (for the local lab: lab/lab.sh up creates it)`,
        ]);
    });
});

describe("parseConfig: host keys, known_hosts, proxy, sudo user, package list age", () => {
    const noKeys = () => hostsWith((h) => h.forEach((x) => delete x.hostKey));
    const knownHosts = [
        "# the lab's keys",
        `192.168.100.2,master.danran.com,master ${HOST_KEYS.master}`,
        `192.168.100.2 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7`, // malformed: ignored
        `node1.danran.com ${HOST_KEYS.node1}`,
        `[192.168.100.4]:2222 ${HOST_KEYS.node2}`,
    ].join("\n");
    const env = (text: string) => ({
        readFile: (p: string) =>
            p === "kh"
                ? text
                : (() => {
                      throw new Error(`ENOENT: no such file, open '${p}'`);
                  })(),
    });

    it("the documented hosts' pinned keys are kept as `type base64` (a comment is dropped)", () => {
        const c = parseConfig(documentedRaw({ hosts: hostsWith((h) => (h[0].hostKey = `${HOST_KEYS.master} root@master`)) }));
        expect(c.hosts.map((h) => h.hostKey)).to.deep.equal([HOST_KEYS.master, HOST_KEYS.node1, HOST_KEYS.node2]);
    });

    it("finds keys in sshKnownHostsPath by address, FQDN or name and port; a host not listed is named", () => {
        const ps = problems(documentedRaw({ hosts: noKeys(), sshKnownHostsPath: "kh" }), env(knownHosts));
        // node2 is listed on port 2222 only
        expect(ps).to.have.length(1);
        expect(ps[0]).to.match(/^hosts\[2\]\.hostKey: no host key pinned for node2 \(192\.168\.100\.4\) and none in kh/);
        const c = parseConfig(
            documentedRaw({ hosts: noKeys(), sshKnownHostsPath: "kh", sshPort: "2222", sshHostKeyPolicy: "accept-new" }),
            env(knownHosts),
        );
        expect(c.hosts.map((h) => h.hostKey)).to.deep.equal([undefined, undefined, HOST_KEYS.node2]);
        const on22 = parseConfig(
            documentedRaw({ hosts: noKeys(), sshKnownHostsPath: "kh", sshHostKeyPolicy: "accept-new" }),
            env(knownHosts),
        );
        expect(on22.hosts.map((h) => h.hostKey)).to.deep.equal([HOST_KEYS.master, HOST_KEYS.node1, undefined]);
    });

    it("a key in the config wins over known_hosts; an unreadable known_hosts is named", () => {
        const c = parseConfig(
            documentedRaw({ hosts: hostsWith((h) => (h[0].hostKey = HOST_KEYS.node2)), sshKnownHostsPath: "kh" }),
            env(knownHosts),
        );
        expect(c.hosts[0].hostKey).to.equal(HOST_KEYS.node2);
        expect(problems(documentedRaw({ sshKnownHostsPath: "missing" }), env(""))).to.deep.equal([
            `sshKnownHostsPath: "missing" cannot be read: ENOENT: no such file, open 'missing'`,
        ]);
    });

    it("accept-new leaves hosts without a key unpinned (recorded at first contact)", () => {
        const c = parseConfig(documentedRaw({ hosts: noKeys(), sshHostKeyPolicy: "accept-new" }));
        expect(c.ssh.hostKeyPolicy).to.equal("accept-new");
        expect(c.hosts.every((h) => h.hostKey === undefined)).to.equal(true);
    });

    it("sshProxy: defaults to the stack's user and port; its key from the config or known_hosts", () => {
        const c = parseConfig(
            documentedRaw({ sshUser: "deploy", sshProxy: JSON.stringify({ host: "192.168.100.2", hostKey: HOST_KEYS.master }) }),
        );
        expect(c.ssh.user).to.equal("deploy");
        expect(c.ssh.proxy).to.deep.equal({ host: "192.168.100.2", port: 22, user: "deploy", hostKey: HOST_KEYS.master });
        const k = parseConfig(
            documentedRaw({ sshProxy: '{"host":"master.danran.com","port":22,"user":"jump"}', sshKnownHostsPath: "kh" }),
            env(knownHosts),
        );
        expect(k.ssh.proxy).to.deep.equal({ host: "master.danran.com", port: 22, user: "jump", hostKey: HOST_KEYS.master });
    });

    it("packageListsMaxAge: seconds or s/m/h/d; 0 = always refresh", () => {
        expect(parseConfig(documentedRaw({ packageListsMaxAge: "30m" })).packageListsMaxAge).to.equal(1800);
        expect(parseConfig(documentedRaw({ packageListsMaxAge: "0" })).packageListsMaxAge).to.equal(0);
        expect([parseDuration("90"), parseDuration("2h"), parseDuration("1d"), parseDuration("-1"), parseDuration("1w")]).to.deep.equal([
            90,
            7200,
            86400,
            undefined,
            undefined,
        ]);
    });
});

describe("validators", () => {
    it("urlProblem accepts good URLs and rejects the notes' typo", () => {
        expect(urlProblem("http://192.168.100.2:2379")).to.equal(undefined);
        expect(urlProblem("https://etcd1:2380/")).to.equal(undefined);
        expect(urlProblem("hhttp://192.168.100.2:2379")).to.match(/scheme "hhttp"/);
        expect(urlProblem("http://bad_host:1")).to.match(/is not an IPv4 address or DNS name/);
        expect(urlProblem("http://etcd1:99999")).to.match(/out of range/);
        expect(urlProblem("192.168.100.2:2379")).to.match(/not a URL/);
    });
    it("isIPv4", () => {
        expect(["0.0.0.0", "192.168.100.2", "255.255.255.255"].every(isIPv4)).to.equal(true);
        expect(["256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "a.b.c.d", ""].some(isIPv4)).to.equal(false);
    });
});

/**
 * A stack file's config as the program receives it (`pulumi.Config.get`): the project's keys, strings as they are,
 * other scalars as text, lists and maps as JSON, and an encrypted (`secure:`) value as the program's "<secret>".
 */
function stackFileRaw(file: string): Record<string, string> {
    // js-yaml is what the Pulumi SDK itself reads YAML with (a dependency of @pulumi/pulumi).
    const yaml = require("js-yaml") as { load(s: string): { config?: Record<string, unknown> } };
    const doc = yaml.load(fs.readFileSync(file, "utf8"));
    const raw: Record<string, string> = {};
    for (const [k, v] of Object.entries(doc.config ?? {})) {
        const [ns, key] = k.split(":");
        expect(ns, `${k}: namespace`).to.equal("host-topology");
        raw[key] =
            (v as { secure?: unknown } | null)?.secure !== undefined ? "<secret>" : typeof v === "object" ? JSON.stringify(v) : String(v);
    }
    return raw;
}

describe("docs/examples/Pulumi.staging.yaml: a team's environment", () => {
    const file = path.join(import.meta.dirname, "..", "..", "docs", "examples", "Pulumi.staging.yaml");
    const raw = stackFileRaw(file);

    it("passes the program's config checks once the key is set as the README says (config set --secret)", () => {
        expect(problems({ ...raw, sshPrivateKey: "<secret>" })).to.deep.equal([]);
        const cfg = parseConfig({ ...raw, sshPrivateKey: "<secret>" });
        expect(cfg.ssh.user, "a non-root user with sudo").to.equal("deploy");
        expect(cfg.ssh.proxy?.host, "a bastion").to.equal("bastion.staging.example.com");
        expect(cfg.ssh.proxy?.hostKey, "the bastion's key pinned").to.match(/^ssh-ed25519 AAAA/);
        expect(cfg.ssh.hostKeyPolicy).to.equal("strict");
        expect(cfg.hosts.map((h) => [h.name, Boolean(h.hostKey)])).to.deep.equal([
            ["master", true],
            ["node1", true],
            ["node2", true],
        ]);
    });

    it("holds no private key, and without the key set the checks say which setting is missing", () => {
        expect(fs.readFileSync(file, "utf8")).to.not.match(/PRIVATE KEY/);
        expect(problems(raw)).to.deep.equal(["sshPrivateKey: set sshPrivateKey (secret) or sshPrivateKeyPath"]);
    });
});

describe("hostsFrom: the hosts list from another stack's output", () => {
    const inline = JSON.parse(documentedRaw().hosts!);
    const spec = { stack: "acme/vms/staging", output: "hosts" };
    const from = (value: unknown, outputs = ["hosts", "vpcId"]) => ({ ...spec, value, outputs });
    const rawFrom = (extra: Record<string, string | undefined> = {}) =>
        documentedRaw({ hosts: undefined, hostsFrom: JSON.stringify(spec), ...extra });

    it("parseHostsFrom: unset, set (output defaults to hosts), and malformed", () => {
        expect(parseHostsFrom(documentedRaw())).to.equal(undefined);
        expect(parseHostsFrom(rawFrom())).to.deep.equal(spec);
        expect(parseHostsFrom(rawFrom({ hostsFrom: '{"stack": "acme/vms/staging"}' }))).to.deep.equal(spec);
        const bad = (hostsFrom: string) => {
            try {
                parseHostsFrom(rawFrom({ hostsFrom }));
            } catch (e) {
                return (e as ConfigError).problems.map((p) => `${p.propertyPath}: ${p.reason}`);
            }
            return [];
        };
        expect(bad('"acme/vms/staging"')).to.deep.equal(["hostsFrom: must be an object {stack: org/project/stack, output?: hosts}"]);
        expect(bad('{"stack": "a b", "output": "1x", "outputs": 1}')).to.deep.equal([
            "hostsFrom.outputs: is not a known hostsFrom property (stack, output)",
            'hostsFrom.stack: must be a stack name such as org/project/stack, got "a b"',
            'hostsFrom.output: must be an output name such as hosts, got "1x"',
        ]);
    });

    it("hosts and hostsFrom together are one error, before the other stack is read", () => {
        expect(() => parseHostsFrom(documentedRaw({ hostsFrom: JSON.stringify(spec) }))).to.throw(
            ConfigError,
            /hostsFrom: and hosts are both set: keep one/,
        );
    });

    it("the other stack's list gives the same topology as the same list inline", () => {
        const a = parseConfig(documentedRaw());
        const b = parseConfig(rawFrom(), { hostsFrom: from(inline) });
        expect(b).to.deep.equal(a);
    });

    it("is validated like the inline list, with the same errors, naming the stack and the output", () => {
        const hosts = JSON.parse(JSON.stringify(inline));
        hosts[1].address = "10.0.0.300";
        hosts.push({ name: "node2", address: "192.168.100.9", roles: ["worker"], hostKey: HOST_KEYS.node2 });
        expect(problems(documentedRaw({ hosts: JSON.stringify(hosts) }))).to.deep.equal([
            'hosts[1].address: must be an IPv4 address, got "10.0.0.300"',
            'hosts[3].roles[0]: unknown role "worker" (known: master, node, etcd, registry)',
            'hosts: host name "node2" is used by more than one host',
        ]);
        expect(problems(rawFrom(), { hostsFrom: from(hosts) })).to.deep.equal([
            'hostsFrom(acme/vms/staging).hosts[1].address: must be an IPv4 address, got "10.0.0.300"',
            'hostsFrom(acme/vms/staging).hosts[3].roles[0]: unknown role "worker" (known: master, node, etcd, registry)',
            'hostsFrom(acme/vms/staging).hosts: host name "node2" is used by more than one host',
        ]);
    });

    it("a host without a pinned key is named with the stack and the output", () => {
        const hosts = JSON.parse(JSON.stringify(inline));
        delete hosts[2].hostKey;
        expect(problems(rawFrom(), { hostsFrom: from(hosts) })).to.deep.equal([
            "hostsFrom(acme/vms/staging).hosts[2].hostKey: no host key pinned for node2 (192.168.100.4): " +
                'set hostsFrom(acme/vms/staging).hosts[2].hostKey to its "ssh-ed25519 AAAA..." line (ssh-keyscan -t ed25519 192.168.100.4), ' +
                "or sshHostKeyPolicy: accept-new",
        ]);
    });

    it("a missing output names the stack's outputs; a value that is not a list says what it is", () => {
        expect(problems(rawFrom(), { hostsFrom: from(undefined) })).to.deep.equal([
            'hostsFrom.output: stack acme/vms/staging has no output "hosts" (its outputs: hosts, vpcId)',
        ]);
        expect(problems(rawFrom(), { hostsFrom: from(undefined, []) })).to.deep.equal([
            'hostsFrom.output: stack acme/vms/staging has no output "hosts" (its outputs: none)',
        ]);
        expect(problems(rawFrom(), { hostsFrom: from("10.0.0.1") })).to.deep.equal([
            'hostsFrom(acme/vms/staging).hosts: must be a non-empty list of {name, address, roles}, got "10.0.0.1"',
        ]);
    });

    it("parseConfig refuses a hostsFrom whose output was not read", () => {
        expect(problems(rawFrom())).to.deep.equal([
            'hostsFrom: the output "hosts" of stack acme/vms/staging was not read (the program reads it before parseConfig)',
        ]);
    });
});

describe("plaintextSecrets: a private key in clear in a stack file", () => {
    const file = (v: string) =>
        `encryptionsalt: v1:abc\nconfig:\n  host-topology:sshUser: deploy\n  host-topology:sshPrivateKey:${v}\n  host-topology:sshPort: "22"\n`;

    it("names sshPrivateKey set without --secret, in each way the CLI writes or a person types it", () => {
        expect(
            plaintextSecrets(
                file(" |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    b3Blbn\n    -----END OPENSSH PRIVATE KEY-----"),
                "host-topology",
            ),
        ).to.deep.equal(["sshPrivateKey"]);
        expect(plaintextSecrets(file(' "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3Blbn"'), "host-topology")).to.deep.equal(["sshPrivateKey"]);
        expect(plaintextSecrets(file(" plainkey # a comment"), "host-topology")).to.deep.equal(["sshPrivateKey"]);
        expect(plaintextSecrets(file("\n    nested: value"), "host-topology")).to.deep.equal(["sshPrivateKey"]);
    });

    it("accepts the encrypted forms and a file without the key", () => {
        expect(plaintextSecrets(file("\n    secure: v1:Hy9cmXJsnOPp4nGE:ToSKAKKF"), "host-topology")).to.deep.equal([]);
        expect(plaintextSecrets(file(" {secure: v1:Hy9cmXJsnOPp4nGE:ToSKAKKF}"), "host-topology")).to.deep.equal([]);
        expect(plaintextSecrets("config:\n  host-topology:sshPrivateKeyPath: .lab/ssh/id_ed25519\n", "host-topology")).to.deep.equal([]);
        expect(plaintextSecrets(file(" x"), "other-project")).to.deep.equal([]);
    });
});
