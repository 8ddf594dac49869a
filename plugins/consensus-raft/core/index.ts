export { RaftNode, type RaftInit, type Status, type BasicStatus, type ProgressStatus } from "./raft.ts";
export * from "./types.ts";
export * from "./errors.ts";
export * from "./constants.ts";
export { AssertionFailure, assert } from "./assert.ts";
export { Xoshiro128, type Rng } from "./prng.ts";
export { bootstrapStorage, emptyStorage, encodeConfChange, decodeConfChange } from "./confchange.ts";
