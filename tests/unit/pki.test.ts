// The PKI provider with the real openssl: a CA, etcd member certificates valid for every name and address a
// member is reached by and the registry's server certificate (checked with Node's own X.509 parser and actual
// TLS handshakes), and updates that keep the CA and the certificates whose requests did not change.
import { expect } from "chai";
import * as crypto from "crypto";
import * as tls from "tls";
import { type AddressInfo } from "net";
import type { PkiInputs, PkiOutputs } from "../../contract/resources.ts";
import { etcdCertRequests, etcdMemberCertId, registryCertRequest } from "../../components/resources/pki.ts";
import { pkiOps } from "../../provider/pki.ts";
import { parseConfig } from "../../components/config/index.ts";
import { documentedRaw } from "./fixtures.ts";

const cfg = parseConfig(documentedRaw({ etcdTls: "true", etcdMembers: '["master","node1","node2"]' }));
const requests = [...etcdCertRequests(cfg), registryCertRequest(cfg, cfg.registry!)];
const inputs: PkiInputs = { caName: "test CA", certs: requests, days: 30 };
const members = requests.filter((r) => r.id.startsWith("etcd-member/")).map((r) => ({ name: r.cn, sans: r.sans }));
const cert = (p: PkiOutputs, id: string) => ({ cert: p.issued[id], key: p.keys[id] });

/** A TLS server with `server`'s certificate; a client that trusts `ca`, shows `client` and asks for `host`. */
async function handshake(
    ca: string,
    server: { cert: string; key: string },
    client: { cert: string; key: string } | undefined,
    host: string,
): Promise<string> {
    const srv = tls.createServer({ cert: server.cert, key: server.key, ca, requestCert: true, rejectUnauthorized: true }, (s) =>
        s.end("ok"),
    );
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as AddressInfo).port;
    try {
        return await new Promise<string>((resolve, reject) => {
            const c = tls.connect({
                host: "127.0.0.1",
                port,
                ca,
                servername: host.startsWith("IP:") ? undefined : host,
                checkServerIdentity: (_h, cert) => tls.checkServerIdentity(host.replace(/^IP:/, ""), cert),
                ...(client ?? {}),
            });
            let got = "";
            c.on("data", (d) => (got += d));
            c.on("end", () => resolve(got));
            c.on("error", reject);
        });
    } finally {
        srv.close();
    }
}

