// keepOwnStackFrames: the stack trace sent with each resource (and kept in the state) holds the program's frames only.
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import { keepOwnStackFrames } from "../components/stackTraces";

describe("stack traces in the state: the program's own frames only", () => {
    it("drops the frames below node_modules, keeps the caller first, and wraps once", () => {
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
        expect(after.length).to.be.greaterThan(0);
        expect(after.every((f) => f && !f.uri.includes("/node_modules/"))).to.equal(true);
        // The same first frame as before the wrapper: this file's `caller`.
        expect(after[0].uri).to.match(/\/tests\/stackTraces\.test\.ts$/);
        expect(before[0].uri).to.equal(after[0].uri);
        expect(before[0]).to.deep.equal(after[0]);
    });
});
