// URNs are an API: a stack's state knows each resource by its URN (stack, project, parent types, type, name). A
// refactor that changes a URN without an alias to the old one deletes and re-creates that resource on every stack.
// The dev stack's URNs are frozen in tests/golden/dev-urns.txt; the check replays the engine's alias matching.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { recorded, resetRecorded, settle, setupMocks, type Recorded } from "./harness.ts";
setupMocks();
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { type RawConfig, Topology } from "../../components/index.ts";
import { documentedRaw } from "./fixtures.ts";

const ROOT = path.join(import.meta.dirname, "..", "..");
const GOLDEN = path.join(import.meta.dirname, "..", "golden", "dev-urns.txt");
/** The dev stack's URNs before the Topology component (0.2): its resources were the stack's own children. */
const GOLDEN_0_2 = path.join(import.meta.dirname, "..", "golden", "dev-urns-0.2.txt");
const STACK = "dev";
const PROJECT = /^name: (\S+)$/m.exec(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"))![1];

const qualifiedType = (urn: string) => urn.split("::")[2];
const typeOf = (urn: string) => qualifiedType(urn).split("$").pop()!;
const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);

/** resource.CreateURN: the type is qualified by the parent's (all its ancestors' but the root Stack's) types. */
function createUrn(name: string, type: string, parent: string, project = PROJECT, stack = STACK): string {
    const prefix = parent && qualifiedType(parent) !== "pulumi:pulumi:Stack" ? `${qualifiedType(parent)}$` : "";
    return `urn:pulumi:${stack}::${project}::${prefix}${type}::${name}`;
}

/**
 * A `pulumi up` of these resources on a stack whose state holds the `olds` URNs, as the engine's step generator
 * matches them (generateAliases, collapseAliasToUrn, inheritedChildAlias): in registration order, a resource is
 * found under its URN, else under its first alias there; a child of a resource found under an alias also answers
 * to that old URN's children (its name's prefix the parent's old name). Returns the olds left over and the creates.
 */
function replay(olds: string[], res: Recorded[]): { gone: string[]; created: string[] } {
    const state = new Set(olds);
    const urnOf = new Map<string, string>(); // the mock monitor's URN (its parent's own type only) -> the engine's
    const foundAs = new Map<string, string>(); // URN -> the old URN it was found under through an alias
    const found = new Set<string>();
    const created: string[] = [];
    for (const r of res) {
        const parent = r.parent ? urnOf.get(r.parent)! : "";
        const urn = createUrn(r.name, r.type, parent);
        urnOf.set(r.urn, urn);
        const own = r.aliases.map(({ urn: old, spec: s }) => {
            if (!s) return old;
            const p = s.parenturn ? (urnOf.get(s.parenturn) ?? s.parenturn) : parent;
            return createUrn(
                s.name || r.name,
                s.type || r.type,
                s.noparent ? "" : (foundAs.get(p) ?? p),
                s.project || PROJECT,
                s.stack || STACK,
            );
        });
        const parentOld = foundAs.get(parent);
        const inherited = !parentOld
            ? []
            : [urn, ...own].map((a) => {
                  const name = nameOf(a).startsWith(nameOf(parent))
                      ? nameOf(parentOld) + nameOf(a).slice(nameOf(parent).length)
                      : nameOf(a);
                  return createUrn(name, typeOf(a), parentOld);
              });
        const old = [urn, ...own, ...inherited].find((u) => state.has(u));
        if (!old) {
            created.push(urn);
            continue;
        }
        found.add(old);
        if (old !== urn) foundAs.set(urn, old);
    }
    return { gone: olds.filter((u) => !found.has(u)).sort(), created: created.sort() };
}

/** The URNs of these resources, sorted (against an empty state everything is a create). */
const urnsOf = (res: Recorded[]) => replay([], res).created;

/** For a gone URN: the new resource of the same parent and own types most alike by name, as a suggested alias. */
function hint(old: string, gone: string[], created: string[]): string {
    if (gone.some((p) => qualifiedType(old) === `${qualifiedType(p)}$${typeOf(old)}` && nameOf(old).startsWith(nameOf(p)))) {
        return "\n      (its parent is gone too: an alias on the parent covers it)";
    }
    const alike = (a: string, b: string) => {
        let i = 0;
        while (a[i] !== undefined && a[i] === b[i]) i++;
        let j = 0;
        while (j < Math.min(a.length, b.length) - i && a[a.length - 1 - j] === b[b.length - 1 - j]) j++;
        return i + j;
    };
    const twins = created.filter((u) => qualifiedType(u) === qualifiedType(old)).map(nameOf);
    if (!twins.length) return "";
    const twin = twins.reduce((a, b) => (alike(b, nameOf(old)) > alike(a, nameOf(old)) ? b : a));
    return `\n      renamed to "${twin}"? give it aliases: [{ name: "${nameOf(old)}" }]`;
}