describe("etcd PKI (openssl)", function () {
    this.timeout(60000);
    let pki: PkiOutputs;
    before(async () => {
        pki = (await pkiOps.create!(inputs)).outs as PkiOutputs;
    });

    it("member SANs: member name, host name and FQDN, address, localhost", () => {
        expect(members[1].sans).to.deep.equal([
            "DNS:etcd2",
            "DNS:localhost",
            "DNS:node1",
            "DNS:node1.danran.com",
            "IP:127.0.0.1",
            "IP:192.168.100.3",
        ]);
    });

    it("a CA that signed every member certificate, the client certificate and the registry's, with the right usages", () => {
        const ca = new crypto.X509Certificate(pki.caCert);
        expect(ca.ca).to.equal(true);
        expect(ca.subject).to.equal("CN=test CA");
        expect(ca.checkPrivateKey(crypto.createPrivateKey(pki.caKey))).to.equal(true);
        for (const m of members) {
            const cert = new crypto.X509Certificate(pki.issued[etcdMemberCertId(m.name)]);
            expect(cert.ca).to.equal(false);
            expect(cert.verify(ca.publicKey), `${m.name} signed by the CA`).to.equal(true);
            expect(cert.checkIssued(ca)).to.equal(true);
            expect(cert.checkPrivateKey(crypto.createPrivateKey(pki.keys[etcdMemberCertId(m.name)]))).to.equal(true);
            expect(cert.subject).to.equal(`CN=${m.name}`);
            expect(cert.subjectAltName!.split(", ").sort()).to.deep.equal(m.sans.map((s) => s.replace(/^IP:/, "IP Address:")).sort());
            expect(cert.keyUsage).to.have.members(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]); // serverAuth, clientAuth
        }
        const client = new crypto.X509Certificate(pki.issued["etcd-client"]);
        expect(client.verify(ca.publicKey)).to.equal(true);
        expect(client.keyUsage).to.deep.equal(["1.3.6.1.5.5.7.3.2"]);
        const registry = new crypto.X509Certificate(pki.issued.registry);
        expect(registry.verify(ca.publicKey)).to.equal(true);
        expect(registry.keyUsage).to.deep.equal(["1.3.6.1.5.5.7.3.1"]);
        expect(registry.subjectAltName).to.contain("DNS:registry.danran.com");
        expect(new Set(Object.values(pki.keys)).size).to.equal(5);
    });

    it("TLS handshakes: a member's certificate serves its names and addresses to a client that shows the client certificate", async () => {
        const server = cert(pki, "etcd-member/etcd2");
        const client = cert(pki, "etcd-client");
        for (const name of ["etcd2", "node1.danran.com", "IP:192.168.100.3"]) {
            expect(await handshake(pki.caCert, server, client, name), name).to.equal("ok");
        }
        // Another member's name is not this certificate's; a client without a certificate is refused.
        let err = "";
        await handshake(pki.caCert, server, client, "etcd3").catch((e) => (err = String(e)));
        expect(err).to.match(/altnames|Hostname\/IP does not match/i);
        const refused = await handshake(pki.caCert, server, undefined, "etcd2").then(
            (r) => `accepted: ${r}`,
            (e) => String(e),
        );
        expect(refused).not.to.equal("accepted: ok");
    });

    it("the registry's certificate serves registry.danran.com and the master's address", async () => {
        for (const name of ["registry.danran.com", "registry", "IP:192.168.100.2"]) {
            expect(await handshake(pki.caCert, cert(pki, "registry"), cert(pki, "etcd-client"), name), name).to.equal("ok");
        }
    });

    it("an update keeps the CA and the unchanged certificates; a changed request gets a new one; a new CA name replaces", async () => {
        const id3 = etcdMemberCertId("etcd3");
        const changed = requests.map((r) => (r.id === id3 ? { ...r, sans: [...r.sans, "DNS:etcd3.example"] } : r));
        const diff = await pkiOps.diff!("id", pki, { ...inputs, certs: changed });
        expect(diff.changes).to.equal(true);
        expect(diff.replaces).to.deep.equal([]);
        expect((await pkiOps.diff!("id", pki, inputs)).changes).to.equal(false);
        expect((await pkiOps.diff!("id", pki, { ...inputs, caName: "other CA" })).replaces).to.deep.equal(["caName"]);
        const next = (await pkiOps.update!("id", pki, { ...inputs, certs: changed })).outs as PkiOutputs;
        expect(next.caCert).to.equal(pki.caCert);
        expect(next.caKey).to.equal(pki.caKey);
        for (const id of Object.keys(pki.issued).filter((i) => i !== id3)) {
            expect(next.issued[id], id).to.equal(pki.issued[id]);
            expect(next.keys[id], id).to.equal(pki.keys[id]);
        }
        expect(next.issued[id3]).not.to.equal(pki.issued[id3]);
        expect(new crypto.X509Certificate(next.issued[id3]).subjectAltName).to.contain("DNS:etcd3.example");
        expect(new crypto.X509Certificate(next.issued[id3]).verify(new crypto.X509Certificate(pki.caCert).publicKey)).to.equal(true);
        expect(next.certs).to.deep.equal(changed);
        // A request that is gone takes its certificate with it.
        const fewer = (await pkiOps.update!("id", next, { ...inputs, certs: changed.filter((r) => r.id !== "registry") }))
            .outs as PkiOutputs;
        expect(Object.keys(fewer.issued)).not.to.include("registry");
        expect(Object.keys(fewer.keys)).not.to.include("registry");
    });
});
