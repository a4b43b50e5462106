// host/private-registry.sh (PrivateRegistry): the registry behind nginx on every OS family: health, failures,
// SELinux, the htpasswd secret and nginx's TLS.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import type { Run } from "./support.ts";
import {
    FAMILIES,
    withoutDetail,
    makeHost,
    setUnit,
    run,
    ok,
    calls,
    clearCalls,
    read,
    exists,
    mode,
    has,
    pkgDefault,
    mutations,
    expectNoChange,
    registryPort,
    notFoundPort,
    closedPort,
    registryConfig,
    NGINX_SITE,
    HTPASSWD,
    registryParams,
} from "./support.ts";

describe("host scripts on every OS family (stubbed package managers and systemd)", function () {
    this.timeout(30000);

    for (const [family, f] of Object.entries(FAMILIES)) {
        describe(family, () => {
            const installRe = (pkgs: string[]) =>
                f.pm === "apt-get"
                    ? new RegExp(`^apt-get -o DPkg::Lock::Timeout=600 .*install -y --no-install-recommends ${pkgs.join(" ")}$`, "m")
                    : new RegExp(`^${f.pm} -y install ${pkgs.join(" ")}$`, "m");

            it(`registry: ${f.registry.pkg} + nginx, ${f.registry.conf}, htpasswd 0640 root:${f.nginxGroup}, health on /v2/; idempotent; targeted restart/reload; remove keeps storage`, () => {
                const h = makeHost(family);
                const p = registryParams();
                const out = ok(h, "private-registry.sh", "apply", p);
                expect(calls(h)).to.match(installRe([f.registry.pkg, "nginx"]));
                expect(read(h, f.registry.conf)).to.equal(p.REGISTRY_CONFIG);
                expect(read(h, "/etc/nginx/conf.d/registry.conf")).to.equal(NGINX_SITE);
                expect(read(h, "/etc/nginx/.ngxpasswd")).to.equal(HTPASSWD);
                expect(mode(h, "/etc/nginx/.ngxpasswd")).to.equal(0o640);
                expect(calls(h)).to.match(new RegExp(`^chown root:${f.nginxGroup} .*/etc/nginx/\\.ngxpasswd\\.host-topology\\.tmp$`, "m"));
                expect(fs.statSync(path.join(h.root, "/var/lib/registry")).isDirectory()).to.equal(true);
                if (f.registry.user) expect(calls(h)).to.contain(`chown ${f.registry.user}: ${h.root}/var/lib/registry`);
                else expect(calls(h)).not.to.match(/^chown \S+ .*\/var\/lib\/registry$/m);
                expect(calls(h)).to.match(/^nginx -t$/m);
                for (const u of [f.registry.svc, "nginx"]) expect(has(h, u, "enabled") && has(h, u, "active"), u).to.equal(true);
                expect(out).to.contain(`healthy ${f.registry.svc} http://127.0.0.1:${registryPort}/v2/`);
                expect(out).to.contain(`ok registry family=${family}`);
                expect(out + calls(h)).not.to.contain("S3cr3t");
                expect(ok(h, "private-registry.sh", "check", p)).to.equal(`ok registry family=${family}\n`);

                clearCalls(h);
                expectNoChange(ok(h, "private-registry.sh", "apply", p), family, "registry");
                expect(mutations(h)).to.deep.equal([]);

                clearCalls(h);
                ok(h, "private-registry.sh", "apply", { ...p, NGINX_CONF: NGINX_SITE + "# v2\n" });
                expect(mutations(h)).to.deep.equal(["systemctl reload nginx"]);

                clearCalls(h);
                ok(h, "private-registry.sh", "apply", {
                    ...p,
                    NGINX_CONF: NGINX_SITE + "# v2\n",
                    REGISTRY_CONFIG: p.REGISTRY_CONFIG + "# v2\n",
                });
                expect(mutations(h)).to.deep.equal([`systemctl restart ${f.registry.svc}`]);

                // no basic auth: the htpasswd file goes, nginx reloads
                clearCalls(h);
                const noAuth = ok(h, "private-registry.sh", "apply", {
                    ...p,
                    NGINX_CONF: NGINX_SITE + "# v2\n",
                    REGISTRY_CONFIG: p.REGISTRY_CONFIG + "# v2\n",
                    HTPASSWD: "",
                });
                expect(exists(h, "/etc/nginx/.ngxpasswd")).to.equal(false);
                expect(noAuth).to.contain("removed /etc/nginx/.ngxpasswd");
                expect(mutations(h)).to.deep.equal(["systemctl reload nginx"]);

                fs.writeFileSync(path.join(h.root, "/var/lib/registry/blob"), "layer");
                clearCalls(h);
                ok(h, "private-registry.sh", "remove", p);
                expect(exists(h, "/etc/nginx/conf.d/registry.conf") || exists(h, "/etc/nginx/.ngxpasswd")).to.equal(false);
                expect(read(h, f.registry.conf)).to.equal(pkgDefault(f.registry.pkg, f.registry.conf));
                expect(read(h, "/var/lib/registry/blob")).to.equal("layer");
                expect(has(h, f.registry.svc, "enabled") || has(h, f.registry.svc, "active")).to.equal(false);
                expect(has(h, "nginx", "active")).to.equal(true);
                expect(mutations(h)).to.include("systemctl reload nginx");
                clearCalls(h);
                expect(withoutDetail(ok(h, "private-registry.sh", "check", p))).to.equal(
                    [
                        `drift ${f.registry.conf} content differs:`,
                        "drift /etc/nginx/conf.d/registry.conf missing",
                        "drift /etc/nginx/.ngxpasswd missing",
                        `drift service:${f.registry.svc} disabled,inactive (want enabled,active)`,
                        `ok registry family=${family}`,
                        "",
                    ].join("\n"),
                );
                expect(mutations(h)).to.deep.equal([]);
            });

            it(`registry: ${f.registry.svc} failing to start is an error naming the host and unit, with the journal tail`, () => {
                const h = makeHost(family, { hostname: "master", installed: [f.registry.pkg, "nginx"] });
                setUnit(h, f.registry.svc, "fail");
                const r = run(h, "private-registry.sh", "apply", registryParams());
                expect(r.code).to.equal(1);
                expect(r.stderr).to.contain(`host-topology: master: unit ${f.registry.svc} failed to start`);
                expect(r.stderr).to.contain(
                    `--- journalctl -u ${f.registry.svc} (last 30 lines) ---\nstub journal line 1 for ${f.registry.svc}\n`,
                );
                expect(calls(h)).to.contain(`journalctl -u ${f.registry.svc} -n 30 --no-pager`);
                expect(r.stdout).not.to.contain("ok registry");
                expect(exists(h, "/etc/nginx/conf.d/registry.conf")).to.equal(false);
            });
        });
    }
});

