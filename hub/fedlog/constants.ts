/** Limits of the federation log service. */
import { snapshotBytesMax, snapshotEveryEntriesDefault } from "../../plugins/consensus-raft/driver/constants.ts";

/** Protocol a follower hub uses to hand a command to the leader hub. */
export const PROTOCOL_FEDLOG = "/grey/fedlog/1.0.0";
/** How long a write through the log may take (forwarding, commit, local apply). Then: TimeoutError. */
export const fedlogWriteTimeoutMs = 10_000;
/** Pause between attempts while no leader is known or a forward failed. */
export const fedlogRetryMs = 100;
/** How often a hub checks that its API address is announced in the log. */
export const announceCheckMs = 1_000;
export const RAFT_DB = "raft.db";
export const FEDLOG_DB = "fedlog.db";
/** Heartbeat gossip round period: the heartbeat interval, at most this. */
export const gossipEveryMsMax = 1_000;
/** How long add-peer waits for a new hub (a learner) to catch up before promoting it to voter. Then: TimeoutError, it stays a learner. */
export const peerCatchUpTimeoutMs = 120_000;
/** Seat-keeper round (claim the parent seat, reconcile the parent's membership): 5 ticks, at least this. */
export const seatRoundMsMin = 200;
/** Format of the state machine's snapshots (state-machine.ts): CBOR map { v, members?, log, parts }. 1 was JSON (still restored). */
export const FEDLOG_SNAPSHOT_VERSION = 2;
/**
 * Largest snapshot the federation log takes or installs: the Raft driver's limit (a larger image is not
 * taken: the log is not compacted and keeps the entries, logged; a larger one received is refused).
 */
export const fedlogSnapshotBytesMax = snapshotBytesMax;
/** Default of hub.json consensus.snapshotEntries: compact the log (snapshot) once this many entries were applied since the last. */
export const fedlogSnapshotEntriesDefault = snapshotEveryEntriesDefault;
