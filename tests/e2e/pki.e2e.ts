// The program's Pki (a custom resource of the provider plugin) on its own (it needs no host): preview, create, a second up that changes
// nothing, an update in place that keeps the CA and the unchanged certificates, the private keys encrypted in the
// exported state and hidden in stack outputs, destroy.
import { expect } from "chai";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { REPO, destroy, engineProject, exportedState, phase, preview, stackOutputs, up } from "./util.ts";

describe("end-to-end: the Pki on its own (etcdTls/registryTls certificates)", function () {
    this.timeout(0);

    it("creates, keeps, updates in place and keeps the keys secret", async function () {
        const members = path.join(REPO, ".lab/engine-pki-members.json");
        fs.mkdirSync(path.dirname(members), { recursive: true });
        fs.writeFileSync(members, JSON.stringify(["master", "node1", "node2"]));
        const p = engineProject(
            "engine-pki",
            `import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import { parseConfig } from "${REPO}/components/config/index.ts";
import { ETCD_CLIENT_CERT_ID, Pki, etcdCertRequests } from "${REPO}/components/resources/pki.ts";
const hosts = [
    { name: "master", address: "192.168.100.2", roles: ["master", "etcd", "registry"] },
    { name: "node1", address: "192.168.100.3", roles: ["node"] },
    { name: "node2", address: "192.168.100.4", roles: ["node"] },
];
const etcdMembers = fs.readFileSync("${members}", "utf8");
// (certificates only: no host is contacted, so no host keys are pinned)
const cfg = parseConfig({ hosts: JSON.stringify(hosts), sshPrivateKey: "<secret>", sshHostKeyPolicy: "accept-new", etcdTls: "true", etcdMembers });
const pki = new Pki("etcd-pki", { caName: "host-topology etcd CA", certs: etcdCertRequests(cfg) });
export const caCert = pki.caCert;
export const clientKey = pki.certFor(ETCD_CLIENT_CERT_ID).key;
export const issued = pki.issued;
`,
        );
        await phase("engine: preview (Pki)", () => preview(p));
        const first = await phase("engine: up (Pki)", () => up(p));
        expect(first.changes.create).to.equal(2); // the stack and the Pki
        const outs = await stackOutputs(p);
        const ca = new crypto.X509Certificate(outs.caCert);
        expect(ca.subject).to.equal("CN=host-topology etcd CA");
        expect(Object.keys(outs.issued).sort()).to.deep.equal([
            "etcd-client",
            "etcd-member/etcd1",
            "etcd-member/etcd2",
            "etcd-member/etcd3",
        ]);
        for (const cert of Object.values(outs.issued) as string[])
            expect(new crypto.X509Certificate(cert).verify(ca.publicKey)).to.equal(true);

        // Secret: hidden in outputs, encrypted in the state.
        expect((await stackOutputs(p, { showSecrets: false })).clientKey).to.equal("[secret]");
        const state = await exportedState(p);
        const keyLines = (outs.clientKey as string).split("\n").filter((l) => l && !l.startsWith("-----"));
        for (const l of keyLines) expect(state).not.to.contain(l);
        expect(state).to.contain("ciphertext");
        expect(state).to.contain(outs.caCert.split("\n")[1]); // the certificate itself is not secret

        await phase("engine: second up (no changes)", () => up(p, { expectNoChanges: true }));

        // Two more members: an update in place; the CA and the existing certificates stay.
        fs.writeFileSync(
            members,
            JSON.stringify(["master", "node1", "node2", "node1", "node2"].map((h, i) => ({ host: h, name: `etcd${i + 1}` }))),
        );
        const bad = await preview(p, { allowFail: true });
        expect(bad.code).to.not.equal(0); // a host with two members is bad input, named at preview
        expect(bad.out).to.match(/etcdMembers: host "node1" has more than one member/);
        fs.writeFileSync(members, JSON.stringify([{ host: "master" }, { host: "node1", name: "etcd2" }, { host: "node2", name: "etcd9" }]));
        const pre = await preview(p, { diff: true });
        expect(pre.changes.update, pre.out.slice(-2000)).to.equal(1);
        for (const op of ["replace", "create-replacement", "delete-replaced"] as const)
            expect(pre.changes[op] ?? 0, `${op}\n${pre.out.slice(-2000)}`).to.equal(0);
        await phase("engine: up (update)", () => up(p));
        const after = await stackOutputs(p);
        expect(after.caCert).to.equal(outs.caCert);
        expect(after.clientKey).to.equal(outs.clientKey);
        expect(after.issued["etcd-member/etcd1"]).to.equal(outs.issued["etcd-member/etcd1"]);
        expect(after.issued["etcd-member/etcd9"]).to.be.a("string");
        expect(after.issued).not.to.have.property("etcd-member/etcd3");
        await phase("engine: destroy (Pki)", () => destroy(p));
    });
});
