/**
 * A pure Raft node in the style of etcd-io/raft's RawNode: no I/O, no clock,
 * no randomness of its own. The driver feeds it messages (`step`), time
 * (`tick`) and requests (`propose`, `readIndex`, ...), and drains its work with
 * `ready()` / `advance()`: persist, then send, then apply, then advance.
 */
import { ConfigError } from "../../sdk/errors.ts";
import { assert } from "./assert.ts";
import { decodeConfChange, encodeConfChange, isNodeId } from "./confchange.ts";
import {
  NONE,
  appendBytesMax,
  appendEntriesMax,
  electionTicksDefault,
  entryBytesMax,
  heartbeatTicksDefault,
  inflightMessagesMax,
  outboundMessagesMax,
  readIndexPendingMax,
  snapshotRetryTicksDefault,
  uncommittedEntriesMax,
} from "./constants.ts";
import { ConfChangeError, EntryTooLargeError, NotLeaderError, ProposalDroppedError, TransferError } from "./errors.ts";
import { RaftLog } from "./log.ts";
import type { Rng } from "./prng.ts";
import { Progress, type ProgressState } from "./progress.ts";
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  MessageType,
  NodeId,
  ReadState,
  Ready,
  Role,
  Snapshot,
  SnapshotMeta,
  Storage,
} from "./types.ts";

export interface RaftInit {
  id: NodeId;
  /** What the driver persisted; `bootstrapStorage(voters)` for founders, `emptyStorage()` for joiners. */
  storage: Storage;
  /** Seeded randomness for election timeouts. */
  rng: Rng;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Pre-vote (Raft thesis 9.6): a partitioned node does not inflate terms. Default true. */
  preVote?: boolean;
  /** A leader that cannot hear a quorum for an election timeout steps down. Default true. */
  checkQuorum?: boolean;
  appendEntriesMax?: number;
  appendBytesMax?: number;
  inflightMessagesMax?: number;
  snapshotRetryTicks?: number;
  /** Deliberate bugs so tests can prove the simulator catches them. Never set outside tests. */
  testFaults?: TestFaults;
}

/** Deliberate bugs so tests can prove the simulator catches them. All default to off. */
export interface TestFaults {
  /** Grants votes without the "candidate's log is at least as up-to-date" check. */
  skipVoteLogCheck?: boolean;
  /** Serves read-index requests at once, without confirming leadership with a quorum. */
  unconfirmedReads?: boolean;
  /** Counts the leader's own copy of an entry before the driver made it durable. */
  selfAckBeforePersist?: boolean;
  /** Commits any index held by a quorum, whatever its term (the Raft paper's Figure 8 bug). */
  commitPreviousTerm?: boolean;
}

interface ResolvedInit {
  id: NodeId;
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  appendEntriesMax: number;
  appendBytesMax: number;
  inflightMessagesMax: number;
  snapshotRetryTicks: number;
  skipVoteLogCheck: boolean;
  unconfirmedReads: boolean;
  selfAckBeforePersist: boolean;
  commitPreviousTerm: boolean;
}

function resolveInit(init: RaftInit): ResolvedInit {
  const problems: string[] = [];
  const posInt = (path: string, v: number): number => {
    if (!(Number.isSafeInteger(v) && v > 0)) problems.push(`${path}: must be a positive integer, got ${v}`);
    return v;
  };
  if (!isNodeId(init.id)) problems.push(`id: must be a positive integer, got ${init.id}`);
  const r: ResolvedInit = {
    id: init.id,
    electionTicks: posInt("electionTicks", init.electionTicks ?? electionTicksDefault),
    heartbeatTicks: posInt("heartbeatTicks", init.heartbeatTicks ?? heartbeatTicksDefault),
    preVote: init.preVote ?? true,
    checkQuorum: init.checkQuorum ?? true,
    appendEntriesMax: posInt("appendEntriesMax", init.appendEntriesMax ?? appendEntriesMax),
    appendBytesMax: posInt("appendBytesMax", init.appendBytesMax ?? appendBytesMax),
    inflightMessagesMax: posInt("inflightMessagesMax", init.inflightMessagesMax ?? inflightMessagesMax),
    snapshotRetryTicks: posInt("snapshotRetryTicks", init.snapshotRetryTicks ?? snapshotRetryTicksDefault),
    skipVoteLogCheck: init.testFaults?.skipVoteLogCheck ?? false,
    unconfirmedReads: init.testFaults?.unconfirmedReads ?? false,
    selfAckBeforePersist: init.testFaults?.selfAckBeforePersist ?? false,
    commitPreviousTerm: init.testFaults?.commitPreviousTerm ?? false,
  };
  if (r.heartbeatTicks >= r.electionTicks) problems.push("heartbeatTicks: must be less than electionTicks");
  if (problems.length > 0) throw new ConfigError(problems);
  return r;
}

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly recentActive: boolean;
}

