// tools/previewSummary.ts on preview JSON of the shape `pulumi preview --json` prints (the e2e suite runs it on
// the lab's real previews): Markdown per host, file diffs, services, creates and deletes, drift, secrets masked; with
// --host, of those hosts only (the e2e suite runs tools/preview-summary.sh --host through the real engine).
import { expect } from "chai";
import * as cp from "child_process";
import * as path from "path";
import { encodeParams } from "../../contract/params.ts";
import { lineDiff, type PreviewJson, summarize } from "../../tools/previewSummary.ts";

const urn = (type: string, name: string) => `urn:pulumi:dev::host-topology::${type}::${name}`;
const CHRONY = "# Managed by Pulumi\nserver 0.pool.ntp.org iburst\nserver 1.pool.ntp.org iburst\nmakestep 1.0 3\n";
const base = (host: string) => ({ op: "same", urn: urn("host-topology:index:HostBase", host) });
const run = (comp: string, name: string, olds: Record<string, string>, news: Record<string, string>, op = "update") => ({
    op,
    urn: urn(`host-topology:index:${comp}$command:remote:Command`, name),
    oldState: { inputs: { stdin: encodeParams({ OWNER: "p/s/x", ...olds }) } },
    newState: { inputs: { stdin: encodeParams({ OWNER: "p/s/x", ...news }) } },
    diffReasons: ["stdin"],
});

/** node1's section when its chrony.conf changes its first server (the first tests' preview). */
const NODE1 = [
    "#### node1",
    "",
    "- **update** `node1-time-run` (time sync)",
    "- `CONFIG` (chrony.conf / ntp.conf):",
    "  ```diff",
    "  @@ -1,4 +1,4 @@",
    "   # Managed by Pulumi",
    "  -server 0.pool.ntp.org iburst",
    "  +server ntp.example.org iburst",
    "   server 1.pool.ntp.org iburst",
    "   makestep 1.0 3",
    "  ```",
    "- service: time daemon restarts",
    "",
];

