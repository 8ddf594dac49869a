/**
 * Limits and defaults for the Raft core. Every queue and batch has a named
 * bound here; the behaviour when it is reached is stated next to it.
 */

/** Node id meaning "nobody" (no leader, no vote). Real ids are positive integers. */
export const NONE = 0;

/** Default ticks without hearing from a leader before a follower campaigns. */
export const electionTicksDefault = 10;
/** Default ticks between leader heartbeats. */
export const heartbeatTicksDefault = 1;

/** Most entries in one append message; the rest go in the next message. */
export const appendEntriesMax = 64;
/** Most entry payload bytes in one append message (at least one entry is always sent). */
export const appendBytesMax = 1024 * 1024;
/** Append messages in flight to one follower before the leader waits for acks (pipelining window). */
export const inflightMessagesMax = 16;

/** Largest single entry payload; larger proposals throw EntryTooLargeError. */
export const entryBytesMax = 1024 * 1024;
/** Uncommitted entries a leader accepts before proposals throw ProposalDroppedError("backpressure"). */
export const uncommittedEntriesMax = 4096;
/** Read-index requests waiting for confirmation; beyond this readIndex throws ProposalDroppedError("backpressure"). */
export const readIndexPendingMax = 1024;
/** Messages buffered between two ready() calls; beyond this the oldest outbound messages are dropped (Raft tolerates loss). */
export const outboundMessagesMax = 16384;

/** Ticks a leader waits for a snapshot to be acknowledged before it re-probes the follower. */
export const snapshotRetryTicksDefault = 20;
