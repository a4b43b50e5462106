// keepOwnStackFrames: the stack trace sent with each resource (and kept in the state) holds the program's first frame only.
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import { keepOwnStackFrames, plainStackTraces } from "../components/stackTraces";

describe("stack traces in the state: the program's first own frame only", () => {
    it("keeps the caller's frame alone (not the frames below node_modules, nor the callers above it), and wraps once", () => {
        const R = pulumi.Resource as any;
        // Another test file may have wrapped it already (the plugin's construct does): the SDK's own first.
        const TRIMMED = Symbol.for("host-topology.stackTraces");
        if (R.stackTrace[TRIMMED]) R.stackTrace = R.stackTrace[TRIMMED];
        // skip 1: the frames from the caller of the function that asks (as the SDK's constructors skip their own).
        const asked = () => (function caller() {
            return (function asks() {
                return R.stackTrace(1);
            })();
        })();
        const before: { uri: string; line: number }[] = asked().filter(Boolean);
        // Under mocha, most of the stack is mocha's.
        expect(before.some((f) => f.uri.includes("/node_modules/mocha/"))).to.equal(true);
        keepOwnStackFrames();
        const wrapped = R.stackTrace;
        keepOwnStackFrames();
        expect(R.stackTrace).to.equal(wrapped);
        const after: { uri: string; line: number }[] = asked();
        expect(before.filter((f) => !f.uri.includes("/node_modules/")).length, "own frames above the caller").to.be.greaterThan(1);
        expect(after.length).to.equal(1);
        // The same first frame as before the wrapper: this file's `caller`.
        expect(after[0].uri).to.match(/\/tests\/stackTraces\.test\.ts$/);
        expect(before[0].uri).to.equal(after[0].uri);
        expect(before[0]).to.deep.equal(after[0]);
    });
});

describe("stack traces as V8 formats them (plainStackTraces)", () => {
    it("removes the formatting hook (source-map-support's, installed by the SDK's runner): a stack costs no call to it, and the SDK still reads each frame's position", () => {
        const E = Error as { prepareStackTrace?: unknown };
        const saved = Object.getOwnPropertyDescriptor(Error, "prepareStackTrace");
        let hooked = 0;
        try {
            E.prepareStackTrace = (err: Error, frames: { toString(): string }[]) => {
                hooked++;
                return `${err}\n${frames.map((f) => `    at ${f}`).join("\n")}`;
            };
            void new Error("with the hook").stack;
            expect(hooked).to.equal(1);
            plainStackTraces();
            const stack = new Error("without").stack!;
            expect(hooked, "the hook is not called").to.equal(1);
            // The frames the SDK parses for the positions it sends (Resource.callsites): this file's, with line and column.
            const R = pulumi.Resource as any;
            const own = stack.split("\n").slice(1).map((l) => R.framePositionRegExp.exec(l)?.groups).filter(Boolean);
            expect(own[0].file).to.match(/\/tests\/stackTraces\.test\.ts$/);
            expect(Number(own[0].line)).to.be.greaterThan(0);
            expect(Number(own[0].column)).to.be.greaterThan(0);
        } finally {
            if (saved) Object.defineProperty(Error, "prepareStackTrace", saved);
            else delete E.prepareStackTrace;
        }
    });
});
