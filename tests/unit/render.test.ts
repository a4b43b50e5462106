import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { parseConfig } from "../../components/config/index.ts";
import {
    renderEtcdEnv,
    renderHostsBlock,
    renderNginxSite,
    renderRegistryConfig,
    renderTimeConfig,
    timePlan,
} from "../../components/render.ts";
import { documentedRaw } from "./fixtures.ts";

const GOLDEN = path.join(import.meta.dirname, "..", "golden");

/** Compares with tests/golden/<name>; UPDATE_GOLDEN=1 rewrites the file (review the diff before committing). */
function golden(name: string, actual: string): void {
    const file = path.join(GOLDEN, name);
    if (process.env.UPDATE_GOLDEN === "1") fs.writeFileSync(file, actual);
    expect(actual, `golden file ${name}`).to.equal(fs.readFileSync(file, "utf8"));
}

const cfg = parseConfig(documentedRaw());
const served = parseConfig(documentedRaw({ timeServeFromMaster: "true" }));
const host = (c: typeof cfg, n: string) => c.hosts.find((h) => h.name === n)!;

describe("rendered files (golden)", () => {
    it("/etc/hosts block: every host with FQDN; the master also etcd1, registry, registry.danran.com", () => {
        const block = renderHostsBlock(cfg);
        golden("hosts-block.txt", block);
        expect(block.split("\n")).to.include.members([
            "192.168.100.2 master.danran.com master etcd1 registry registry.danran.com",
            "192.168.100.3 node1.danran.com node1",
            "192.168.100.4 node2.danran.com node2",
        ]);
        expect(block).not.to.contain("danram");
    });

    it("registry config.yml has the documented values", () => {
        const yml = renderRegistryConfig("/var/lib/registry");
        golden("registry-config.yml", yml);
        for (const line of [
            "version: 0.1",
            "    service: registry",
            "    layerinfo: inmemory",
            "    rootdirectory: /var/lib/registry",
            "  addr: 127.0.0.1:5000",
        ]) {
            expect(yml.split("\n")).to.include(line);
        }
    });

    it("nginx site has every documented directive and the registry recipe headers, no \\\\ annotations", () => {
        const conf = renderNginxSite("registry.danran.com", false);
        golden("nginx-registry.conf", conf);
        const directives = conf.split("\n").map((l) => l.trim());
        for (const d of [
            "listen 80;",
            "server_name registry.danran.com;",
            "client_max_body_size 0;",
            "location / {",
            "proxy_pass http://127.0.0.1:5000;",
            "proxy_next_upstream error timeout invalid_header http_500 http_502 http_503 http_504;",
            "proxy_redirect off;",
            "proxy_buffering off;",
            "proxy_set_header Host $host;",
            "proxy_set_header X-Real-IP $remote_addr;",
            "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
            "proxy_set_header X-Forwarded-Proto $scheme;",
            "chunked_transfer_encoding on;",
            "proxy_read_timeout 900;",
        ]) {
            expect(directives, d).to.include(d);
        }
        expect(conf).to.match(/add_header Docker-Distribution-Api-Version \S+ always;/);
        expect(conf).not.to.contain("\\\\");
        expect(conf).not.to.match(/^\s*auth_basic/m);
    });

    it("nginx site with basic auth", () => {
        const conf = renderNginxSite("registry.danran.com", true);
        golden("nginx-registry-auth.conf", conf);
        expect(conf).to.contain('auth_basic "Registry realm";');
        expect(conf).to.contain("auth_basic_user_file /etc/nginx/.ngxpasswd;");
    });

    it("nginx site with TLS (registryTls): https on 443 with the certificate, port 80 sends to https", () => {
        const conf = renderNginxSite("registry.danran.com", false, true);
        golden("nginx-registry-tls.conf", conf);
        expect(conf).to.contain(
            "    listen 443 ssl;\n    server_name registry.danran.com;\n    ssl_certificate /etc/nginx/tls/registry.crt;\n    ssl_certificate_key /etc/nginx/tls/registry.key;\n",
        );
        expect(conf).to.contain("    listen 80;\n    server_name registry.danran.com;\n    return 301 https://$host$request_uri;\n");
        expect(conf.match(/proxy_pass http:\/\/127\.0\.0\.1:5000;/g)).to.have.length(1);
        expect(renderNginxSite("registry.danran.com", false)).not.to.match(/ssl|443/);
    });

    it("chrony: public servers by default on every host", () => {
        for (const n of ["master", "node1"]) {
            const conf = renderTimeConfig("chrony", timePlan(cfg, host(cfg, n)));
            expect(conf).to.contain("server 0.pool.ntp.org iburst");
            expect(conf).not.to.contain("allow");
        }
    });

    it("chrony: the master serves the nodes, the nodes sync from the master only", () => {
        const m = renderTimeConfig("chrony", timePlan(served, host(served, "master")));
        const n = renderTimeConfig("chrony", timePlan(served, host(served, "node1")));
        golden("chrony-master-serving.conf", m);
        golden("chrony-node-from-master.conf", n);
        expect(m).to.contain("allow 192.168.100.3\nallow 192.168.100.4\nlocal stratum 10");
        expect(n.split("\n").filter((l) => l.startsWith("server"))).to.deep.equal(["server 192.168.100.2 iburst"]);
    });

    it("ntp: the master serves the nodes", () => {
        const m = renderTimeConfig("ntp", timePlan(served, host(served, "master")));
        golden("ntp-master-serving.conf", m);
        expect(m).to.contain("restrict 192.168.100.4 mask 255.255.255.255 nomodify notrap");
    });

    it("etcd: the documented single member etcd1 (with ETCD_LISTEN_PEER_URLS, not the notes' typo)", () => {
        const env = renderEtcdEnv(cfg.etcdMembers[0], cfg.etcdMembers, "tok3n");
        golden("etcd-etcd1.env", env);
        for (const line of [
            'ETCD_NAME="etcd1"',
            'ETCD_DATA_DIR="/var/lib/etcd/etcd1.etcd"',
            'ETCD_LISTEN_CLIENT_URLS="http://192.168.100.2:2379"',
            'ETCD_ADVERTISE_CLIENT_URLS="http://192.168.100.2:2379"',
            'ETCD_INITIAL_CLUSTER="etcd1=http://etcd1:2380"',
            'ETCD_INITIAL_ADVERTISE_PEER_URLS="http://etcd1:2380"',
            'ETCD_LISTEN_PEER_URLS="http://192.168.100.2:2380"',
            'ETCD_INITIAL_CLUSTER_TOKEN="tok3n"',
        ]) {
            expect(env.split("\n")).to.include(line);
        }
        expect(env).not.to.match(/hhttp|LISTEN_PEER_USER|\\\\/);
    });

    it("etcd with etcdTls: https URLs, client and peer certificates required", () => {
        const c = parseConfig(documentedRaw({ etcdTls: "true" }));
        const env = renderEtcdEnv(c.etcdMembers[0], c.etcdMembers, "tok3n", true);
        golden("etcd-etcd1-tls.env", env);
        for (const line of [
            'ETCD_LISTEN_CLIENT_URLS="https://192.168.100.2:2379"',
            'ETCD_INITIAL_CLUSTER="etcd1=https://etcd1:2380"',
            'ETCD_CERT_FILE="/etc/etcd/pki/member.crt"',
            'ETCD_KEY_FILE="/etc/etcd/pki/member.key"',
            'ETCD_TRUSTED_CA_FILE="/etc/etcd/pki/ca.crt"',
            'ETCD_CLIENT_CERT_AUTH="true"',
            'ETCD_PEER_CERT_FILE="/etc/etcd/pki/member.crt"',
            'ETCD_PEER_KEY_FILE="/etc/etcd/pki/member.key"',
            'ETCD_PEER_TRUSTED_CA_FILE="/etc/etcd/pki/ca.crt"',
            'ETCD_PEER_CLIENT_CERT_AUTH="true"',
        ]) {
            expect(env.split("\n")).to.include(line);
        }
        expect(renderEtcdEnv(cfg.etcdMembers[0], cfg.etcdMembers, "tok3n")).not.to.contain("CERT");
    });

    it("etcd: three members list each other in ETCD_INITIAL_CLUSTER", () => {
        const c = parseConfig(documentedRaw({ etcdMembers: '["master","node1","node2"]' }));
        const env = renderEtcdEnv(c.etcdMembers[1], c.etcdMembers, "tok3n");
        golden("etcd-etcd2-of-3.env", env);
        expect(env).to.contain('ETCD_INITIAL_CLUSTER="etcd1=http://etcd1:2380,etcd2=http://etcd2:2380,etcd3=http://etcd3:2380"');
        expect(env).to.contain('ETCD_LISTEN_PEER_URLS="http://192.168.100.3:2380"');
        expect(renderHostsBlock(c)).to.contain("192.168.100.4 node2.danran.com node2 etcd3\n");
    });
});