/** "" when the resources keep the golden URNs (or alias them); otherwise what changed and how to fix it. */
function urnReport(golden: string[], res: Recorded[]): string {
    const { gone, created } = replay(golden, res);
    if (!gone.length && !created.length) return "";
    return [
        "URNs changed: `pulumi up` would delete these and create those on every existing stack (URNs are an API).",
        ...gone.map((u) => `  - ${u}${hint(u, gone, created)}`),
        ...created.map((u) => `  + ${u}`),
        'Renamed or moved: give the resource its old identity in its options, e.g. aliases: [{ name: "<old name>" }]',
        '({ type: "<old type>" } for a new type, { parent: <old parent> } or { parent: pulumi.rootStackResource } for a',
        "new parent); a child named <parent name>-... follows an aliased parent by itself. A new resource, or a",
        "replacement meant for every stack: UPDATE_GOLDEN=1 npx mocha -g URNs, and review the diff of tests/golden/dev-urns.txt.",
    ].join("\n");
}

/** The dev stack's config (Pulumi.dev.yaml) without its lab files: the key given, the hosts' keys pinned. */
function devRaw(): RawConfig {
    const yaml = fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8");
    const raw: Record<string, string> = {};
    for (const [, key, value] of yaml.matchAll(/^ {2}host-topology:(\w+): (.+)$/gm)) raw[key] = value;
    delete raw.sshPrivateKeyPath;
    delete raw.sshKnownHostsPath;
    const hosts = [...yaml.matchAll(/^ {4}- name: (\S+)\n {6}address: (\S+)/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(
        JSON.parse(documentedRaw().hosts!).map((h: { name: string; address: string }) => `${h.name} ${h.address}`),
        "the fixtures' hosts are the dev stack's",
    ).to.deep.equal(hosts);
    return documentedRaw(raw);
}

async function registered(build: () => void): Promise<Recorded[]> {
    resetRecorded();
    build();
    await settle();
    return [...recorded];
}

/** The dev stack's resources, under mocks whose stack is "dev" as pulumi.getStack() is there; the mocks put back. */
async function devResources(): Promise<Recorded[]> {
    const before = { project: pulumi.getProject(), stack: pulumi.getStack(), preview: pulumi.runtime.isDryRun() };
    setupMocks({ project: PROJECT, stack: STACK });
    try {
        return await registered(() => new Topology("topology", { stackConfig: devRaw(), sshPrivateKey: pulumi.secret("mock-key") }));
    } finally {
        setupMocks(before);
    }
}

describe("URNs of the dev stack (tests/golden/dev-urns.txt)", () => {
    it("every golden URN is still produced, or aliased by a resource; no new URN", async () => {
        const res = await devResources();
        if (process.env.UPDATE_GOLDEN === "1") fs.writeFileSync(GOLDEN, urnsOf(res).join("\n") + "\n");
        const report = urnReport(fs.readFileSync(GOLDEN, "utf8").split("\n").filter(Boolean), res);
        if (report) expect.fail(report);
    });

    it("a stack deployed before the Topology component (0.2) finds every resource under its alias; only the Topology is new", async () => {
        const { gone, created } = replay(fs.readFileSync(GOLDEN_0_2, "utf8").split("\n").filter(Boolean), await devResources());
        expect(gone, "deleted at the upgrade").to.deep.equal([]);
        expect(created).to.deep.equal(["urn:pulumi:dev::host-topology::host-topology:index:Topology::topology"]);
    });

    it("the check: a renamed component fails (it and its children), with an alias on it passes", async () => {
        /** A HostBase-like tree: the component and a child named after it. */
        const tree =
            (
                name: string,
                opts: pulumi.ComponentResourceOptions = {},
                child = `${name}-ready`,
                childOpts: pulumi.CustomResourceOptions = {},
            ) =>
            () => {
                const base = new pulumi.ComponentResource("host-topology:index:HostBase", name, {}, opts);
                new command.remote.Command(child, { connection: { host: "192.0.2.1" }, create: "true" }, { parent: base, ...childOpts });
            };
        const golden = urnsOf(await registered(tree("node2")));
        expect(golden).to.deep.equal([
            "urn:pulumi:dev::host-topology::host-topology:index:HostBase$command:remote:Command::node2-ready",
            "urn:pulumi:dev::host-topology::host-topology:index:HostBase::node2",
        ]);
        const renamed = urnReport(golden, await registered(tree("worker2")));
        for (const u of golden) expect(renamed).to.contain(`  - ${u}`);
        expect(renamed).to.contain('renamed to "worker2"? give it aliases: [{ name: "node2" }]');
        expect(renamed).to.contain("  + urn:pulumi:dev::host-topology::host-topology:index:HostBase::worker2");
        const aliased = { aliases: [{ name: "node2" }] };
        expect(urnReport(golden, await registered(tree("worker2", aliased)))).to.equal("");
        // A child renamed on its own needs its own alias (under the renamed parent, its old name is enough).
        expect(urnReport(golden, await registered(tree("worker2", aliased, "worker2-gate")))).to.contain("node2-ready");
        expect(
            urnReport(golden, await registered(tree("worker2", aliased, "worker2-gate", { aliases: [{ name: "node2-ready" }] }))),
        ).to.equal("");
    });
});
