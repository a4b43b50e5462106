import { expect } from "chai";
import { hostCheckProvider, parseCheckOutput } from "../components/hostCheck";

const conn = { host: "192.0.2.10", port: 22, user: "root", privateKey: "k" };
const props = (drift: Record<string, string>, stdin = "A=Yg==\n") => ({ connection: conn, script: "bash /x/etcd.sh", files: { "/x/etcd.sh": "0".repeat(64) }, sourceDir: "components/scripts", stdin, drift });

describe("HostCheck (drift detection)", () => {
    it("parses `drift <item> <reason>` lines and ignores the rest", () => {
        const out = "ok etcd family=debian12\ndrift /etc/default/etcd content differs\nunchanged x\ndrift service:etcd disabled,inactive\n";
        expect(parseCheckOutput(out)).to.deep.equal({ "/etc/default/etcd": "content differs", "service:etcd": "disabled,inactive" });
        expect(parseCheckOutput("ok etcd\n")).to.deep.equal({});
    });

    it("diff: no changes without drift, so plain preview shows nothing and needs no host", async () => {
        const d = await hostCheckProvider.diff!("id", props({}), props({}));
        expect(d.changes).to.equal(false);
    });

    it("diff: drift found by a refresh shows as a change of `drift` (repaired by update)", async () => {
        const d = await hostCheckProvider.diff!("id", props({ "/etc/hosts": "managed block differs" }), props({}));
        expect(d.changes).to.equal(true);
        expect(d.replaces).to.deep.equal([]);
    });

    it("diff: new parameters are a change too (the step re-applied them)", async () => {
        const d = await hostCheckProvider.diff!("id", props({}), props({}, "A=Yw==\n"));
        expect(d.changes).to.equal(true);
    });
});