export interface BasicStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId;
  readonly lead: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
}

export interface Status extends BasicStatus {
  readonly conf: ConfState;
  readonly leadTransferee: NodeId;
  /** Leader only: replication progress per peer (including itself). */
  readonly progress?: ReadonlyMap<NodeId, ProgressStatus>;
}

interface PendingRead {
  seq: number;
  index: number;
  context: string;
  from: NodeId;
}

interface Outstanding {
  hardState: HardState;
  snapshotIndex: number;
  lastEntry?: { index: number; term: number };
  committedTo: number;
  committedEntries: readonly Entry[];
}

type MessageInit = Partial<Message> & { type: MessageType; to: NodeId };

export class RaftNode {
  readonly id: NodeId;
  private readonly cfg: ResolvedInit;
  private readonly rng: Rng;

  private term: number;
  private vote: NodeId;
  private lead: NodeId = NONE;
  private role: Role = "follower";
  private readonly log: RaftLog;
  /** The latest full snapshot (metadata + data), sent to followers that fell behind compaction. */
  private snapshot: Snapshot | undefined;

  private voters = new Set<NodeId>();
  private learners = new Set<NodeId>();
  /** Index of the last applied configuration change (or snapshot carrying the configuration). */
  private confIndex: number;
  /** Leader: index of the latest conf change proposed; no new one until it is applied. */
  private pendingConfIndex = 0;

  private progress = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private leadTransferee: NodeId = NONE;

  private readSeq = 0;
  private pendingReads: PendingRead[] = [];
  /** Reads that arrived before this leader committed an entry of its term. */
  private readsBeforeCommit: { context: string; from: NodeId }[] = [];
  /** Confirmed reads waiting for their index to be applied. */
  private readStates: ReadState[] = [];

  private msgs: Message[] = [];
  /** Leader: entries were appended since the last Ready; their appends go out (one per peer) at ready(). */
  private appendsPending = false;
  private prevHardState: HardState;
  private outstanding: Outstanding | undefined;

  constructor(init: RaftInit) {
    this.cfg = resolveInit(init);
    this.id = this.cfg.id;
    this.rng = init.rng;
    const { hardState, snapshot, entries } = init.storage;
    const meta: SnapshotMeta = snapshot?.meta ?? { index: 0, term: 0, confState: { voters: [], learners: [] } };
    this.snapshot = snapshot;
    this.log = new RaftLog(meta, entries, hardState.commit);
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.prevHardState = hardState;
    this.setConf(meta.confState);
    this.confIndex = meta.index;
    this.becomeFollower(this.term, NONE);
  }

  // ---------------------------------------------------------------- inspection

