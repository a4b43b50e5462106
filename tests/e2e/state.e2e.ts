// State for a team: two checkouts of the repo (two operators) share a stack in PostgreSQL
// (tests/e2e/state-server.sh): migration from the file backend, the same outputs and no changes for the second
// operator, the backend's lock when both run `up` at once, the database stopped in the middle of an `up`, no
// plaintext secret in any row, and bad backend URLs that fail fast naming the host, never the password.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import {
    HOSTS,
    type Json,
    REPO,
    type Running,
    type StackSpec,
    destroy,
    engine,
    exportedState,
    killGroup,
    onHost,
    phase,
    preview,
    sh,
    spawnPulumi,
    stackOutputs,
    up,
} from "./util.ts";

const WORK = path.join(REPO, ".lab/team");
const STACK = "e2e-team";
const KEY = path.join(REPO, ".lab/ssh/id_ed25519");
const PGPASS = path.join(REPO, ".state-server/pgpass");

/** A checkout of the repo as an operator has it: the tracked files (and new ones not ignored), its own stack file. */
function checkout(name: string): string {
    const dir = path.join(WORK, name);
    sh(`rm -rf ${dir} && mkdir -p ${dir}/.lab && git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -C ${dir} -xf -`);
    sh(`ln -s ${REPO}/node_modules ${dir}/node_modules && ln -s ${REPO}/.lab/ssh ${dir}/.lab/ssh`);
    return dir;
}

/** The stack `team` of a checkout with the given backend (for up, preview, stackOutputs, exportedState, destroy). */
function team(dir: string, backend: string): StackSpec {
    return { stack: STACK, workDir: dir, env: { PULUMI_BACKEND_URL: backend, PGPASSFILE: PGPASS } };
}

/** `pulumi ARGS --stack team` (raw CLI) in a checkout with the given backend. */
function pulumiIn(dir: string, backend: string, args: string, o: { allowFail?: boolean; input?: string } = {}) {
    return engine(team(dir, backend), args, o);
}

function spawnIn(dir: string, backend: string, args: string): Running {
    return spawnPulumi(STACK, args, { cwd: dir, env: { PULUMI_BACKEND_URL: backend, PGPASSFILE: PGPASS } });
}

/** Every row of the state table, its `data` decoded (the CLI stores each DIY file as base64 in a json column). */
function stateRows(): string[] {
    const port = fs.readFileSync(path.join(REPO, ".state-server/port"), "utf8").trim();
    const rows = sh(
        `PGPASSFILE=${PGPASS} psql -h 127.0.0.1 -p ${port} -U pulumi -d pulumi_state -At -c "select key || ' ' || (data->>'data') from pulumi_state"`,
    ).stdout;
    return rows
        .split("\n")
        .filter(Boolean)
        .map((l) => {
            const [key, b64] = l.split(" ");
            return `${key}\n${Buffer.from(b64 ?? "", "base64").toString("utf8")}`;
        });
}

