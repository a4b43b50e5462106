// The engine keeps, for every resource, the stack trace of the `new` that registered it (the state's `stackTrace`),
// and the Node.js SDK sends the whole stack, mostly frames of ts-node and of the SDK itself: about 15 frames a
// resource, 32 KB of the dev stack's 225. Only the program's first own frame is sent: the source position of the
// `new` (the same as the state's `sourcePosition`). The frames after it, the component constructors and the
// topology that led there, are what the resource's parent chain says already (16 KB of the dev stack's 179).
import * as pulumi from "@pulumi/pulumi";

const TRIMMED = Symbol.for("host-topology.stackTraces");

/** Makes the SDK send only the program's first own stack frame with each resource. Idempotent. */
export function keepOwnStackFrames(): void {
    // Resource.stackTrace(skip) is how the SDK's Resource constructor takes the stack (@pulumi/pulumi 3.248); an
    // SDK without it sends what it sends.
    const R = pulumi.Resource as any;
    if (typeof R.stackTrace !== "function" || R.stackTrace[TRIMMED]) return;
    const full: (skip: number) => ({ uri: string } | undefined)[] = R.stackTrace;
    // One frame more to skip: this wrapper's own.
    const own = function (this: unknown, skip: number) {
        const first = full.call(this, skip + 1).find((f) => f !== undefined && !f.uri.includes("/node_modules/"));
        return first ? [first] : [];
    };
    // The wrapper keeps the SDK's own function (tests put it back).
    (own as any)[TRIMMED] = full;
    R.stackTrace = own;
}

/**
 * Stack traces as V8 formats them, without the source-map-support hook that the SDK's runner (and its provider
 * server) installs. The SDK takes a stack trace of every promise it makes (runtime/debuggable.js) and of every
 * resource (Resource.callsites), and the hook maps each frame through the source maps of its file: a third of the
 * program's CPU in a 24-host preview (1.0 of 3.6 s, docs/bench.md). The program and the plugin are compiled without
 * source maps, so their frames, and the positions kept in the state, are the same either way; only the SDK's own
 * frames in an error's stack show its JavaScript instead of its TypeScript lines. The hook installs once per
 * process, so this holds for the rest of the run.
 */
export function plainStackTraces(): void {
    (Error as { prepareStackTrace?: unknown }).prepareStackTrace = undefined;
}
