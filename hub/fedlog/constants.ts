/** Limits of the federation log service. */

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
