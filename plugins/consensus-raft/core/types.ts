/** Data shapes of the pure Raft core: what it persists, sends and hands to the state machine. */

/** A positive integer naming a node; 0 (NONE) means nobody. */
export type NodeId = number;

export type EntryType = "normal" | "conf";

/** One log entry. `data` is opaque to the core for "normal" entries; "conf" entries carry an encoded ConfChange. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** State that must be durable before any message of the same Ready is sent. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

/** Group membership: voters decide elections and commits; learners only receive the log. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export type ConfChange =
  | { readonly kind: "addLearner"; readonly node: NodeId }
  | { readonly kind: "addVoter"; readonly node: NodeId }
  | { readonly kind: "remove"; readonly node: NodeId };

export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** State machine image at meta.index, produced by the application. */
  readonly data: Uint8Array;
}

export type MessageType =
  | "app"
  | "appResp"
  | "vote"
  | "voteResp"
  | "preVote"
  | "preVoteResp"
  | "heartbeat"
  | "heartbeatResp"
  | "snap"
  | "timeoutNow"
  | "readIndex"
  | "readIndexResp";

/**
 * One message between nodes. Flat like etcd's pb.Message; fields a type does
 * not use are zero/empty. Drivers encode it as they like.
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  /** app: term of the entry at `index`; vote/preVote: candidate's last log term; appResp reject: hint term. */
  readonly logTerm: number;
  /** app: index preceding `entries`; appResp: last matched index (or rejected index); vote: last log index; readIndexResp: read index. */
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly reject: boolean;
  /** appResp reject: follower's hint for the next probe. */
  readonly rejectHint: number;
  readonly snapshot?: Snapshot;
  /** heartbeat/heartbeatResp: read-index sequence; readIndex/readIndexResp: request context. */
  readonly readSeq?: number;
  readonly context?: string;
  /** vote/preVote sent after TimeoutNow: bypasses the leader-lease check. */
  readonly transfer?: boolean;
}

/** A confirmed linearizable read: serve `context` from the state machine once applied >= index. */
export interface ReadState {
  readonly context: string;
  readonly index: number;
}

/**
 * Work for the driver. Handle it in this order: persist `snapshot`, `entries`
 * and `hardState` (durably, atomically); then send `messages`; then restore
 * `snapshot` into the state machine and apply `committedEntries` in order;
 * then serve `readStates`; then call `advance()`.
 */
export interface Ready {
  readonly hardState?: HardState;
  /** A snapshot received from the leader: persist it and drop the log up to its index. */
  readonly snapshot?: Snapshot;
  /** Entries to append to the durable log; an entry at index i replaces the durable log from i on. */
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  /**
   * The first `earlyMessages` of `messages` (a leader's appends and heartbeats)
   * may be sent before the writes are durable, in parallel with them; the rest
   * only after. 0 = send everything after persisting.
   */
  readonly earlyMessages: number;
  /**
   * The writes must be durable before the rest of the Ready is handled (entries,
   * snapshot, term or vote changed). False: only the commit index moved, which a
   * restart may lose (it is learned again): write it without waiting for fsync.
   */
  readonly mustSync: boolean;
  /** Entries known committed, to apply in order (conf entries too: the core applies them itself at advance()). */
  readonly committedEntries: readonly Entry[];
  /** Reads whose index is covered once this Ready's committedEntries are applied. */
  readonly readStates: readonly ReadState[];
}

/** What the core restarts from: exactly what the driver persisted. */
export interface Storage {
  readonly hardState: HardState;
  readonly snapshot?: Snapshot;
  /** Durable entries following the snapshot (or from index 1), contiguous. */
  readonly entries: readonly Entry[];
}

export type Role = "follower" | "preCandidate" | "candidate" | "leader";
