// The engine's floor for a stack of the program's size (bench/bench.ts): `components` component resources and
// `customs` custom resources of the provider most of the program's resources use, @pulumi/command, as local.Commands
// that run `true` on this machine when created and nothing after (no host, no SSH). The customs are spread over the
// components as their children, each with a stdin of the measured stack's mean input size. What `pulumi` costs on
// this machine for that many resources before any host work. The packages resolve from the checkout's node_modules.
"use strict";
const pulumi = require("@pulumi/pulumi");
const command = require("@pulumi/command");

const config = new pulumi.Config();
const customs = config.requireNumber("customs");
const components = config.requireNumber("components");
const inputBytes = config.requireNumber("inputBytes");

const parents = Array.from({ length: components }, (_, i) => new pulumi.ComponentResource("bench:floor:Group", `group${i}`));
const pad = "x".repeat(inputBytes);
for (let i = 0; i < customs; i++) {
    const parent = parents.length > 0 ? parents[i % parents.length] : undefined;
    new command.local.Command(`c${i}`, { create: "true", stdin: `${i}\n${pad}`, addPreviousOutputInEnv: false }, { parent });
}
