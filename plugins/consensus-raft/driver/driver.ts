/**
 * The Raft driver: owns everything the pure core does not — the clock (a
 * timer ticks the core every `tickMs`), durable storage (bun:sqlite, one
 * transaction per Ready, fsync before any message of that Ready leaves), the
 * transport, and the state machine. It implements the SDK's ConsensusGroup.
 *
 * One Ready at a time, synchronously: send the leader's early messages
 * (appends, heartbeats: followers write in parallel with the leader) →
 * persist → send the rest → restore snapshot / apply committed entries →
 * serve reads → advance. The leader's own copy counts toward commit only
 * after advance(), i.e. once durable. A Ready that only moves the commit index
 * is written without fsync (etcd's MustSync): a restart may lose it and
 * learns it again. Inputs arriving in the same event-loop turn (messages,
 * proposals) are batched into one Ready, so concurrent proposals share one
 * fsync and one append message per follower (group commit).
 */
import { GreyError, MalformedInputError, TimeoutError } from "../../sdk/errors.ts";
import type {
  CallOptions, ConsensusComponents, ConsensusGroup, LeaderInfo, Membership, MembershipChange, MemberId,
} from "../../sdk/consensus.ts";
import {
  AssertionFailure, NotLeaderError, ProposalDroppedError, RaftNode, TransferError, Xoshiro128, bootstrapStorage,
  type Entry, type NodeId,
} from "../core/index.ts";
import {
  pendingProposalsMax, raftAppendBytesMax, requestTimeoutMsDefault, snapshotBytesMax, snapshotEveryEntriesDefault,
  tickMsDefault, tickMsMax, tickMsMin,
} from "./constants.ts";
import { GroupStoppedError, ProposalLostError } from "./errors.ts";
import { RaftStorage } from "./storage.ts";
import type { RaftTransport } from "./transport.ts";
import { validateRaftMessage } from "./wire.ts";
import { ConfigError } from "../../sdk/errors.ts";

export interface RaftDriverInit {
  id: NodeId;
  /** Founding voters, the same list on every founder. Omit for a member added later (starts empty). */
  founders?: readonly NodeId[];
  /** bun:sqlite file holding this member's log, hard state and snapshot. */
  storagePath: string;
  /** fsync every Ready (default true). false only for benches/tests that say so. */
  durable?: boolean;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  snapshotEveryEntries?: number;
  requestTimeoutMs?: number;
  /** Seed for election-timeout randomness (default: random). */
  seed?: number;
}

export interface RaftDriverComponents extends ConsensusComponents {
  transport: RaftTransport;
}

export interface DriverStats {
  readies: number;
  fsyncs: number;
  rejectedMessages: number;
  applied: number;
}

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: unknown): void;
  timer: ReturnType<typeof setTimeout>;
}

function resolveInit(init: RaftDriverInit) {
  const problems: string[] = [];
  const tickMs = init.tickMs ?? tickMsDefault;
  if (!(Number.isInteger(tickMs) && tickMs >= tickMsMin && tickMs <= tickMsMax)) problems.push(`tickMs: must be an integer in [${tickMsMin}, ${tickMsMax}], got ${tickMs}`);
  if (!(Number.isSafeInteger(init.id) && init.id > 0)) problems.push(`id: must be a positive integer, got ${init.id}`);
  if (init.founders && (init.founders.length === 0 || new Set(init.founders).size !== init.founders.length)) problems.push("founders: must be a non-empty list without duplicates");
  if (!init.storagePath) problems.push("storagePath: required");
  if (problems.length) throw new ConfigError(problems);
  return {
    tickMs,
    snapshotEveryEntries: init.snapshotEveryEntries ?? snapshotEveryEntriesDefault,
    requestTimeoutMs: init.requestTimeoutMs ?? requestTimeoutMsDefault,
    electionTicks: init.electionTicks ?? 10,
  };
}