// =====================================================================================================

describe("host scripts: services, health and failures", function () {
    this.timeout(30000);

    it("registry not answering HTTP on /v2/: fails after HEALTH_TIMEOUT with the journal tail; nginx untouched", () => {
        const h = makeHost("ubuntu2204");
        const t0 = Date.now();
        const r = run(
            h,
            "private-registry.sh",
            "apply",
            registryParams({ REGISTRY_CONFIG: registryConfig(closedPort), HEALTH_TIMEOUT: "1" }),
        );
        expect(Date.now() - t0).to.be.lessThan(8000);
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain(`docker-registry does not answer HTTP on http://127.0.0.1:${closedPort}/v2/ after 1s`);
        expect(r.stderr).to.contain("--- journalctl -u docker-registry (last 30 lines) ---");
        expect(exists(h, "/etc/nginx/conf.d/registry.conf")).to.equal(false);
    });

    it("registry health: probes GET /v2/ at the configured address (quotes understood); a 404 is not healthy", () => {
        const h = makeHost("debian12");
        const r = run(
            h,
            "private-registry.sh",
            "apply",
            registryParams({ REGISTRY_CONFIG: `http:\n  addr: "127.0.0.1:${registryPort}"\n`, HEALTH_TIMEOUT: "1" }),
        );
        expect(r.code, r.stderr).to.equal(0);
        expect(r.stdout).to.contain(`healthy docker-registry http://127.0.0.1:${registryPort}/v2/`);
        const bad = makeHost("debian12");
        const r404 = run(
            bad,
            "private-registry.sh",
            "apply",
            registryParams({ REGISTRY_CONFIG: registryConfig(notFoundPort), HEALTH_TIMEOUT: "1" }),
        );
        expect(r404.code).to.equal(1);
        expect(r404.stderr).to.contain(`does not answer HTTP on http://127.0.0.1:${notFoundPort}/v2/ after 1s`);
    });

    it("nginx -t failure: the previous site is put back (or removed if there was none) and the error shows nginx's message", () => {
        const first = makeHost("debian12");
        fs.writeFileSync(`${first.state}/nginx-bad`, "");
        const r1 = run(first, "private-registry.sh", "apply", registryParams());
        expect(r1.code).to.equal(1);
        expect(r1.stderr).to.contain(
            'nginx rejected /etc/nginx/conf.d/registry.conf (previous version put back): nginx: [emerg] unknown directive "bad"',
        );
        expect(exists(first, "/etc/nginx/conf.d/registry.conf")).to.equal(false);
        expect(mutations(first)).not.to.include("systemctl reload nginx");

        const h = makeHost("el9");
        ok(h, "private-registry.sh", "apply", registryParams());
        fs.writeFileSync(`${h.state}/nginx-bad`, "");
        clearCalls(h);
        const r = run(h, "private-registry.sh", "apply", registryParams({ NGINX_CONF: "server { bad; }\n" }));
        expect(r.code).to.equal(1);
        expect(read(h, "/etc/nginx/conf.d/registry.conf")).to.equal(NGINX_SITE);
        expect(mutations(h)).to.deep.equal([]);
        // fixed config: applied on the next run
        fs.rmSync(`${h.state}/nginx-bad`);
        ok(h, "private-registry.sh", "apply", registryParams({ NGINX_CONF: "server { good; }\n" }));
        expect(read(h, "/etc/nginx/conf.d/registry.conf")).to.equal("server { good; }\n");
        expect(mutations(h)).to.deep.equal(["systemctl reload nginx"]);
    });

    it("the htpasswd content is never printed (apply, check, drift, nginx failure, remove)", () => {
        const h = makeHost("debian12");
        let all = "";
        const collect = (r: Run) => (all += r.stdout + r.stderr);
        collect(run(h, "private-registry.sh", "apply", registryParams()));
        fs.writeFileSync(path.join(h.root, "/etc/nginx/.ngxpasswd"), "tampered\n");
        collect(run(h, "private-registry.sh", "check", registryParams()));
        expect(all).to.contain("drift /etc/nginx/.ngxpasswd content differs (a secret: not shown)");
        expect(all).not.to.contain("tampered");
        fs.writeFileSync(`${h.state}/nginx-bad`, "");
        collect(run(h, "private-registry.sh", "apply", registryParams({ NGINX_CONF: "x\n" })));
        collect(run(h, "private-registry.sh", "remove", registryParams()));
        expect(all).not.to.contain("S3cr3t");
        expect(all).not.to.contain("tampered");
    });

    it("EL with SELinux enforcing: httpd_can_network_connect turned on for the proxy, off again by remove", () => {
        const h = makeHost("el8");
        fs.writeFileSync(`${h.state}/selinux`, "");
        const out = ok(h, "private-registry.sh", "apply", registryParams());
        expect(out).to.contain("changed selinux:httpd_can_network_connect on");
        expect(mutations(h)).to.include("setsebool -P httpd_can_network_connect 1");
        clearCalls(h);
        expectNoChange(ok(h, "private-registry.sh", "apply", registryParams()), "el8", "registry");
        ok(h, "private-registry.sh", "remove", registryParams());
        expect(mutations(h)).to.include("setsebool -P httpd_can_network_connect 0");
        // already on before: left as it was
        const on = makeHost("el9");
        fs.writeFileSync(`${on.state}/selinux`, "");
        fs.writeFileSync(`${on.state}/sebool-on`, "");
        ok(on, "private-registry.sh", "apply", registryParams());
        ok(on, "private-registry.sh", "remove", registryParams());
        expect(calls(on)).not.to.contain("setsebool");
    });
});

