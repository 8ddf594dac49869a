/**
 * The consensus plugin contract (plugin kind "consensus", at most one active
 * per process). A consensus plugin replicates an ordered log of opaque
 * commands among a group of nodes and feeds it, in order, to a state machine
 * the host supplies. The host never sees the algorithm: Raft today, anything
 * that offers the same guarantees tomorrow.
 *
 * Shape: `raftConsensus(init) => (components) => ConsensusGroup`.
 *
 * Guarantees a plugin must give (the compliance suite checks them):
 * - every command whose `propose()` resolved is applied, exactly once and in
 *   the same order, on every member's state machine, across crashes;
 * - `read()` resolves only once this member has applied everything committed
 *   before the call (a linearizable read barrier);
 * - a refused or lost proposal rejects with a typed error (NotLeaderError
 *   with a leader hint, ProposalDroppedError, TimeoutError); it is never
 *   silently applied later under a different promise.
 */
import type { Clock, Logger, PluginMeta } from "./plugin.ts";

/** Version of this contract. A plugin built for another major is refused at load. */
export const CONSENSUS_API_VERSION = 1;

/** A member of a consensus group: a positive integer, stable for the member's lifetime. */
export type MemberId = number;

/** One committed command, handed to the state machine in log order. */
export interface CommittedCommand {
  readonly index: number;
  readonly data: Uint8Array;
}

/**
 * The host's replicated state machine. `apply` must be deterministic (the same
 * commands in the same order give the same state on every member) and must
 * record `appliedIndex` durably together with the state it changed, so that a
 * restart neither skips nor re-applies a command.
 */
export interface ReplicatedStateMachine {
  /** Index of the last command applied (0 for an empty machine). */
  appliedIndex(): number;
  /** Apply one command; the return value resolves the proposer's promise (on the proposing member). */
  apply(cmd: CommittedCommand): unknown;
  /**
   * Optional: apply several consecutive commands in one storage transaction
   * (group commit on the apply side). Same effects and results, in order, as
   * calling `apply` on each; a plugin uses it when present.
   */
  applyBatch?(cmds: readonly CommittedCommand[]): unknown[];
  /** The machine's image at `appliedIndex()`, for log compaction and lagging members. */
  snapshot(): Uint8Array;
  /** Replace the machine's state with an image taken at `index`. */
  restore(index: number, data: Uint8Array): void;
}

export interface LeaderInfo {
  readonly id: MemberId;
  readonly term: number;
  /** This member is the leader. */
  readonly self: boolean;
}

export interface Membership {
  readonly voters: readonly MemberId[];
  readonly learners: readonly MemberId[];
}

export type MembershipChange =
  | { readonly kind: "addLearner"; readonly member: MemberId }
  | { readonly kind: "addVoter"; readonly member: MemberId }
  | { readonly kind: "remove"; readonly member: MemberId };

export interface CallOptions {
  signal?: AbortSignal;
}

export interface ConsensusGroup {
  readonly id: MemberId;
  /** Load durable state and join the group. */
  start(): Promise<void>;
  /** Leave orderly: stop timers and transports; durable state stays. Bounded in time. */
  stop(): Promise<void>;
  /** Replicate `data`; resolves once committed and applied here, with the state machine's result. Leader only. */
  propose(data: Uint8Array, opts?: CallOptions): Promise<{ index: number; result: unknown }>;
  /** Linearizable read barrier: resolves with the read index once it is applied here. */
  read(opts?: CallOptions): Promise<{ index: number }>;
  /** Current leader as this member knows it (undefined while unknown). */
  leader(): LeaderInfo | undefined;
  membership(): Membership;
  /** One membership change at a time; resolves once applied here. Leader only. */
  changeMembership(change: MembershipChange, opts?: CallOptions): Promise<void>;
  /** Hand leadership to `to`; resolves once `to` leads (or rejects after an election timeout). Leader only. */
  transferLeadership(to: MemberId, opts?: CallOptions): Promise<void>;
  /** Called after every leadership change seen by this member; returns an unsubscribe function. */
  onLeaderChange(fn: (leader: LeaderInfo | undefined) => void): () => void;
}

/** What the host injects into a consensus plugin. */
export interface ConsensusComponents {
  logger: Logger;
  clock: Clock;
  stateMachine: ReplicatedStateMachine;
}

export interface ConsensusPlugin<Init, Components extends ConsensusComponents = ConsensusComponents> {
  readonly meta: PluginMeta & { kind: "consensus" };
  create(init: Init): (components: Components) => ConsensusGroup;
}
