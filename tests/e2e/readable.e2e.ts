// Readable changes, through the real engine on the lab: a stack deployed by the previous main (base64 stdin) is
// upgraded in place; then `pulumi preview --diff` shows the lines that change on each host, drift shows what
// differs, secrets stay apart, and tools/preview-summary.sh prints the Markdown of a pull request comment.
import { expect } from "chai";
import { Stack } from "@pulumi/pulumi/automation/index.js";
import { engine, onHost, phase, printTimings, sh } from "./util.ts";
import { LAB_DEV_CONFIG, type StackConfig, changedLines, deployedBy, namesWith, preview, resources, up } from "./auto.ts";

const STACK = "e2e-readable";
/** The last commit of main before the parameters became plain text (its steps' stdin is `KEY=<base64>` lines). */
const PREVIOUS_MAIN = "5744b28";
const BASE: StackConfig = { ...LAB_DEV_CONFIG };

/** The `-`/`+` lines of a `--diff` display's property diffs (resource headers and their URNs left out), trimmed. */
function diffLines(out: string): string[] {
    return (
        out
            .split("\n")
            // eslint-disable-next-line no-control-regex -- strips the display's ANSI colour codes (ESC [ ... m)
            .map((l) => l.replace(/\x1b\[[0-9;]*m/g, "").trim())
            .filter((l) => /^[-+] /.test(l) && !/^[-+] [\w-]+:[\w/.-]+:[\w$:/-]+: \(/.test(l) && !l.includes("[urn="))
    );
}

/**
 * What a preview updates, the project's default provider left out: the engine passes the default provider of package
 * host-topology the stack's `host-topology:*` config, so any config change updates it
 * (`pulumi:providers:host-topology::default`), without touching a host.
 */
const updated = (events: Parameters<typeof namesWith>[0]) => namesWith(events, "update").filter((n) => n !== "default");

/** The display's lines between a resource's header and the next header: what it shows of that resource's change. */
function section(out: string, name: string): string {
    // eslint-disable-next-line no-control-regex -- strips the display's ANSI colour codes (ESC [ ... m)
    const lines = out.replace(/\x1b\[[0-9;]*m/g, "").split("\n");
    const start = lines.findIndex((l) => l.includes(`::${name}]`));
    if (start < 0) return "";
    let end = start + 1;
    while (end < lines.length && !/^\s*[-+~] [\w-]+:[\w/.-]+:/.test(lines[end]) && !/^\s*Resources:/.test(lines[end])) end++;
    return lines.slice(start, end).join("\n");
}

describe("end-to-end on the lab: readable changes (plain-text steps, drift diffs, PR summary)", function () {
    this.timeout(0);
    let stack: Stack;

    before(() => phase("lab reset to pristine", () => sh("lab/lab.sh reset")));

    let cleanup = () => {};
    after(() => {
        cleanup();
        printTimings();
    });

    it(`upgrade: a stack deployed by the previous main (${PREVIOUS_MAIN}) re-runs each step once, changes nothing on the hosts, restarts nothing`, async () => {
        const deployed = await phase(`up with the previous main (${PREVIOUS_MAIN})`, () => deployedBy(PREVIOUS_MAIN, STACK, BASE));
        cleanup = deployed.cleanup;
        const old = deployed.old;
        const before = await resources(old);
        const oldStdin = before.find((r) => r.name === "master-time-run")!.outputs.stdin;
        expect(oldStdin, "the previous main's stdin is base64").to.match(/^CONFIG=[A-Za-z0-9+/]+=*$/m);
        const mtimes = () =>
            onHost("node1", "stat -c %Y /etc/chrony/chrony.conf /etc/hosts; systemctl show -p ActiveEnterTimestampMonotonic chrony").stdout;
        const mtimesBefore = mtimes();
        const masterUnits = () =>
            onHost("master", "systemctl show -p ActiveEnterTimestampMonotonic etcd docker-registry nginx chrony").stdout;
        const unitsBefore = masterUnits();

        // The same stack with this code.
        stack = await deployed.here();
        const t0 = Date.now();
        const r = await phase("up with this code (upgrade)", () => up(stack));
        const seconds = (Date.now() - t0) / 1000;
        const runs = namesWith(r.events, "update").filter((n) => n.endsWith("-run"));
        console.log(
            `      upgrade: ${r.changes.update ?? 0} updated (${runs.length} steps re-run), ${r.changes.create ?? 0} created, ${r.changes.delete ?? 0} deleted, ${r.changes.replace ?? 0} replaced, in ${seconds.toFixed(1)}s`,
        );
        expect(runs.sort()).to.deep.equal(
            before
                .filter((x) => x.type === "command:remote:Command" && x.name.endsWith("-run"))
                .map((x) => x.name)
                .sort(),
        );
        // Nothing is replaced; the uploads of that version (one per step) and its readiness Commands give way to one
        // HostScripts per host.
        expect(namesWith(r.events, "replace")).to.deep.equal([]);
        expect(namesWith(r.events, "delete").filter((n) => !/-(upload|lib|ready)$/.test(n) && n !== "default")).to.deep.equal([]);
        // (and the plugin's default provider: that version's HostChecks were dynamic resources; and the Topology
        // component, which the stack's resources move under by their aliases)
        expect(namesWith(r.events, "create").filter((n) => !/-scripts$/.test(n) && n !== "default" && n !== "topology")).to.deep.equal([]);
        expect(await changedLines(stack), "nothing changed on any host").to.deep.equal([]);
        expect(mtimes(), "node1's files untouched, chrony not restarted").to.equal(mtimesBefore);
        expect(masterUnits(), "no service of the master restarted").to.equal(unitsBefore);
        const after = (await resources(stack)).find((x) => x.name === "master-time-run")!.outputs.stdin as string;
        expect(after.split("\n")[0]).to.equal("# host-topology parameters, format 2");
        expect(after).to.contain("\nserver 0.pool.ntp.org iburst\n");
        await phase("preview --refresh --expect-no-changes (upgraded)", () => preview(stack, { refresh: true, expectNoChanges: true }));
    });

    it("a config change previews as exactly the lines that change, under the host's step; no base64 anywhere", async () => {
        // The default servers, then the first one changed (as `pulumi config set --path 'host-topology:timeServers[0]'`).
        const servers = ["ntp.example.org", "1.pool.ntp.org", "2.pool.ntp.org", "3.pool.ntp.org"];
        for (const [i, v] of servers.entries()) await stack.setConfig(`host-topology:timeServers[${i}]`, { value: v }, true);
        try {
            await configChanged();
        } finally {
            await stack.removeConfig("host-topology:timeServers");
        }
        const none = phase("preview-summary.sh (no change)", () => sh(`tools/preview-summary.sh ${STACK}`));
        expect(none.stdout).to.equal(`**\`pulumi preview\` of stack \`${STACK}\`: no changes.** Nothing changes on any host.\n`);
        expect(none.code).to.equal(0);
    });

    async function configChanged() {
        const p = await phase("preview --diff (timeServers[0] changed)", () => preview(stack, { diff: true }));
        expect(updated(p.events)).to.deep.equal(["master-time-check", "master-time-run"]);
        expect(diffLines(section(p.out, "master-time-run"))).to.deep.equal([
            "- server 0.pool.ntp.org iburst",
            "+ server ntp.example.org iburst",
        ]);
        expect(section(p.out, "master-time-run")).to.contain("server 1.pool.ntp.org iburst"); // context
        expect(p.out).not.to.contain(Buffer.from("# Managed by Pulumi").toString("base64").slice(0, 16));
        expect(section(p.out, "master-time-run")).not.to.contain("[secret]");
        // The pull request's summary of the same change.
        const md = phase("preview-summary.sh (a change)", () => sh(`tools/preview-summary.sh ${STACK}`)).stdout;
        console.log(md.replace(/^/gm, "        | "));
        expect(md).to.contain(
            "#### master\n\n- **update** `master-time-run` (time sync)\n- `CONFIG` (chrony.conf / ntp.conf):\n  ```diff\n",
        );
        expect(md).to.contain("  -server 0.pool.ntp.org iburst\n  +server ntp.example.org iburst\n");
        expect(md).to.contain("- service: time daemon restarts");
        expect(md).not.to.contain("#### node1");
    }

    it("drift shows what differs: a file's diff against the wanted content, in preview --refresh --diff and in refresh", async () => {
        onHost("node1", "sed -i 's/^server 192.168.100.2 iburst$/server 10.9.9.9 iburst/' /etc/chrony/chrony.conf");
        const p = await phase("preview --refresh --diff (node1's chrony.conf edited)", () => preview(stack, { refresh: true, diff: true }));
        expect(updated(p.events)).to.deep.equal(["node1-time-check"]);
        const shown = section(p.out, "node1-time-check");
        expect(shown).to.contain("--- /etc/chrony/chrony.conf (on the host)");
        expect(shown).to.contain("+++ /etc/chrony/chrony.conf (wanted)");
        expect(shown).to.match(/-server 10\.9\.9\.9 iburst/);
        expect(shown).to.match(/\+server 192\.168\.100\.2 iburst/);
        const md = sh(`tools/preview-summary.sh ${STACK} --refresh`).stdout;
        expect(md).to.contain("- **drift** found by the refresh, repaired by `pulumi up --refresh` (`node1-time-check`):");
        expect(md).to.contain("    -server 10.9.9.9 iburst\n    +server 192.168.100.2 iburst\n");
        const refresh = phase("pulumi refresh --diff", () => engine(STACK, "refresh --yes --diff --non-interactive"));
        expect(refresh.stdout).to.match(/-server 10\.9\.9\.9 iburst/);
        await phase("up --refresh (repairs)", () => up(stack, { refresh: true }));
        expect(onHost("node1", "grep '^server' /etc/chrony/chrony.conf").stdout).to.equal("server 192.168.100.2 iburst\n");
    });

    it("registryAuth: the htpasswd stays secret while a server name change shows its nginx lines; a secret file's drift shows no content", async () => {
        await stack.setConfig("host-topology:registryAuth", { value: "true" });
        await phase("up: registryAuth on", () => up(stack));
        const secretsFile = onHost("master", "stat -c '%a %U' /var/lib/host-topology/secrets/master-registry").stdout.trim();
        expect(secretsFile).to.equal("600 root");
        const htpasswd = onHost("master", "cat /etc/nginx/.ngxpasswd").stdout;
        expect(htpasswd).to.match(/^registry:\$2[aby]\$/);
        const password = (await stack.outputs()).registryCredentials?.value?.password as string;
        expect(password).to.have.length(32);

        await stack.setConfig("host-topology:registryServerName", { value: "hub.danran.com" });
        const p = await phase("preview --diff (registryServerName changed)", () => preview(stack, { diff: true }));
        const reg = section(p.out, "master-registry-run");
        expect(diffLines(reg)).to.deep.equal(["-     server_name registry.danran.com;", "+     server_name hub.danran.com;"]);
        expect(reg).not.to.contain("[secret]");
        expect(updated(p.events)).not.to.include("master-registry-secrets");
        for (const secret of [htpasswd.trim(), password]) expect(p.out).not.to.contain(secret);
        // The state keeps the secrets encrypted.
        const state = engine(STACK, "stack export").stdout;
        for (const secret of [htpasswd.trim().split(":")[1], password]) expect(state).not.to.contain(secret);
        const md = sh(`tools/preview-summary.sh ${STACK}`).stdout;
        expect(md).to.contain("  -    server_name registry.danran.com;\n  +    server_name hub.danran.com;\n");
        for (const secret of [htpasswd.trim(), password]) expect(md).not.to.contain(secret);
        await stack.removeConfig("host-topology:registryServerName");

        onHost("master", "echo 'intruder:$apr1$tampered' > /etc/nginx/.ngxpasswd");
        const d = await phase("preview --refresh --diff (htpasswd tampered)", () => preview(stack, { refresh: true, diff: true }));
        expect(updated(d.events)).to.deep.equal(["master-registry-check"]);
        expect(d.out).to.contain("/etc/nginx/.ngxpasswd");
        expect(d.out).to.contain("content differs (a secret: not shown)");
        for (const secret of ["intruder", "tampered", htpasswd.trim().split(":")[1]]) expect(d.out).not.to.contain(secret);
        await phase("up --refresh (repairs the htpasswd)", () => up(stack, { refresh: true }));
        expect(onHost("master", "cat /etc/nginx/.ngxpasswd").stdout).to.equal(htpasswd);

        await stack.removeConfig("host-topology:registryAuth");
        await phase("up: registryAuth off", () => up(stack));
        expect(onHost("master", "test -e /var/lib/host-topology/secrets/master-registry", { allowFail: true }).code).to.not.equal(0);
        await phase("preview --refresh --expect-no-changes", () => preview(stack, { refresh: true, expectNoChanges: true }));
    });
});
