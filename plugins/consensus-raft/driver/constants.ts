/**
 * Limits and defaults of the Raft driver (persistence, transports, timers).
 * Each bound states what happens when it is reached.
 */

/** Default tick period (ms). Election timeout = electionTicks × tickMs (core default 10 ticks). */
export const tickMsDefault = 100;
export const tickMsMin = 1;
export const tickMsMax = 10_000;

/** Largest Raft frame on /grey/raft/1.0.0. Larger: the frame is refused (stream reset) and counted. */
export const raftFrameBytesMax = 8 * 1024 * 1024;
/** Payload bytes per append message the driver asks of the core (keeps frames far below raftFrameBytesMax). */
export const raftAppendBytesMax = 1024 * 1024;
/** Largest snapshot the driver produces or accepts. Larger: compaction is skipped and logged. */
export const snapshotBytesMax = 6 * 1024 * 1024;

/** Members a group is sized for (inbound raft streams accepted: 4 per member). */
export const groupMembersMax = 16;
/** Messages queued for one peer while its stream is busy or down. Full: the oldest heartbeat is dropped, else the oldest message. */
export const peerOutboundMessagesMax = 1024;
/** Dialing a peer's raft stream: time limit per attempt, and backoff before the next attempt. */
export const peerDialTimeoutMs = 3_000;
export const peerRedialBackoffMs = 500;

/** Proposals waiting to be applied. Beyond: propose() rejects with ProposalDroppedError("backpressure"). */
export const pendingProposalsMax = 8192;
/** Default time a propose/read/transfer waits before TimeoutError. */
export const requestTimeoutMsDefault = 10_000;

/** Compact the log once this many entries were applied since the last snapshot. */
export const snapshotEveryEntriesDefault = 10_000;

/** Raft groups one libp2p node runs (flat: 1; hierarchical hub: region + global). More: start() refuses the group. */
export const raftGroupsPerNodeMax = 4;
