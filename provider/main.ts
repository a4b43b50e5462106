// The plugin's entry point (package.json's main, run by Node.js itself, types stripped): the engine starts it through
// the Node.js language host (PulumiPlugin.yaml), or as the executable launcher/pulumi-resource-host-topology.
import * as fs from "fs";
import * as path from "path";
import * as provider from "@pulumi/pulumi/provider/index.js";
import { HostTopologyProvider } from "./index.ts";

// The plugin works in the directory the engine starts it in, the program's project directory: paths in its inputs
// (privateKeyPath, the scripts' sourceDir) are relative to the program that uses it, wherever the plugin is installed.
const dir = import.meta.dirname;
const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
// Its engine is its parent: when that is gone (pulumi killed), the plugin ends too, with its pooled SSH connections,
// instead of lingering on (the engine kills a plugin it is done with itself).
const engine = process.ppid;
setInterval(() => process.ppid !== engine && process.exit(0), 1000).unref();
provider.main(new HostTopologyProvider(pkg.version, fs.readFileSync(path.join(dir, "schema.json"), "utf8")), process.argv.slice(2));