export class RaftDriver implements ConsensusGroup {
  readonly id: NodeId;
  private readonly cfg: ReturnType<typeof resolveInit>;
  private storage: RaftStorage | undefined;
  private node: RaftNode | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private scheduled = false;
  private stopped: string | undefined = "not started";
  private readonly proposals = new Map<number, Waiter<{ index: number; result: unknown }> & { term: number }>();
  private readonly reads = new Map<string, Waiter<{ index: number }>>();
  private readonly transfers = new Set<{ to: NodeId; w: Waiter<void> }>();
  private readSeq = 0;
  private lastLeader: { id: NodeId; term: number } = { id: 0, term: 0 };
  private readonly leaderListeners = new Set<(l: LeaderInfo | undefined) => void>();
  private snapshotIndex = 0;
  readonly stats: DriverStats = { readies: 0, fsyncs: 0, rejectedMessages: 0, applied: 0 };

  constructor(private readonly init: RaftDriverInit, private readonly c: RaftDriverComponents) {
    this.cfg = resolveInit(init);
    this.id = init.id;
  }

  async start(): Promise<void> {
    const storage = RaftStorage.open(this.init.storagePath, { durable: this.init.durable ?? true });
    if (storage.isEmpty() && this.init.founders) storage.bootstrap(bootstrapStorage([...this.init.founders].sort((a, b) => a - b)));
    const stored = storage.load();
    const sm = this.c.stateMachine;
    if (stored.snapshot && sm.appliedIndex() < stored.snapshot.meta.index) sm.restore(stored.snapshot.meta.index, stored.snapshot.data);
    this.snapshotIndex = stored.snapshot?.meta.index ?? 0;
    this.storage = storage;
    this.node = new RaftNode({
      id: this.id,
      storage: stored,
      rng: new Xoshiro128(this.init.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]!),
      electionTicks: this.cfg.electionTicks,
      ...(this.init.heartbeatTicks ? { heartbeatTicks: this.init.heartbeatTicks } : {}),
      appendBytesMax: raftAppendBytesMax,
    });
    this.stopped = undefined;
    this.c.transport.listen((raw, from) => this.receive(raw, from));
    await this.c.transport.start();
    this.timer = setInterval(() => {
      if (this.stopped) return;
      this.node!.tick();
      this.schedule();
    }, this.cfg.tickMs);
    this.schedule();
  }

  async stop(): Promise<void> {
    if (this.stopped === "stopped") return;
    this.halt("stopped");
    await this.c.transport.stop().catch(() => {});
    this.storage?.close();
  }

  // ------------------------------------------------------------ ConsensusGroup

  propose(data: Uint8Array, opts: CallOptions = {}): Promise<{ index: number; result: unknown }> {
    const node = this.running();
    if (data.byteLength === 0) return Promise.reject(new MalformedInputError("empty proposal"));
    if (this.proposals.size >= pendingProposalsMax) return Promise.reject(new ProposalDroppedError("backpressure", `${pendingProposalsMax} proposals pending`));
    let index: number;
    try {
      index = node.propose(data);
    } catch (err) {
      return Promise.reject(err);
    }
    const term = node.basicStatus().term;
    this.schedule();
    return this.wait(this.proposals, index, `proposal ${index}`, opts, { term });
  }

  read(opts: CallOptions = {}): Promise<{ index: number }> {
    const node = this.running();
    const ctx = `${this.id}:${++this.readSeq}`;
    try {
      node.readIndex(ctx);
    } catch (err) {
      return Promise.reject(err);
    }
    this.schedule();
    return this.wait(this.reads, ctx, "read index", opts, {});
  }

  leader(): LeaderInfo | undefined {
    if (!this.node) return undefined;
    const s = this.node.basicStatus();
    return s.lead === 0 ? undefined : { id: s.lead, term: s.term, self: s.lead === this.id };
  }

  membership(): Membership {
    const conf = this.running().status().conf;
    return { voters: [...conf.voters], learners: [...conf.learners] };
  }

  async changeMembership(change: MembershipChange, opts: CallOptions = {}): Promise<void> {
    const node = this.running();
    const index = node.proposeConfChange({ kind: change.kind, node: change.member });
    const term = node.basicStatus().term;
    this.schedule();
    await this.wait(this.proposals, index, `membership change ${index}`, opts, { term });
  }

  transferLeadership(to: MemberId, opts: CallOptions = {}): Promise<void> {
    const node = this.running();
    try {
      node.transferLeader(to);
    } catch (err) {
      return Promise.reject(err);
    }
    this.schedule();
    return new Promise<void>((resolve, reject) => {
      const t = { to, w: undefined as unknown as Waiter<void> };
      const done = (err?: unknown) => {
        clearTimeout(t.w.timer);
        this.transfers.delete(t);
        err ? reject(err) : resolve();
      };
      const ms = Math.min(this.cfg.requestTimeoutMs, 3 * this.cfg.electionTicks * this.cfg.tickMs);
      t.w = { resolve: () => done(), reject: done, timer: setTimeout(() => done(new TransferError(`leadership did not move to ${to} within ${ms} ms`)), ms) };
      opts.signal?.addEventListener("abort", () => done(opts.signal!.reason), { once: true });
      this.transfers.add(t);
    });
  }

  onLeaderChange(fn: (leader: LeaderInfo | undefined) => void): () => void {
    this.leaderListeners.add(fn);
    return () => this.leaderListeners.delete(fn);
  }

  /** Core status, for metrics and tests. */
  status() {
    return this.running().basicStatus();
  }

  /** Leader only: how far each member's log matches ours (learners' catch-up before promotion). */
  progress(): ReadonlyMap<MemberId, { match: number }> | undefined {
    return this.running().status().progress;
  }

  // ------------------------------------------------------------ internals

  private running(): RaftNode {
    if (this.stopped || !this.node) throw new GroupStoppedError(this.stopped ?? "not started");
    return this.node;
  }

  private wait<K, T>(map: Map<K, Waiter<T>>, key: K, what: string, opts: CallOptions, extra: object): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = (err: unknown, v?: T) => {
        clearTimeout(w.timer);
        map.delete(key);
        err ? reject(err) : resolve(v as T);
      };
      const w: Waiter<T> = {
        ...extra,
        resolve: (v) => finish(undefined, v),
        reject: (e) => finish(e),
        timer: setTimeout(() => finish(new TimeoutError(what, this.cfg.requestTimeoutMs)), this.cfg.requestTimeoutMs),
      };
      opts.signal?.addEventListener("abort", () => finish(opts.signal!.reason ?? new TimeoutError(what, 0)), { once: true });
      map.set(key, w);
    });
  }

  private receive(raw: unknown, fromHint: NodeId | undefined): void {
    if (this.stopped || !this.node) return;
    let m;
    try {
      m = validateRaftMessage(raw);
      if (m.to !== this.id) throw new MalformedInputError(`message for ${m.to} delivered to ${this.id}`);
      if (fromHint !== undefined && m.from !== fromHint) throw new MalformedInputError(`message claims to be from ${m.from} but came from ${fromHint}`);
    } catch (err) {
      this.stats.rejectedMessages++;
      this.c.logger.debug("raft message rejected", { from: fromHint, error: (err as Error).message });
      return;
    }
    this.node.step(m);
    this.schedule();
  }

  /** Batch everything that happens in this turn of the event loop into one Ready. */
  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.stopped) return;
      try {
        this.processReady();
      } catch (err) {
        if (err instanceof AssertionFailure) throw err;
        // A member that cannot persist must not take part: fail-stop.
        this.c.logger.error("raft driver stopped", { error: (err as Error).message });
        this.halt(`storage failure: ${(err as Error).message}`);
      }
    });
  }

  private processReady(): void {
    const node = this.node!;
    const storage = this.storage!;
    const sm = this.c.stateMachine;
    while (node.hasReady()) {
      const rd = node.ready();
      this.stats.readies++;
      // a leader's appends and heartbeats go out first, so followers write while we do
      for (let i = 0; i < rd.earlyMessages; i++) this.c.transport.send(rd.messages[i]!);
      if (rd.hardState || rd.snapshot || rd.entries.length > 0) {
        storage.save({ ...(rd.hardState ? { hardState: rd.hardState } : {}), ...(rd.snapshot ? { snapshot: rd.snapshot } : {}), entries: rd.entries }, rd.mustSync);
        if (rd.mustSync) this.stats.fsyncs++;
      }
      for (let i = rd.earlyMessages; i < rd.messages.length; i++) this.c.transport.send(rd.messages[i]!);
      if (rd.snapshot && sm.appliedIndex() < rd.snapshot.meta.index) {
        sm.restore(rd.snapshot.meta.index, rd.snapshot.data);
        this.snapshotIndex = rd.snapshot.meta.index;
      }
      this.applyEntries(rd.committedEntries);
      for (const rs of rd.readStates) this.reads.get(rs.context)?.resolve({ index: rs.index });
      node.advance();
    }
    this.maybeCompact();
    this.noticeLeader();
  }

  /** Applies a Ready's committed entries (in one state machine transaction when it offers applyBatch), then settles their proposals. */
  private applyEntries(entries: readonly Entry[]): void {
    const sm = this.c.stateMachine;
    const applied = sm.appliedIndex();
    const cmds = entries.filter((e) => e.type === "normal" && e.data.byteLength > 0 && e.index > applied).map((e) => ({ index: e.index, data: e.data }));
    const results = new Map<number, unknown>();
    if (cmds.length > 0) {
      const out = sm.applyBatch ? sm.applyBatch(cmds) : cmds.map((c) => sm.apply(c));
      cmds.forEach((c, i) => results.set(c.index, out[i]));
      this.stats.applied += cmds.length;
    }
    for (const e of entries) {
      const w = this.proposals.get(e.index) as (Waiter<{ index: number; result: unknown }> & { term: number }) | undefined;
      if (!w) continue;
      if (w.term === e.term) w.resolve({ index: e.index, result: results.get(e.index) });
      else w.reject(new ProposalLostError(e.index));
    }
  }

  private maybeCompact(): void {
    const node = this.node!;
    const sm = this.c.stateMachine;
    const applied = node.basicStatus().applied;
    if (applied - this.snapshotIndex < this.cfg.snapshotEveryEntries || sm.appliedIndex() > applied) return;
    const data = sm.snapshot();
    if (data.byteLength > snapshotBytesMax) {
      this.c.logger.warn("snapshot too large: log not compacted", { bytes: data.byteLength, limit: snapshotBytesMax });
      this.snapshotIndex = applied; // retry after another snapshotEveryEntries
      return;
    }
    const snap = node.compact(data);
    if (!snap) return;
    this.storage!.saveSnapshot(snap);
    this.snapshotIndex = snap.meta.index;
  }

  private noticeLeader(): void {
    const s = this.node!.basicStatus();
    if (s.lead === this.lastLeader.id && s.term === this.lastLeader.term) return;
    this.lastLeader = { id: s.lead, term: s.term };
    const info = this.leader();
    for (const t of this.transfers) if (s.lead === t.to) t.w.resolve();
    for (const fn of this.leaderListeners) {
      try {
        fn(info);
      } catch (err) {
        this.c.logger.warn("leader listener threw", { error: (err as Error).message });
      }
    }
  }

  private halt(why: string): void {
    this.stopped = why;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const err = new GroupStoppedError(why);
    for (const w of [...this.proposals.values(), ...this.reads.values()]) w.reject(err);
    for (const t of [...this.transfers]) t.w.reject(err);
  }
}

/** Is this error one a caller should retry against the leader (or later)? */
export function isRetryable(err: unknown): boolean {
  return err instanceof NotLeaderError || err instanceof ProposalDroppedError || err instanceof ProposalLostError || err instanceof TimeoutError || (err instanceof GreyError && err.code === "ERR_RAFT_STOPPED");
}