describe("preview summary (tools/previewSummary.ts)", () => {
    it("a line diff with context, as in a unified diff", () => {
        expect(lineDiff("a\nb\nc\n", "a\nB\nc\n")).to.equal("@@ -1,3 +1,3 @@\n a\n-b\n+B\n c");
        expect(lineDiff("x\n", "x\n")).to.equal("");
        expect(lineDiff("x", "x\n")).to.equal("@@ -1,1 +1,1 @@\n x\n\\ final newline added");
        const long = Array.from({ length: 20 }, (_, i) => `l${i}`).join("\n") + "\n";
        expect(lineDiff(long, long.replace("l10\n", "L10\n"))).to.equal("@@ -8,7 +8,7 @@\n l7\n l8\n l9\n-l10\n+L10\n l11\n l12\n l13");
    });

    it("per host: the step, the changed lines of its file in a diff block, the service it restarts", () => {
        const md = summarize(
            {
                steps: [
                    base("master"),
                    base("node1"),
                    run(
                        "TimeSync",
                        "node1-time-run",
                        { IMPL: "chrony", CONFIG: CHRONY },
                        { IMPL: "chrony", CONFIG: CHRONY.replace("0.pool.ntp.org", "ntp.example.org") },
                    ),
                    { op: "same", urn: urn("host-topology:index:TimeSync$command:remote:Command", "master-time-run") },
                ],
                changeSummary: { same: 40, update: 1 },
            },
            "dev",
        );
        expect(md).to.equal(["### `pulumi preview` of stack `dev`: 1 to update", "", ...NODE1].join("\n"));
    });

    it("secrets masked: a secret parameter's change is named, never shown; a [secret] stdin is not decoded", () => {
        const md = summarize(
            {
                steps: [
                    base("master"),
                    run(
                        "PrivateRegistry",
                        "master-registry-run",
                        { NGINX_CONF: "server_name a;\n", SECRETS_DIGEST: "0ld0d1gest" },
                        { NGINX_CONF: "server_name b;\n", SECRETS_DIGEST: "n3wd1gest" },
                    ),
                    {
                        op: "update",
                        urn: urn("host-topology:index:PrivateRegistry$command:remote:Command", "master-registry-secrets"),
                        oldState: { inputs: { stdin: "[secret]" } },
                        newState: { inputs: { stdin: "[secret]" } },
                        diffReasons: ["stdin"],
                    },
                    {
                        op: "update",
                        urn: urn("host-topology:index:EtcdMember$command:remote:Command", "master-etcd1-run"),
                        oldState: { inputs: { stdin: "[secret]" } },
                        newState: { inputs: { stdin: "[secret]" } },
                    },
                ],
            },
            "dev",
        );
        expect(md).to.contain("- `master-registry-secrets`: secret parameters change (not shown)");
        expect(md).to.contain("- secret parameters change (not shown)");
        expect(md).to.contain("  -server_name a;\n  +server_name b;");
        expect(md).to.contain("- service: nginx reloads");
        expect(md).to.contain("- **update** `master-etcd1-run` (etcd member)\n  - its parameters are not known yet or are secret");
        expect(md).not.to.match(/0ld0d1gest|n3wd1gest/);
    });

    it("resources created and deleted, under their host; components themselves are not listed", () => {
        const md = summarize(
            {
                steps: [
                    base("master"),
                    { op: "create", urn: urn("host-topology:index:HostBase", "node3") },
                    { op: "create", urn: urn("host-topology:index:HostBase$command:remote:Command", "node3-hosts-run") },
                    { op: "create", urn: urn("host-topology:index:HostBase$host-topology:index:HostCheck", "node3-hosts-check") },
                    { op: "delete", urn: urn("host-topology:index:TimeSync$command:remote:Command", "master-time-run") },
                    { op: "create", urn: urn("host-topology:index:EtcdMember$command:remote:Command", "lab-node2-infra0-run") },
                ],
            },
            "dev",
        );
        expect(md).to.contain("#### node3\n\n- **create** `node3-hosts-run` (command:remote:Command)\n");
        expect(md).to.contain("#### master\n\n- **delete** `master-time-run` (command:remote:Command)\n");
        expect(md).not.to.contain("host-topology:index:HostBase)");
        expect(md).not.to.contain("node3-hosts-check");
        expect(md.indexOf("#### master")).to.be.lessThan(md.indexOf("#### node3"));
        expect(md).to.contain("#### lab-node2\n\n- **create** `lab-node2-infra0-run`");
    });

    it("drift found by --refresh: each item, a file's diff in a diff block", () => {
        const md = summarize(
            {
                steps: [
                    base("node1"),
                    {
                        op: "update",
                        urn: urn("host-topology:index:TimeSync$host-topology:index:HostCheck", "node1-time-check"),
                        oldState: {
                            outputs: {
                                drift: {
                                    "/etc/chrony/chrony.conf":
                                        "content differs:\n--- a (on the host)\n+++ a (wanted)\n@@ -1 +1 @@\n-server x\n+server y\n",
                                    "service:chrony": "disabled,inactive (want enabled,active)",
                                },
                            },
                        },
                        newState: { outputs: { drift: {} } },
                    },
                ],
            },
            "dev",
        );
        expect(md).to.contain(
            [
                "- **drift** found by the refresh, repaired by `pulumi up --refresh` (`node1-time-check`):",
                "  - `/etc/chrony/chrony.conf`: content differs:",
                "    ```diff",
                "    --- a (on the host)",
                "    +++ a (wanted)",
                "    @@ -1 +1 @@",
                "    -server x",
                "    +server y",
                "    ```",
                "  - `service:chrony`: disabled,inactive (want enabled,active)",
            ].join("\n"),
        );
    });

    it("one line when nothing changes; a failed preview says so", () => {
        expect(summarize({ steps: [base("master"), base("node1")], changeSummary: { same: 54 } }, "dev")).to.equal(
            "**`pulumi preview` of stack `dev`: no changes.** Nothing changes on any host.\n",
        );
        const failed = summarize({ steps: [], diagnostics: [{ severity: "error", message: "hosts[1].address: not an IP\n" }] }, "dev");
        expect(failed).to.contain("**The preview failed:**\n\n> hosts[1].address: not an IP");
    });

    describe("--host: one host's changes, or a few hosts'", () => {
        // master, node1 and node2 change, and so does a resource of the stack's own (no host's).
        const preview: PreviewJson = {
            steps: [
                base("master"),
                base("node1"),
                base("node2"),
                run("TimeSync", "master-time-run", { CONFIG: CHRONY }, { CONFIG: CHRONY.replace("makestep 1.0 3", "makestep 1.0 -1") }),
                run("TimeSync", "node1-time-run", { CONFIG: CHRONY }, { CONFIG: CHRONY.replace("0.pool.ntp.org", "ntp.example.org") }),
                { op: "same", urn: urn("host-topology:index:TimeSync$command:remote:Command", "node2-time-run") },
                { op: "replace", urn: urn("pulumi-nodejs:dynamic/host-topology:HostKey", "node2-hostkey"), diffReasons: ["address"] },
                { op: "create-replacement", urn: urn("pulumi-nodejs:dynamic/host-topology:HostKey", "node2-hostkey") },
                { op: "update", urn: urn("random:index/randomString:RandomString", "etcd-cluster-token"), diffReasons: ["length"] },
            ],
            changeSummary: { same: 30, update: 3, replace: 1 },
        };

        it("one host: only its changes, the header says which host and counts its steps", () => {
            const header = "### `pulumi preview` of stack `dev` (filtered to hosts: node1): 1 to update";
            expect(summarize(preview, "dev", ["node1"])).to.equal([header, "", ...NODE1].join("\n"));
        });

        it("two hosts: theirs, in the preview's order; the other host's and the stack's own are left out", () => {
            const md = summarize(preview, "dev", ["node2", "master"]);
            expect(md.split("\n")[0]).to.equal(
                "### `pulumi preview` of stack `dev` (filtered to hosts: node2, master): 1 to update, 1 to replace",
            );
            expect(md).to.contain("#### master\n\n- **update** `master-time-run` (time sync)\n");
            expect(md).to.contain("#### node2\n\n- **replace** `node2-hostkey` (pulumi-nodejs:dynamic/host-topology:HostKey): `address`\n");
            expect(md.indexOf("#### master")).to.be.lessThan(md.indexOf("#### node2"));
            expect(md).not.to.match(/node1|etcd-cluster-token|\(stack\)|no changes/);
        });

        it("a host with no changes (or none of the preview's) is no error, but said", () => {
            expect(summarize(preview, "dev", ["node9"])).to.equal(
                "**`pulumi preview` of stack `dev` (filtered to hosts: node9): no changes.**\n\n- no changes for node9\n",
            );
            const header = "### `pulumi preview` of stack `dev` (filtered to hosts: node1, node9): 1 to update";
            expect(summarize(preview, "dev", ["node1", "node9"])).to.equal([header, "", "- no changes for node9", "", ...NODE1].join("\n"));
            // A failed preview's steps are not all there: no host is said to be unchanged.
            const failed = summarize({ ...preview, diagnostics: [{ severity: "error", message: "boom" }] }, "dev", ["node9"]);
            expect(failed).to.contain("(filtered to hosts: node9)");
            expect(failed).to.contain("**The preview failed:**\n\n> boom");
            expect(failed).not.to.contain("no changes for");
        });

        it("without --host: every host and the stack's own, the preview's counts", () => {
            const md = summarize(preview, "dev");
            expect(summarize(preview, "dev", [])).to.equal(md);
            expect(md.split("\n")[0]).to.equal("### `pulumi preview` of stack `dev`: 3 to update, 1 to replace");
            expect([...md.matchAll(/^#### (.+)$/gm)].map((m) => m[1])).to.deep.equal(["master", "node1", "node2", "(stack)"]);
            expect(md).to.contain("#### (stack)\n\n- **update** `etcd-cluster-token` (random:index/randomString:RandomString): `length`\n");
            expect(md).not.to.match(/filtered|no changes/);
        });

        describe("tools/preview-summary.sh: usage", () => {
            const SCRIPT = path.resolve(import.meta.dirname, "../../tools/preview-summary.sh");
            const sh = (...args: string[]) => {
                const r = cp.spawnSync("bash", [SCRIPT, ...args], { encoding: "utf8", timeout: 60000 });
                return { code: r.status, stdout: r.stdout, stderr: r.stderr };
            };

            it("a --host without a name, or with an empty one, is a usage error (status 2) before any preview", () => {
                for (const args of [
                    ["dev", "--host"],
                    ["dev", "--host", ""],
                    ["dev", "--host="],
                    ["dev", "--host", "--refresh"],
                    ["--host"],
                ]) {
                    const r = sh(...args);
                    const what = args.join(" ");
                    expect(r.code, what).to.equal(2);
                    expect(r.stderr, what).to.match(
                        /^preview-summary: --host.*\(usage: tools\/preview-summary\.sh \[STACK\] \[--host NAME\]/,
                    );
                    expect(r.stdout, what).to.equal("");
                }
            });
        });
    });
});