describe("end-to-end: state for a team in PostgreSQL (two checkouts)", function () {
    this.timeout(0);
    let pg = "";
    let a = "";
    let b = "";
    const leftovers: Running[] = [];
    let serverWasRunning = false;

    before(() => {
        serverWasRunning = sh("tests/e2e/state-server.sh status", { allowFail: true }).code === 0;
        phase("state server up", () => sh("tests/e2e/state-server.sh up"));
        pg = sh("tests/e2e/state-server.sh url --no-password").stdout.trim();
        expect(pg).to.match(/^postgres:\/\/pulumi@127\.0\.0\.1:\d+\/pulumi_state\?sslmode=disable$/);
        a = checkout("a");
        b = checkout("b");
        // The dev topology with the secrets a team cares about: registry credentials and etcd TLS keys.
        const dev = fs.readFileSync(path.join(REPO, "Pulumi.dev.yaml"), "utf8").replace(/^encryptionsalt:.*\n?/m, "");
        fs.writeFileSync(
            path.join(a, `Pulumi.${STACK}.yaml`),
            `${dev.trimEnd()}\n  host-topology:registryAuth: true\n  host-topology:etcdTls: true\n`,
        );
        pulumiIn(a, pg, "cancel --yes", { allowFail: true });
        pulumiIn(a, pg, "stack rm --force --yes --preserve-config", { allowFail: true });
        phase("lab reset to pristine", () => sh("lab/lab.sh reset"));
    });

    after(async () => {
        leftovers.forEach(killGroup);
        sh("tests/e2e/state-server.sh up"); // whatever a test left stopped
        if (a) {
            pulumiIn(a, pg, "cancel --yes", { allowFail: true });
            await destroy(team(a, pg), { allowFail: true });
            pulumiIn(a, pg, "stack rm --force --yes", { allowFail: true });
        }
        sh(`rm -rf ${WORK}`);
        if (!serverWasRunning) sh("tests/e2e/state-server.sh down");
        sh("lab/lab.sh reset");
    });

    it("migration: A's stack deployed with the file backend, exported and imported into PostgreSQL, shows no changes", async () => {
        const file = `file://${a}/.pulumi-state?metadata=skip`;
        sh(`mkdir -p ${a}/.pulumi-state`);
        pulumiIn(a, file, "stack init");
        const first = await phase("A: up (file backend)", () => up(team(a, file)));
        expect(first.changes.create ?? 0, first.out.slice(-2000)).to.be.greaterThan(0);
        const exported = path.join(WORK, "team-state.json");
        pulumiIn(a, file, `stack export --file ${exported}`);
        // The stack file (with its encryptionsalt) is the team's: B gets it as from git.
        fs.copyFileSync(path.join(a, `Pulumi.${STACK}.yaml`), path.join(b, `Pulumi.${STACK}.yaml`));
        pulumiIn(a, pg, "stack init");
        pulumiIn(a, pg, `stack import --file ${exported}`);
        pulumiIn(a, file, "stack rm --force --yes --preserve-config"); // nobody may update the old copy
        await phase("A: preview in PostgreSQL", () => preview(team(a, pg), { expectNoChanges: true }));
        await phase("A: preview --refresh in PostgreSQL", () => preview(team(a, pg), { refresh: true, expectNoChanges: true }));
        // A refresh reads the hosts: drift shows as before.
        onHost("node1", "sed -i 's/^192.168.100.2 master.danran.com.*/192.168.100.99 master.danran.com master/' /etc/hosts");
        expect((await preview(team(a, pg), { refresh: true, diff: true })).out).to.match(
            /\/etc\/hosts: "managed block or conflicting lines differ"/,
        );
        await phase("A: up --refresh in PostgreSQL", () => up(team(a, pg), { refresh: true }));
    });

    it("B sees the same outputs and its preview shows no changes", async () => {
        pulumiIn(b, pg, "stack select");
        const outA = await stackOutputs(team(a, pg));
        const outB = await stackOutputs(team(b, pg));
        expect(outB).to.deep.equal(outA);
        expect(outB.registryCredentials.password).to.match(/^[A-Za-z0-9]{32}$/);
        await phase("B: preview", () => preview(team(b, pg), { expectNoChanges: true }));
    });

    it("A and B run up at the same moment: one applies, the other is refused by the lock; the stack stays whole", async () => {
        onHost("node1", "sed -i 's/^192.168.100.2 master.danran.com.*/192.168.100.99 master.danran.com master/' /etc/hosts");
        const ra = spawnIn(a, pg, "up --yes --skip-preview --refresh");
        const rb = spawnIn(b, pg, "up --yes --skip-preview --refresh");
        leftovers.push(ra, rb);
        const [ca, cb] = await Promise.all([ra.exited, rb.exited]);
        const refused = ca === 0 ? rb : ra;
        console.log(
            `      A exit ${ca}, B exit ${cb}: ${
                refused
                    .out()
                    .split("\n")
                    .find((l) => /lock/.test(l))
                    ?.trim() ?? refused.out().slice(-300)
            }`,
        );
        expect([ca, cb].filter((c) => c === 0).length, `A:\n${ra.out().slice(-1500)}\nB:\n${rb.out().slice(-1500)}`).to.equal(1);
        expect(refused.out()).to.match(/the stack is currently locked by 1 lock\(s\)/);
        expect(refused.out()).to.not.match(/postgres:\/\/pulumi:[^*]/);
        expect(onHost("node1", "getent hosts master.danran.com").stdout.split(/\s+/)[0]).to.equal(HOSTS.master);
        await preview(team(b, pg), { expectNoChanges: true });
    });

    it("PostgreSQL stopped in the middle of an up: a clear error; back again, a re-run converges and the state is whole", async () => {
        onHost("node1", "sed -i 's/^192.168.100.2 master.danran.com.*/192.168.100.99 master.danran.com master/' /etc/hosts");
        const run = spawnIn(a, pg, "up --yes --skip-preview --refresh");
        leftovers.push(run);
        await run.waitFor(/Updating \(/);
        sh("tests/e2e/state-server.sh down");
        let code: number;
        try {
            code = await run.exited;
        } finally {
            sh("tests/e2e/state-server.sh up"); // a failed assertion below must not leave the next tests without it
        }
        const err = run
            .out()
            .split("\n")
            .filter((l) => /error:/.test(l));
        console.log(`      up with the database gone: exit ${code}; ${err.map((l) => l.trim().slice(0, 200)).join(" | ")}`);
        expect(code).to.not.equal(0);
        // The error names the state database (credentials masked) and what could not be written there; the cause
        // varies with the moment the server went away (connection refused, or a connection the server closed).
        expect(run.out()).to.match(
            /error: (there was a problem deleting the lock at postgres:\/\/\*{4}:\*{4}@127\.0\.0\.1:\d+\/|writing snapshot: failed to save snapshot)/,
        );
        expect(run.out()).to.not.match(/postgres:\/\/pulumi:[^*]/);
        const before = JSON.parse(await exportedState(team(a, pg))).deployment;
        expect(before.resources.length).to.be.greaterThan(40);
        // The failed update's lock stays behind (the database was gone when it tried to remove it).
        pulumiIn(a, pg, "cancel --yes", { allowFail: true });
        await phase("A: re-run after the database is back", () => up(team(a, pg), { refresh: true }));
        await preview(team(a, pg), { refresh: true, expectNoChanges: true });
        const dep = JSON.parse(await exportedState(team(a, pg))).deployment;
        expect(dep.pending_operations ?? []).to.deep.equal([]);
        expect(dep.resources.map((r: Json) => r.urn).sort()).to.deep.equal(before.resources.map((r: Json) => r.urn).sort());
        expect(onHost("node1", "getent hosts master.danran.com").stdout.split(/\s+/)[0]).to.equal(HOSTS.master);
    });

    it("no plaintext secret (SSH key, registry password, TLS keys) in any row of the state table", async () => {
        const outs = await stackOutputs(team(a, pg));
        const lines = (pem: string) => pem.split("\n").filter((l) => l && !l.startsWith("-----"));
        const secrets = [...lines(fs.readFileSync(KEY, "utf8")), outs.registryCredentials.password, ...lines(outs.etcdClientTls.key)];
        secrets.push(...lines(onHost("master", "cat /etc/etcd/pki/member.key").stdout));
        const rows = stateRows();
        expect(rows.length).to.be.greaterThan(3);
        expect(rows.some((r) => r.includes("ciphertext"))).to.equal(true);
        for (const row of rows) for (const s of secrets) expect(row, row.split("\n")[0]).to.not.contain(s);
        console.log(`      ${rows.length} rows checked against ${secrets.length} secret values`);
    });

    it("bad backend URLs fail fast, naming the host and never the password", () => {
        const port = fs.readFileSync(path.join(REPO, ".state-server/port"), "utf8").trim();
        const t0 = Date.now();
        const down = pulumiIn(a, `postgres://pulumi@127.0.0.1:1/pulumi_state?sslmode=disable`, "preview", { allowFail: true });
        expect(down.code).to.not.equal(0);
        expect(down.out).to.match(/unable to open state database "postgres:\/\/pulumi@127\.0\.0\.1:1\/.*connection refused/);
        const wrongPass = path.join(WORK, "wrong-pgpass");
        fs.writeFileSync(wrongPass, `127.0.0.1:*:pulumi_state:pulumi:not-the-password\n`, { mode: 0o600 });
        const wrong = sh(
            `cd ${a} && PULUMI_BACKEND_URL='${pg}' PGPASSFILE=${wrongPass} pulumi preview --stack ${STACK} --non-interactive`,
            { allowFail: true },
        );
        expect(wrong.code).to.not.equal(0);
        expect(wrong.out).to.match(new RegExp(`127\\.0\\.0\\.1:${port}.*password authentication failed for user "pulumi"`));
        expect(wrong.out).to.not.contain("not-the-password");
        expect(Date.now() - t0).to.be.lessThan(30_000);
    });
});