// =====================================================================================================

describe("host scripts: registry TLS (registryTls)", function () {
    this.timeout(30000);
    const TLS = {
        TLS_CERT: "-----BEGIN CERTIFICATE-----\nnginx\n-----END CERTIFICATE-----\n",
        TLS_KEY: "-----BEGIN EC PRIVATE KEY-----\nnginx-key-material\n-----END EC PRIVATE KEY-----\n",
    };

    it("registry: nginx's certificate and key written (key 0600), nginx reloaded on a change, key never printed; off removes them", () => {
        const h = makeHost("debian12");
        const out = ok(h, "private-registry.sh", "apply", registryParams(TLS));
        expect(read(h, "/etc/nginx/tls/registry.crt")).to.equal(TLS.TLS_CERT);
        expect(read(h, "/etc/nginx/tls/registry.key")).to.equal(TLS.TLS_KEY);
        expect(mode(h, "/etc/nginx/tls/registry.key")).to.equal(0o600);
        expect(out + calls(h)).not.to.contain("nginx-key-material");
        expect(ok(h, "private-registry.sh", "check", registryParams(TLS))).not.to.contain("drift");
        clearCalls(h);
        expectNoChange(ok(h, "private-registry.sh", "apply", registryParams(TLS)), "debian12", "registry");
        clearCalls(h);
        const renewed = ok(
            h,
            "private-registry.sh",
            "apply",
            registryParams({ ...TLS, TLS_CERT: TLS.TLS_CERT.replace("nginx", "nginx-renewed") }),
        );
        expect(renewed).to.contain("changed /etc/nginx/tls/registry.crt");
        expect(mutations(h)).to.deep.equal(["systemctl reload nginx"]);
        fs.rmSync(path.join(h.root, "/etc/nginx/tls/registry.key"));
        expect(ok(h, "private-registry.sh", "check", registryParams(TLS))).to.contain("drift /etc/nginx/tls/registry.key missing");
        ok(h, "private-registry.sh", "apply", registryParams());
        expect(exists(h, "/etc/nginx/tls")).to.equal(false);
        ok(h, "private-registry.sh", "apply", registryParams(TLS));
        ok(h, "private-registry.sh", "remove", registryParams(TLS));
        expect(exists(h, "/etc/nginx/tls")).to.equal(false);
    });
});
