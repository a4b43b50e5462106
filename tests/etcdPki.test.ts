// The etcd PKI provider with the real openssl: a CA, member certificates valid for every name and address a
// member is reached by (checked with Node's own X.509 parser and an actual TLS handshake), and updates that
// keep the CA and the certificates of unchanged members.
import { expect } from "chai";
import * as crypto from "crypto";
import * as tls from "tls";
import { AddressInfo } from "net";
import { PkiOutputs, etcdPkiProvider, memberSans } from "../components/etcdPki";
import { parseConfig } from "../components/config";
import { documentedRaw } from "./fixtures";

const cfg = parseConfig(documentedRaw({ etcdTls: "true", etcdMembers: '["master","node1","node2"]' }));
const members = cfg.etcdMembers.map((m) => ({ name: m.name, sans: memberSans(cfg, m) }));

/** A TLS server with `server`'s certificate; a client that trusts `ca`, shows `client` and asks for `host`. */
async function handshake(ca: string, server: { cert: string; key: string }, client: { cert: string; key: string } | undefined, host: string): Promise<string> {
    const srv = tls.createServer({ cert: server.cert, key: server.key, ca, requestCert: true, rejectUnauthorized: true }, (s) => s.end("ok"));
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as AddressInfo).port;
    try {
        return await new Promise<string>((resolve, reject) => {
            const c = tls.connect({ host: "127.0.0.1", port, ca, servername: host.startsWith("IP:") ? undefined : host, checkServerIdentity: (_h, cert) => tls.checkServerIdentity(host.replace(/^IP:/, ""), cert), ...(client ?? {}) });
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
        pki = (await etcdPkiProvider.create!({ members, days: 30 })).outs as PkiOutputs;
    });

    it("member SANs: member name, host name and FQDN, address, localhost", () => {
        expect(members[1].sans).to.deep.equal(["DNS:etcd2", "DNS:localhost", "DNS:node1", "DNS:node1.danran.com", "IP:127.0.0.1", "IP:192.168.100.3"]);
    });

    it("a CA that signed every member certificate and the client certificate, with the right usages", () => {
        const ca = new crypto.X509Certificate(pki.caCert);
        expect(ca.ca).to.equal(true);
        expect(ca.checkPrivateKey(crypto.createPrivateKey(pki.caKey))).to.equal(true);
        for (const m of members) {
            const cert = new crypto.X509Certificate(pki.certs[m.name]);
            expect(cert.ca).to.equal(false);
            expect(cert.verify(ca.publicKey), `${m.name} signed by the CA`).to.equal(true);
            expect(cert.checkIssued(ca)).to.equal(true);
            expect(cert.checkPrivateKey(crypto.createPrivateKey(pki.keys[m.name]))).to.equal(true);
            expect(cert.subject).to.equal(`CN=${m.name}`);
            expect(cert.subjectAltName!.split(", ").sort()).to.deep.equal(m.sans.map((s) => s.replace(/^IP:/, "IP Address:")).sort());
            expect(cert.keyUsage).to.have.members(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]); // serverAuth, clientAuth
        }
        const client = new crypto.X509Certificate(pki.clientCert);
        expect(client.verify(ca.publicKey)).to.equal(true);
        expect(client.keyUsage).to.deep.equal(["1.3.6.1.5.5.7.3.2"]);
        expect(new Set(Object.values(pki.keys)).size).to.equal(3);
    });

    it("TLS handshakes: a member's certificate serves its names and addresses to a client that shows the client certificate", async () => {
        const server = { cert: pki.certs.etcd2, key: pki.keys.etcd2 };
        const client = { cert: pki.clientCert, key: pki.clientKey };
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

    it("an update keeps the CA, the client certificate and unchanged members; a changed member gets a new certificate", async () => {
        const changed = members.map((m) => (m.name === "etcd3" ? { ...m, sans: [...m.sans, "DNS:etcd3.example"] } : m));
        const diff = await etcdPkiProvider.diff!("id", pki, { members: changed, days: 30 });
        expect(diff.changes).to.equal(true);
        expect(diff.replaces).to.deep.equal([]);
        expect((await etcdPkiProvider.diff!("id", pki, { members, days: 30 })).changes).to.equal(false);
        const next = (await etcdPkiProvider.update!("id", pki, { members: changed, days: 30 })).outs as PkiOutputs;
        expect(next.caCert).to.equal(pki.caCert);
        expect(next.caKey).to.equal(pki.caKey);
        expect(next.clientKey).to.equal(pki.clientKey);
        expect(next.certs.etcd1).to.equal(pki.certs.etcd1);
        expect(next.keys.etcd2).to.equal(pki.keys.etcd2);
        expect(next.certs.etcd3).not.to.equal(pki.certs.etcd3);
        expect(new crypto.X509Certificate(next.certs.etcd3).subjectAltName).to.contain("DNS:etcd3.example");
        expect(new crypto.X509Certificate(next.certs.etcd3).verify(new crypto.X509Certificate(pki.caCert).publicKey)).to.equal(true);
        expect(next.members).to.deep.equal(changed);
    });
});
