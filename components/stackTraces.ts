// The engine keeps, for every resource, the stack trace of the `new` that registered it (the state's `stackTrace`),
// and the Node.js SDK sends the whole stack, mostly frames of ts-node and of the SDK itself: about 15 frames a
// resource, 32 KB of the dev stack's 225. Only the program's own frames are sent: the same source position (the
// first frame) and the chain of components that led to the resource, without the frames below node_modules.
import * as pulumi from "@pulumi/pulumi";

const TRIMMED = Symbol.for("host-topology.stackTraces");

/** Makes the SDK send only the program's own stack frames with each resource. Idempotent. */
export function keepOwnStackFrames(): void {
    // Resource.stackTrace(skip) is how the SDK's Resource constructor takes the stack (@pulumi/pulumi 3.248); an
    // SDK without it sends what it sends.
    const R = pulumi.Resource as any;
    if (typeof R.stackTrace !== "function" || R.stackTrace[TRIMMED]) return;
    const full: (skip: number) => ({ uri: string } | undefined)[] = R.stackTrace;
    // One frame more to skip: this wrapper's own.
    const own = function (this: unknown, skip: number) {
        return full.call(this, skip + 1).filter((f) => f !== undefined && !f.uri.includes("/node_modules/"));
    };
    // The wrapper keeps the SDK's own function (tests put it back).
    (own as any)[TRIMMED] = full;
    R.stackTrace = own;
}