  /** The cheap part of status(): no configuration or progress copies. */
  basicStatus(): BasicStatus {
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      lead: this.lead,
      commit: this.log.committed,
      applied: this.log.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
    };
  }

  status(): Status {
    let progress: Map<NodeId, ProgressStatus> | undefined;
    if (this.role === "leader") {
      progress = new Map();
      for (const [id, pr] of this.progress) {
        progress.set(id, { match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive });
      }
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      lead: this.lead,
      commit: this.log.committed,
      applied: this.log.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      conf: this.confState(),
      leadTransferee: this.leadTransferee,
      ...(progress ? { progress } : {}),
    };
  }

  /** Term of the entry at index i in the in-memory log (undefined if compacted or absent). */
  termAt(i: number): number | undefined {
    return this.log.term(i);
  }

  entryAt(i: number): Entry | undefined {
    return this.log.entry(i);
  }

  // ---------------------------------------------------------------- inputs

  tick(): void {
    if (this.role === "leader") this.tickLeader();
    else this.tickElection();
  }

  /** Starts an election now (as if the election timeout fired). */
  campaign(): void {
    this.hup(false);
  }

  /** Appends `data` to the log. Returns the entry's index. Leader only. */
  propose(data: Uint8Array): number {
    this.checkProposable();
    if (data.byteLength > entryBytesMax) throw new EntryTooLargeError(data.byteLength, entryBytesMax);
    return this.appendEntry("normal", data);
  }

  /** Proposes one membership change. Only one may be pending at a time. Returns the entry's index. */
  proposeConfChange(cc: ConfChange): number {
    this.checkProposable();
    if (this.pendingConfIndex > this.log.applied) {
      throw new ConfChangeError("pending", `conf change at index ${this.pendingConfIndex} not applied yet`);
    }
    this.validateConfChange(cc);
    const index = this.appendEntry("conf", encodeConfChange(cc));
    this.pendingConfIndex = index;
    return index;
  }

  /**
   * Requests a linearizable read. A ReadState with this context appears in a
   * later Ready once leadership is confirmed by a quorum and the read index is
   * applied. On a follower the request is forwarded to the leader; a lost
   * request produces nothing, so callers time out and retry.
   */
  readIndex(context: string): void {
    if (this.role === "leader") {
      this.leaderReadIndex(context, this.id);
      return;
    }
    if (this.lead === NONE) throw new NotLeaderError(NONE);
    this.send({ type: "readIndex", to: this.lead, context });
  }

  /** Hands leadership to `to` once it has caught up (TimeoutNow). Proposals are refused meanwhile. */
  transferLeader(to: NodeId): void {
    if (this.role !== "leader") throw new NotLeaderError(this.lead);
    if (to === this.id) throw new TransferError("cannot transfer leadership to self");
    if (!this.voters.has(to)) throw new TransferError(`node ${to} is not a voter`);
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    this.electionElapsed = 0;
    const pr = this.progress.get(to);
    assert(pr, "voter without progress");
    if (pr.match === this.log.lastIndex()) this.send({ type: "timeoutNow", to });
    else this.sendAppend(to);
  }

  step(m: Message): void {
    assert(m.to === this.id, () => `message for ${m.to} stepped into ${this.id}`);
    if (m.term > this.term) {
      if (m.type === "vote" || m.type === "preVote") {
        const inLease = this.cfg.checkQuorum && this.lead !== NONE && this.electionElapsed < this.cfg.electionTicks;
        if (!m.transfer && inLease) return; // a leader is alive: ignore the disruption
      }
      if (m.type === "preVote") {
        // never change term on a pre-vote
      } else if (m.type === "preVoteResp" && !m.reject) {
        // a granted pre-vote carries the term we will campaign at
      } else if (m.type === "app" || m.type === "heartbeat" || m.type === "snap") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === "heartbeat" || m.type === "app")) {
        // tell a stale leader about the newer term so it steps down
        this.send({ type: "appResp", to: m.from });
      } else if (m.type === "preVote") {
        this.send({ type: "preVoteResp", to: m.from, reject: true });
      }
      return;
    }

    if (m.type === "vote" || m.type === "preVote") {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case "leader":
        this.stepLeader(m);
        break;
      case "candidate":
      case "preCandidate":
        this.stepCandidate(m);
        break;
      case "follower":
        this.stepFollower(m);
        break;
    }
  }

  // ---------------------------------------------------------------- ready / advance

  hasReady(): boolean {
    assert(this.outstanding === undefined, "hasReady() while a Ready is outstanding: call advance() first");
    const hs = this.hardState();
    return (
      !sameHardState(hs, this.prevHardState) ||
      this.log.pendingSnapshot !== undefined ||
      this.log.unstableEntries().length > 0 ||
      this.msgs.length > 0 ||
      (this.appendsPending && this.role === "leader") ||
      this.log.committed > this.log.applied ||
      this.releasableReads(this.log.applied).length > 0
    );
  }

  ready(): Ready {
    assert(this.outstanding === undefined, "ready() called twice without advance()");
    this.flushAppends();
    const hardState = this.hardState();
    const snapshot = this.log.pendingSnapshot;
    const entries = this.log.unstableEntries();
    const committedEntries = this.log.committedAfter(this.log.applied);
    const lastEntry = entries[entries.length - 1];
    const committedTo = Math.max(
      this.log.applied,
      snapshot?.meta.index ?? 0,
      committedEntries[committedEntries.length - 1]?.index ?? 0,
    );
    const readStates = this.releasableReads(committedTo);
    this.readStates = this.readStates.filter((rs) => rs.index > committedTo);
    const { messages, earlyMessages } = this.orderMessages(this.msgs, hardState, snapshot !== undefined);
    this.msgs = [];
    this.outstanding = {
      hardState,
      snapshotIndex: snapshot?.meta.index ?? 0,
      ...(lastEntry ? { lastEntry: { index: lastEntry.index, term: lastEntry.term } } : {}),
      committedTo,
      committedEntries,
    };
    return {
      ...(sameHardState(hardState, this.prevHardState) ? {} : { hardState }),
      ...(snapshot ? { snapshot } : {}),
      entries,
      messages,
      earlyMessages,
      mustSync: entries.length > 0 || snapshot !== undefined || hardState.term !== this.prevHardState.term || hardState.vote !== this.prevHardState.vote,
      committedEntries,
      readStates,
    };
  }

  /**
   * A leader's appends and heartbeats may leave before its own write is durable
   * (Raft thesis §10.2.1; etcd sends them before saving): a follower's answer
   * counts toward commit, but the leader's own copy counts only once persisted
   * (advance()). Not when this Ready changes term or vote — those must be
   * durable before anything of the new term leaves — nor when it carries a
   * snapshot. Early messages are moved to the front, each group keeping its order.
   */
  private orderMessages(msgs: Message[], hs: HardState, snapshot: boolean): { messages: Message[]; earlyMessages: number } {
    const sameTermVote = hs.term === this.prevHardState.term && hs.vote === this.prevHardState.vote;
    if (this.role !== "leader" || !sameTermVote || snapshot) return { messages: msgs, earlyMessages: 0 };
    const early = msgs.filter((m) => m.type === "app" || m.type === "heartbeat");
    if (early.length === 0 || early.length === msgs.length) return { messages: msgs, earlyMessages: early.length };
    return { messages: [...early, ...msgs.filter((m) => m.type !== "app" && m.type !== "heartbeat")], earlyMessages: early.length };
  }

  /** One append per peer for everything proposed since the last Ready (instead of one per proposal). */
  private flushAppends(): void {
    if (!this.appendsPending) return;
    this.appendsPending = false;
    if (this.role !== "leader") return;
    for (const id of this.progress.keys()) if (id !== this.id) this.maybeSendAppend(id, false);
  }

  /** The driver has persisted, sent and applied the last Ready. */
  advance(): void {
    const rd = this.outstanding;
    assert(rd, "advance() without ready()");
    this.outstanding = undefined;
    this.prevHardState = rd.hardState;
    if (rd.snapshotIndex > 0 && this.log.pendingSnapshot?.meta.index === rd.snapshotIndex) {
      this.log.pendingSnapshot = undefined;
    }
    if (rd.lastEntry) {
      this.log.stableTo(rd.lastEntry.index, rd.lastEntry.term);
      this.selfAck();
    }
    for (const e of rd.committedEntries) {
      if (e.type === "conf" && e.index > this.confIndex) this.applyConfChange(decodeConfChange(e.data), e.index);
    }
    this.log.applied = Math.max(this.log.applied, rd.committedTo);
  }

  /**
   * Compacts the log up to the applied index. `data` is the state machine's
   * image at exactly `status().applied` (take it after `advance()`). The driver
   * persists the returned snapshot before dropping its durable entries.
   */
  compact(data: Uint8Array): Snapshot | undefined {
    assert(this.outstanding === undefined, "compact() while a Ready is outstanding");
    const index = this.log.applied;
    if (index <= this.log.snapshotMeta().index) return undefined;
    const term = this.log.term(index);
    assert(term !== undefined, "applied entry missing from the log");
    const meta: SnapshotMeta = { index, term, confState: this.confState() };
    this.log.compact(meta);
    this.snapshot = { meta, data };
    return this.snapshot;
  }

  // ---------------------------------------------------------------- roles

  private becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.role = "follower";
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    assert(this.role !== "leader", "leader cannot become pre-candidate");
    this.votes.clear();
    this.lead = NONE;
    this.role = "preCandidate";
  }

  private becomeCandidate(): void {
    assert(this.role !== "leader", "leader cannot become candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
  }

  private becomeLeader(): void {
    assert(this.role === "candidate", "only a candidate becomes leader");
    this.reset(this.term);
    this.role = "leader";
    this.lead = this.id;
    const next = this.log.lastIndex() + 1;
    for (const id of [...this.voters, ...this.learners]) {
      const pr = new Progress(next, this.cfg.inflightMessagesMax);
      this.progress.set(id, pr);
    }
    const self = this.progress.get(this.id);
    assert(self, "leader is not in its own configuration");
    self.match = this.cfg.selfAckBeforePersist ? this.log.lastIndex() : this.log.stableLastIndex();
    self.becomeReplicate();
    self.recentActive = true;
    this.appendEntry("normal", new Uint8Array(0));
    // No conf change until this term's first entry is applied: the leader then knows the latest
    // configuration and every older change is in effect (the fix for single-server changes, Ongaro 2015).
    this.pendingConfIndex = this.log.lastIndex();
  }

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.cfg.electionTicks + this.rng.int(this.cfg.electionTicks);
    this.leadTransferee = NONE;
    this.votes.clear();
    this.progress.clear();
    this.appendsPending = false;
    this.pendingReads = [];
    this.readsBeforeCommit = [];
  }

  // ---------------------------------------------------------------- elections

  private promotable(): boolean {
    return this.voters.has(this.id) && this.log.pendingSnapshot === undefined && !this.hasUnappliedConfChanges();
  }

  private hasUnappliedConfChanges(): boolean {
    for (let i = Math.max(this.log.applied, this.log.snapshotMeta().index) + 1; i <= this.log.committed; i++) {
      if (this.log.entry(i)?.type === "conf") return true;
    }
    return false;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout && this.promotable()) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        if (!this.quorumActive()) {
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, pr] of this.progress) pr.recentActive = id === this.id;
      }
      this.leadTransferee = NONE; // a transfer that did not finish in an election timeout is abandoned
    }
    for (const [id, pr] of this.progress) {
      if (pr.state === "snapshot" && ++pr.snapshotTicks >= this.cfg.snapshotRetryTicks) {
        pr.becomeProbe();
        this.sendAppend(id);
      }
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  private hup(transfer: boolean): void {
    if (this.role === "leader" || !this.promotable()) return;
    this.campaignAs(this.cfg.preVote && !transfer ? "preVote" : "vote", transfer);
  }

  private campaignAs(type: "preVote" | "vote", transfer: boolean): void {
    let term: number;
    if (type === "preVote") {
      this.becomePreCandidate();
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    if (this.poll(this.id, true) === "won") {
      if (type === "preVote") this.campaignAs("vote", transfer);
      else this.becomeLeader();
      return;
    }
    for (const to of this.voters) {
      if (to === this.id) continue;
      this.send({
        type,
        to,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        ...(transfer ? { transfer: true } : {}),
      });
    }
  }

  private poll(from: NodeId, granted: boolean): "won" | "lost" | "pending" {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const v of this.voters) {
      const g = this.votes.get(v);
      if (g === true) yes++;
      else if (g === false) no++;
    }
    const q = this.quorum();
    if (yes >= q) return "won";
    if (no > this.voters.size - q) return "lost";
    return "pending";
  }

  private handleVoteRequest(m: Message): void {
    const respType = m.type === "vote" ? "voteResp" : "preVoteResp";
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === "preVote" && m.term > this.term);
    const upToDate = this.cfg.skipVoteLogCheck || this.log.isUpToDate(m.index, m.logTerm);
    if (canVote && upToDate) {
      this.send({ type: respType, to: m.from, term: m.term });
      if (m.type === "vote") {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, to: m.from, reject: true });
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case "app":
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        break;
      case "heartbeat":
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        break;
      case "snap":
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        break;
      case "voteResp":
      case "preVoteResp": {
        const mine = this.role === "candidate" ? "voteResp" : "preVoteResp";
        if (m.type !== mine) break;
        const result = this.poll(m.from, !m.reject);
        if (result === "won") {
          if (this.role === "preCandidate") this.campaignAs("vote", false);
          else this.becomeLeader();
        } else if (result === "lost") {
          this.becomeFollower(this.term, NONE);
        }
        break;
      }
      default:
        break;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "app":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        break;
      case "heartbeat":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        break;
      case "snap":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        break;
      case "timeoutNow":
        this.hup(true);
        break;
      case "readIndexResp":
        assert(m.context !== undefined, "readIndexResp without context");
        this.readStates.push({ context: m.context, index: m.index });
        break;
      default:
        break;
    }
  }

  // ---------------------------------------------------------------- follower replication

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send({ type: "appResp", to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send({ type: "appResp", to: m.from, index: lastNew });
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({ type: "appResp", to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term });
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.send({ type: "heartbeatResp", to: m.from, ...(m.readSeq !== undefined ? { readSeq: m.readSeq } : {}) });
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    assert(s, "snap message without snapshot");
    if (this.restore(s)) {
      this.send({ type: "appResp", to: m.from, index: this.log.lastIndex() });
    } else {
      this.send({ type: "appResp", to: m.from, index: this.log.committed });
    }
  }

  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.snapshot = s;
    this.setConf(s.meta.confState);
    this.confIndex = s.meta.index;
    return true;
  }

  // ---------------------------------------------------------------- leader

  private checkProposable(): void {
    if (this.role !== "leader") throw new NotLeaderError(this.lead);
    if (this.leadTransferee !== NONE) {
      throw new ProposalDroppedError("transfer-in-progress", `leadership transfer to ${this.leadTransferee} in progress`);
    }
    if (!this.voters.has(this.id)) throw new ProposalDroppedError("removed", "this leader was removed from the group");
    if (this.log.lastIndex() - this.log.committed >= uncommittedEntriesMax) {
      throw new ProposalDroppedError("backpressure", `${uncommittedEntriesMax} entries already uncommitted`);
    }
  }

  private appendEntry(type: Entry["type"], data: Uint8Array): number {
    const index = this.log.lastIndex() + 1;
    this.log.append([{ index, term: this.term, type, data }]);
    if (this.cfg.selfAckBeforePersist) {
      // the deliberate bug: counts the leader's copy before the driver made it durable
      this.progress.get(this.id)?.maybeUpdate(index);
      this.maybeCommit();
    }
    this.appendsPending = true;
    return index;
  }

  /** The leader's own acknowledgement: what the driver has persisted counts toward commit. */
  private selfAck(): void {
    if (this.role !== "leader") return;
    const self = this.progress.get(this.id);
    if (self?.maybeUpdate(this.log.stableLastIndex()) && this.maybeCommit()) this.bcastAppend();
  }

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from);
    switch (m.type) {
      case "appResp":
        if (pr) this.handleAppendResponse(m, pr);
        break;
      case "heartbeatResp":
        if (pr) this.handleHeartbeatResponse(m, pr);
        break;
      case "readIndex":
        assert(m.context !== undefined, "readIndex without context");
        this.leaderReadIndex(m.context, m.from);
        break;
      default:
        break;
    }
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let hint = m.rejectHint;
      if (m.logTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    const confirmsProbe = pr.state === "probe" && pr.match === m.index;
    if (!pr.maybeUpdate(m.index) && !confirmsProbe) {
      // stale or duplicate ack; still frees window slots it covers
      if (pr.state === "replicate") pr.freeInflightsTo(m.index);
      return;
    }
    if (pr.state === "probe") {
      pr.becomeReplicate();
    } else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "replicate") {
      pr.freeInflightsTo(m.index);
    }
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from);
    }
    while (this.maybeSendAppend(m.from, false)) {
      // keep the pipeline full
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: "timeoutNow", to: m.from });
    }
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state === "replicate" && pr.inflights.length >= pr.inflightMax) pr.inflights.shift();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
    if (m.readSeq !== undefined && m.readSeq > pr.readAck) {
      pr.readAck = m.readSeq;
      this.releaseConfirmedReads();
    }
  }

  private maybeCommit(): boolean {
    const matches = [...this.voters].map((id) => this.progress.get(id)?.match ?? 0).sort((a, b) => b - a);
    const q = this.quorum();
    const mci = matches[q - 1];
    assert(mci !== undefined, "leader with an empty voter set");
    const before = this.log.term(this.log.committed) === this.term;
    // Only an entry of the current term is committed by counting replicas (Raft §5.4.2, Figure 8);
    // the deliberate bug accepts whatever term sits at the quorum index.
    const term = this.cfg.commitPreviousTerm ? (this.log.term(mci) ?? this.term) : this.term;
    if (!this.log.maybeCommit(mci, term)) return false;
    if (!before) this.flushReadsBeforeCommit();
    return true;
  }

  private quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  private quorumActive(): boolean {
    let active = 0;
    for (const id of this.voters) if (this.progress.get(id)?.recentActive) active++;
    return active >= this.quorum();
  }

  private bcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) return this.sendSnapshot(to, pr);
    const entries =
      pr.next <= this.log.lastIndex()
        ? this.log.slice(pr.next, this.log.lastIndex() + 1, this.cfg.appendEntriesMax, this.cfg.appendBytesMax)
        : [];
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: "app", to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed });
    const last = entries[entries.length - 1];
    if (pr.state === "replicate" && last) pr.sentEntries(last.index);
    else if (pr.state === "probe") pr.probeSent = true;
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const s = this.snapshot;
    assert(s && s.meta.index >= this.log.firstIndex() - 1, "entries compacted but no snapshot held");
    pr.becomeSnapshot(s.meta.index);
    this.send({ type: "snap", to, snapshot: s });
    return true;
  }

  private bcastHeartbeat(): void {
    const readSeq = this.pendingReads.length > 0 ? this.readSeq : undefined;
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      this.send({
        type: "heartbeat",
        to: id,
        commit: Math.min(pr.match, this.log.committed),
        ...(readSeq !== undefined ? { readSeq } : {}),
      });
    }
  }

  // ---------------------------------------------------------------- read index

  private leaderReadIndex(context: string, from: NodeId): void {
    if (this.cfg.unconfirmedReads) {
      // deliberately broken: no quorum confirmation, no committed-in-term check
      if (from === this.id) this.readStates.push({ context, index: this.log.committed });
      else this.send({ type: "readIndexResp", to: from, index: this.log.committed, context });
      return;
    }
    if (this.pendingReads.length + this.readsBeforeCommit.length >= readIndexPendingMax) {
      if (from === this.id) throw new ProposalDroppedError("backpressure", `${readIndexPendingMax} reads pending`);
      return; // a forwarded read is dropped; the follower's caller times out
    }
    if (this.log.term(this.log.committed) !== this.term) {
      this.readsBeforeCommit.push({ context, from });
      return;
    }
    this.readSeq++;
    this.pendingReads.push({ seq: this.readSeq, index: this.log.committed, context, from });
    if (this.quorum() === 1) this.releaseConfirmedReads();
    else this.bcastHeartbeat();
  }

  private flushReadsBeforeCommit(): void {
    const queued = this.readsBeforeCommit;
    this.readsBeforeCommit = [];
    for (const r of queued) this.leaderReadIndex(r.context, r.from);
  }

  private releaseConfirmedReads(): void {
    while (this.pendingReads.length > 0) {
      const r = this.pendingReads[0] as PendingRead;
      let acks = 0;
      for (const id of this.voters) {
        if (id === this.id || (this.progress.get(id)?.readAck ?? 0) >= r.seq) acks++;
      }
      if (acks < this.quorum()) return;
      this.pendingReads.shift();
      if (r.from === this.id) this.readStates.push({ context: r.context, index: r.index });
      else this.send({ type: "readIndexResp", to: r.from, index: r.index, context: r.context });
    }
  }

  private releasableReads(appliedTo: number): ReadState[] {
    return this.readStates.filter((rs) => rs.index <= appliedTo);
  }

  // ---------------------------------------------------------------- membership

  private confState(): ConfState {
    return { voters: [...this.voters].sort((a, b) => a - b), learners: [...this.learners].sort((a, b) => a - b) };
  }

  private setConf(cs: ConfState): void {
    this.voters = new Set(cs.voters);
    this.learners = new Set(cs.learners);
  }

  private validateConfChange(cc: ConfChange): void {
    if (!isNodeId(cc.node)) throw new ConfChangeError("invalid", `bad node id ${String(cc.node)}`);
    switch (cc.kind) {
      case "addLearner":
        if (this.voters.has(cc.node) || this.learners.has(cc.node)) {
          throw new ConfChangeError("invalid", `node ${cc.node} is already a member`);
        }
        break;
      case "addVoter":
        if (this.voters.has(cc.node)) throw new ConfChangeError("invalid", `node ${cc.node} is already a voter`);
        break;
      case "remove":
        if (!this.voters.has(cc.node) && !this.learners.has(cc.node)) {
          throw new ConfChangeError("invalid", `node ${cc.node} is not a member`);
        }
        if (this.voters.has(cc.node) && this.voters.size === 1) {
          throw new ConfChangeError("invalid", "cannot remove the last voter");
        }
        break;
    }
  }

  private applyConfChange(cc: ConfChange, index: number): void {
    switch (cc.kind) {
      case "addLearner":
        this.voters.delete(cc.node);
        this.learners.add(cc.node);
        break;
      case "addVoter":
        this.learners.delete(cc.node);
        this.voters.add(cc.node);
        break;
      case "remove":
        this.voters.delete(cc.node);
        this.learners.delete(cc.node);
        break;
    }
    this.confIndex = index;
    if (this.role !== "leader") return;
    if (cc.kind === "remove") {
      this.progress.delete(cc.node);
      if (this.leadTransferee === cc.node) this.leadTransferee = NONE;
      if (cc.node === this.id) {
        this.becomeFollower(this.term, NONE);
        return;
      }
    } else if (!this.progress.has(cc.node)) {
      this.progress.set(cc.node, new Progress(this.log.lastIndex() + 1, this.cfg.inflightMessagesMax));
      this.sendAppend(cc.node);
    }
    if (this.maybeCommit()) this.bcastAppend();
    // Quorum size changed: pending reads may now be confirmed.
    this.releaseConfirmedReads();
  }

  // ---------------------------------------------------------------- plumbing

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private send(init: MessageInit): void {
    if (this.msgs.length >= outboundMessagesMax) this.msgs.shift();
    this.msgs.push({
      from: this.id,
      term: this.term,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      ...init,
    });
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
