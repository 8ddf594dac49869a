/**
 * A deterministic simulation of a Raft group (TigerBeetle VOPR style): one
 * seeded PRNG drives the clock, network (loss, duplication, delay/reordering,
 * symmetric and asymmetric partitions), disks (unsynced writes lost at crash),
 * crashes and restarts, membership changes, leadership transfers and a
 * key-value client workload. Safety invariants are asserted continuously; the
 * client history is checked for linearizability at the end; a final phase
 * heals everything and requires the group to make progress again.
 */
import { AssertionFailure } from "../../plugins/consensus-raft/core/assert.ts";
import { emptyStorage, bootstrapStorage } from "../../plugins/consensus-raft/core/confchange.ts";
import { ConfChangeError, NotLeaderError, ProposalDroppedError, TransferError } from "../../plugins/consensus-raft/core/errors.ts";
import { Xoshiro128 } from "../../plugins/consensus-raft/core/prng.ts";
import { RaftNode, type TestFaults } from "../../plugins/consensus-raft/core/raft.ts";
import type { Entry, Message, NodeId, Ready } from "../../plugins/consensus-raft/core/types.ts";
import { Disk } from "./disk.ts";
import { EventQueue } from "./events.ts";
import { KvStore, decodeCommand, encodeCommand } from "./kv.ts";
import { checkHistory, checkStepsMax, formatOperation, type KvInput, type KvOutput, type Operation } from "./linearizability.ts";

export interface SimOptions {
  seed: number;
  /** Client operations to invoke. */
  ops: number;
  /** Deliberate core bugs, to prove the simulator catches them. */
  raftFaults?: TestFaults;
  /** A deliberately broken driver: sends a Ready's messages before its writes are synced. */
  driverFaults?: { sendBeforeSync?: boolean };
  trace?: boolean;
  checkStepsMax?: number;
}

export type FailureKind = "safety" | "linearizability" | "liveness" | "assertion";

export interface SimResult {
  seed: number;
  ok: boolean;
  failure?: { kind: FailureKind; message: string; witness?: string[]; trace?: string[] };
  stats: SimStats;
}

export interface SimStats {
  simMs: number;
  events: number;
  opsOk: number;
  opsUnknown: number;
  opsRefused: number;
  elections: number;
  crashes: number;
  snapshotsSent: number;
  confChanges: number;
  transfers: number;
  linearizability: "ok" | "unknown" | "violation" | "skipped";
}

/** Faults and shape of one run, chosen from the seed (swarm testing: each seed gets its own mix). */
interface Scenario {
  voters: number;
  spares: number;
  clients: number;
  keys: number;
  lossP: number;
  dupP: number;
  delayMaxMs: number;
  diskLatencyMaxMs: number;
  partitionEveryMs: number;
  crashEveryMs: number;
  membershipEveryMs: number;
  transferEveryMs: number;
  compactAfterEntries: number;
  readIndexP: number;
  /** Each node's tick period is tickMs * (1 + skew * u), u uniform per node: clocks run at different rates. */
  clockSkew: number;
  /** Probability that the crash nemesis pauses a node (a stalled process) instead of crashing it. */
  pauseP: number;
  /** The leader sends a Ready's appends and heartbeats before its write is synced (as RaftDriver does). */
  leaderSendsEarly: boolean;
  /** Probability that the crash nemesis instead cuts the leader's power in the middle of a slow fsync of new entries. */
  crashMidSyncP: number;
  // Figure 8 knobs (Raft §5.4.2): histories where an older term's entry reaches a quorum under a new
  // leader whose own entries have not, and that leader dies before they do.
  /** Most entries per append: small batches let a lagging follower acknowledge an older term's entries before the leader's own. */
  appendEntriesMax: number;
  /**
   * Probability that a leader that has not yet committed an entry of its own term crashes once a Ready
   * that appended or committed entries is durable, before that Ready's messages leave (its clients may
   * have had their answers). Such leaders are the Figure 8 S1 and S5: short-lived, mid catch-up.
   */
  catchUpCrashP: number;
  /** Probability that a partition leaves the leader on the minority side (alone in 3 voters, with one other in 5). */
  leaderMinorityP: number;
  /** Election timeouts differ per node: electionTicks * (1 + skew * u), u uniform per node (some nodes nearly always win). */
  electionSkew: number;
}

const tickMs = 10;
const electionTicks = 10;
const opTimeoutMs = 1500;
const livenessDeadlineMs = 30_000;
const traceEventsMax = 400;
/** Appends per leader term that may trigger a catch-up crash (see Scenario.catchUpCrashP). */
const catchUpAppendRollsMax = 3;

class SimViolation extends Error {
  constructor(readonly kind: FailureKind, message: string) {
    super(message);
  }
}

function chooseScenario(rng: Xoshiro128): Scenario {
  return {
    voters: rng.pick([3, 3, 5]),
    spares: 3,
    clients: 2 + rng.int(4),
    keys: 1 + rng.int(4),
    lossP: rng.pick([0, 0.01, 0.05, 0.15]),
    dupP: rng.pick([0, 0.02, 0.1]),
    delayMaxMs: rng.pick([2, 10, 40]),
    diskLatencyMaxMs: rng.pick([0, 2, 10]),
    partitionEveryMs: rng.pick([Infinity, 2000, 700]),
    crashEveryMs: rng.pick([Infinity, 3000, 1000]),
    membershipEveryMs: rng.pick([Infinity, 1500]),
    transferEveryMs: rng.pick([Infinity, 2500]),
    compactAfterEntries: rng.pick([1e9, 40, 8]),
    readIndexP: rng.pick([0.5, 0.8]),
    clockSkew: rng.pick([0, 0.3, 1]),
    pauseP: rng.pick([0, 0.5]),
    leaderSendsEarly: rng.pick([false, true]),
    crashMidSyncP: rng.pick([0, 0.5]),
    appendEntriesMax: rng.pick([64, 4, 1, 1]),
    catchUpCrashP: rng.pick([0, 0.2, 0.5, 0.5]),
    leaderMinorityP: rng.pick([0, 0.7]),
    electionSkew: rng.pick([0, 2]),
  };
}

interface SimNode {
  id: NodeId;
  disk: Disk;
  raft: RaftNode | null;
  kv: KvStore;
  incarnation: number;
  /** Tick period of this node's clock. */
  tickPeriodMs: number;
  electionTicks: number;
  /** A paused process handles nothing until then; its inputs wait. */
  pausedUntil: number;
  syncing: boolean;
  /** Crash this node during its next write of entries, after its early messages had time to be answered. */
  crashMidSync: boolean;
  /** Catch-up crash rolls on appends this node made as leader, in `catchUpTerm`. */
  catchUpRolls: number;
  catchUpTerm: number;
  started: boolean;
  removed: boolean;
  /** Proposals made on this node, by command id. */
  waiting: Map<number, (out: KvOutput) => void>;
  /** Read-index requests made on this node, by context. */
  reads: Map<string, () => void>;
}

interface Client {
  id: number;
  leaderHint: NodeId;
  lastSeen: Map<string, string | null>;
}

export function runSimulation(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}

class Simulation {
  private readonly rng: Xoshiro128;
  private readonly sc: Scenario;
  private readonly q = new EventQueue();
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly blocked = new Set<string>();
  private readonly clients: Client[] = [];
  private readonly history: Operation[] = [];
  private readonly trace: string[] = [];
  private stamp = 0;
  private nextOpId = 1;
  private opsInvoked = 0;
  private opsDone = 0;
  private nemesisOn = true;
  private finished = false;
  private events = 0;
  private readonly stats: SimStats = {
    simMs: 0,
    events: 0,
    opsOk: 0,
    opsUnknown: 0,
    opsRefused: 0,
    elections: 0,
    crashes: 0,
    snapshotsSent: 0,
    confChanges: 0,
    transfers: 0,
    linearizability: "skipped",
  };

  // invariant bookkeeping
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** Applied entries by index: what every node must apply there. */
  private readonly appliedAt = new Map<number, { term: number; data: string }>();
  /** Entries committed by a leader: entry term and the lowest leader term that committed it. */
  private readonly committedAt = new Map<number, { term: number; commitTerm: number }>();
  private readonly leaderCommitSeen = new Map<NodeId, number>();
  /** (index, term) -> content and previous term, for log matching. */
  private readonly logAt = new Map<string, { data: string; prevTerm: number | undefined }>();
  private readonly pendingRemovals: { node: NodeId; index: number; term: number }[] = [];

  constructor(private readonly opts: SimOptions) {
    this.rng = new Xoshiro128(opts.seed);
    this.sc = chooseScenario(this.rng);
  }

  run(): SimResult {
    try {
      this.setup();
      const hardStopMs = this.opts.ops * 400 + 120_000;
      while (!this.finished && this.q.runNext(hardStopMs)) this.events++;
      if (!this.finished) throw new SimViolation("liveness", `run did not finish by ${hardStopMs} ms simulated`);
      this.checkLinearizability();
      return this.result();
    } catch (err) {
      return this.result(err);
    }
  }

  private result(err?: unknown): SimResult {
    this.stats.simMs = this.q.now;
    this.stats.events = this.events;
    if (err === undefined) return { seed: this.opts.seed, ok: true, stats: this.stats };
    let kind: FailureKind = "assertion";
    let witness: string[] | undefined;
    if (err instanceof SimViolation) kind = err.kind;
    if (err instanceof LinearizabilityViolation) {
      kind = "linearizability";
      witness = err.witness;
    }
    const message =
      err instanceof SimViolation || err instanceof LinearizabilityViolation
        ? err.message
        : err instanceof AssertionFailure
          ? `core assertion: ${err.message}\n${err.stack ?? ""}`
          : `unexpected error: ${err instanceof Error ? `${err.message}\n${err.stack ?? ""}` : String(err)}`;
    return {
      seed: this.opts.seed,
      ok: false,
      failure: { kind, message, ...(witness ? { witness } : {}), ...(this.opts.trace ? { trace: this.trace } : {}) },
      stats: this.stats,
    };
  }

  private log(what: () => string): void {
    if (!this.opts.trace) return;
    this.trace.push(`${this.q.now.toFixed(1).padStart(9)}ms ${what()}`);
    if (this.trace.length > traceEventsMax) this.trace.shift();
  }

  // ------------------------------------------------------------------ setup

  private setup(): void {
    const voters = Array.from({ length: this.sc.voters }, (_, i) => i + 1);
    const boot = bootstrapStorage(voters);
    for (const id of voters) this.addNode(id, new Disk(boot));
    for (let i = 1; i <= this.sc.spares; i++) this.addNode(this.sc.voters + i, new Disk(emptyStorage()));
    for (const id of voters) this.start(this.node(id));
    for (let c = 0; c < this.sc.clients; c++) {
      const client: Client = { id: c, leaderHint: 0, lastSeen: new Map() };
      this.clients.push(client);
      this.q.schedule(this.rng.int(50), () => this.invoke(client));
    }
    this.every(this.sc.partitionEveryMs, () => this.partitionNemesis());
    this.every(this.sc.crashEveryMs, () => this.crashNemesis());
    this.every(this.sc.membershipEveryMs, () => this.membershipNemesis());
    this.every(this.sc.transferEveryMs, () => this.transferNemesis());
  }

  private every(periodMs: number, fn: () => void): void {
    if (!Number.isFinite(periodMs)) return;
    const loop = (): void => {
      if (!this.nemesisOn) return;
      fn();
      this.q.schedule(periodMs / 2 + this.rng.int(periodMs), loop);
    };
    this.q.schedule(this.rng.int(periodMs), loop);
  }

  private addNode(id: NodeId, disk: Disk): void {
    this.nodes.set(id, {
      id,
      disk,
      raft: null,
      kv: new KvStore(),
      incarnation: 0,
      tickPeriodMs: tickMs * (1 + this.sc.clockSkew * this.rng.float()),
      electionTicks: Math.round(electionTicks * (1 + this.sc.electionSkew * this.rng.float())),
      pausedUntil: 0,
      syncing: false,
      crashMidSync: false,
      catchUpRolls: 0,
      catchUpTerm: 0,
      started: false,
      removed: false,
      waiting: new Map(),
      reads: new Map(),
    });
  }

  private node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  // ------------------------------------------------------------------ node lifecycle

  private start(n: SimNode): void {
    n.started = true;
    n.incarnation++;
    n.syncing = false;
    n.crashMidSync = false;
    n.waiting = new Map();
    n.reads = new Map();
    const storage = n.disk.storage();
    n.kv = storage.snapshot ? KvStore.restore(storage.snapshot.data) : new KvStore();
    n.raft = new RaftNode({
      id: n.id,
      storage,
      rng: new Xoshiro128((this.opts.seed * 31 + n.id * 7919 + n.incarnation * 104_729) >>> 0),
      electionTicks: n.electionTicks,
      heartbeatTicks: 1,
      appendEntriesMax: this.sc.appendEntriesMax,
      ...(this.opts.raftFaults ? { testFaults: this.opts.raftFaults } : {}),
    });
    this.log(() => `start n${n.id} (incarnation ${n.incarnation}, term ${storage.hardState.term}, ${storage.entries.length} entries)`);
    const inc = n.incarnation;
    const tick = (): void => {
      if (n.incarnation !== inc || !n.raft) return;
      if (this.q.now < n.pausedUntil) {
        this.q.schedule(n.pausedUntil - this.q.now, tick);
        return;
      }
      n.raft.tick();
      this.afterInput(n);
      this.q.schedule(n.tickPeriodMs, tick);
    };
    this.q.schedule(this.rng.int(tickMs) + 1, tick);
    this.afterInput(n);
  }

  private crash(n: SimNode): void {
    if (!n.raft) return;
    this.log(() => `crash n${n.id}`);
    this.stats.crashes++;
    n.raft = null;
    n.incarnation++;
    n.syncing = false;
    n.disk.crash();
    n.waiting = new Map();
    n.reads = new Map();
  }

  private afterInput(n: SimNode): void {
    this.observe(n);
    this.pump(n);
  }

  /** Takes the node's Ready: write to disk now, sync later, then send, apply, advance. */
  private pump(n: SimNode): void {
    const raft = n.raft;
    if (!raft || n.syncing || !raft.hasReady()) return;
    const rd = raft.ready();
    n.disk.write(rd);
    const sendBeforeSync = this.opts.driverFaults?.sendBeforeSync ?? false;
    // what may leave now, in parallel with the (simulated) fsync; the rest waits for it
    const early = sendBeforeSync ? rd.messages.length : this.sc.leaderSendsEarly ? rd.earlyMessages : 0;
    const crashing = n.crashMidSync && rd.entries.length > 0;
    // with the power cut coming, one peer also misses the early appends (the worst case: a single durable copy elsewhere)
    const missed = crashing && early > 0 ? this.rng.pick(rd.messages.slice(0, early)).to : 0;
    for (const m of rd.messages.slice(0, early)) if (m.to !== missed) this.send(m);
    n.syncing = true;
    const inc = n.incarnation;
    const sync = (): void => {
      if (n.incarnation !== inc) return; // crashed before the sync: the write is lost
      if (this.q.now < n.pausedUntil) {
        this.q.schedule(n.pausedUntil - this.q.now, sync);
        return;
      }
      n.disk.sync();
      this.checkLogMatching(n, rd);
      if (this.crashedBeforeSend(n, raft, rd)) return;
      for (const m of rd.messages.slice(early)) this.send(m);
      this.apply(n, rd);
      raft.advance();
      n.syncing = false;
      this.maybeCompact(n, raft);
      this.afterInput(n);
    };
    let latencyMs = this.rng.int(this.sc.diskLatencyMaxMs + 1);
    if (crashing) {
      // a stuck fsync, and the power goes once answers to the early messages could be back
      n.crashMidSync = false;
      latencyMs = 4 * this.sc.delayMaxMs + this.sc.diskLatencyMaxMs + 20;
      this.q.schedule(2 * this.sc.delayMaxMs + this.sc.diskLatencyMaxMs + 3, () => {
        if (n.incarnation !== inc) return;
        this.log(() => `n${n.id} loses power mid-fsync`);
        this.crashAndRestart(n);
      });
    }
    this.q.schedule(latencyMs, sync);
  }

  /**
   * The catch-up crash (see `catchUpCrashP`): the Ready is durable and applied, its messages are lost.
   * Only a leader's first `catchUpAppendRollsMax` appends of a term roll (the empty entry and the
   * first proposals), so that a leader kept busy by clients is not killed for ever; commits of older
   * entries roll every time.
   */
  private crashedBeforeSend(n: SimNode, raft: RaftNode, rd: Ready): boolean {
    if (!this.nemesisOn || this.sc.catchUpCrashP === 0) return false;
    const st = raft.basicStatus();
    if (st.role !== "leader" || raft.termAt(st.commit) === st.term) return false;
    if (n.catchUpTerm !== st.term) {
      n.catchUpTerm = st.term;
      n.catchUpRolls = 0;
    }
    const earlyAppend = rd.entries.length > 0 && n.catchUpRolls++ < catchUpAppendRollsMax;
    if (!(earlyAppend || rd.committedEntries.length > 0) || !this.rng.chance(this.sc.catchUpCrashP)) return false;
    this.apply(n, rd);
    this.log(() => `n${n.id} (leader of term ${st.term}, commit ${st.commit}) crashes before sending`);
    this.crashAndRestart(n);
    return true;
  }

  private apply(n: SimNode, rd: Ready): void {
    if (rd.snapshot) {
      n.kv = KvStore.restore(rd.snapshot.data);
      this.log(() => `n${n.id} restores snapshot at ${rd.snapshot?.meta.index}`);
    }
    for (const e of rd.committedEntries) {
      this.checkApplied(n, e);
      if (e.type !== "normal" || e.data.byteLength === 0) continue;
      const cmd = decodeCommand(e.data);
      const out = n.kv.apply(cmd);
      const cb = n.waiting.get(cmd.id);
      if (cb) {
        n.waiting.delete(cmd.id);
        cb(out);
      }
    }
    for (const rs of rd.readStates) {
      const cb = n.reads.get(rs.context);
      if (cb) {
        n.reads.delete(rs.context);
        cb();
      }
    }
  }

  private maybeCompact(n: SimNode, raft: RaftNode): void {
    const st = raft.basicStatus();
    if (st.applied - st.firstIndex + 1 < this.sc.compactAfterEntries) return;
    const snap = raft.compact(n.kv.snapshot());
    if (snap) {
      n.disk.compact(snap);
      this.log(() => `n${n.id} compacts to ${snap.meta.index}`);
    }
  }

  // ------------------------------------------------------------------ network

  private send(m: Message): void {
    if (m.type === "snap") this.stats.snapshotsSent++;
    if (this.rng.chance(this.sc.lossP)) return;
    const copies = this.rng.chance(this.sc.dupP) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.q.schedule(1 + this.rng.int(this.sc.delayMaxMs), () => this.deliver(m));
    }
  }

  private deliver(m: Message): void {
    if (this.blocked.has(`${m.from}->${m.to}`)) return;
    const n = this.nodes.get(m.to);
    if (!n?.raft) return;
    if (this.q.now < n.pausedUntil) {
      this.q.schedule(n.pausedUntil - this.q.now, () => this.deliver(m));
      return;
    }
    n.raft.step({ ...m, entries: m.entries.map((e) => ({ ...e })) });
    this.afterInput(n);
  }

  // ------------------------------------------------------------------ invariants

  private observe(n: SimNode): void {
    const raft = n.raft;
    if (!raft) return;
    const st = raft.basicStatus();
    if (st.role !== "leader") return;
    const prev = this.leaderOfTerm.get(st.term);
    if (prev === undefined) {
      this.leaderOfTerm.set(st.term, n.id);
      this.stats.elections++;
      this.log(() => `n${n.id} leads term ${st.term} (last ${st.lastIndex}, commit ${st.commit})`);
      this.checkLeaderCompleteness(n, raft, st.term);
    } else if (prev !== n.id) {
      throw new SimViolation("safety", `election safety: n${prev} and n${n.id} both lead term ${st.term}`);
    }
    const seen = this.leaderCommitSeen.get(n.id) ?? 0;
    for (let i = Math.max(seen, st.firstIndex - 1) + 1; i <= st.commit; i++) {
      const term = raft.termAt(i);
      if (term === undefined) throw new SimViolation("safety", `leader n${n.id} committed index ${i} it does not hold`);
      const had = this.committedAt.get(i);
      if (had && had.term !== term) {
        throw new SimViolation("safety", `index ${i} committed with term ${had.term} and term ${term}`);
      }
      if (!had || had.commitTerm > st.term) this.committedAt.set(i, { term, commitTerm: st.term });
    }
    this.leaderCommitSeen.set(n.id, Math.max(seen, st.commit));
  }

  /** Every entry committed in an earlier term is in the new leader's log. */
  private checkLeaderCompleteness(n: SimNode, raft: RaftNode, term: number): void {
    const first = raft.basicStatus().firstIndex;
    for (const [i, c] of this.committedAt) {
      if (c.commitTerm >= term || i < first) continue;
      const t = raft.termAt(i);
      if (t !== c.term) {
        throw new SimViolation(
          "safety",
          `leader completeness: n${n.id} became leader of term ${term} without entry ${i}/${c.term} committed in term ${c.commitTerm} (it holds ${t === undefined ? "nothing" : `term ${t}`} there)`,
        );
      }
    }
  }

  /** Same index and term means same entry and the same predecessor (so, inductively, the same log). */
  private checkLogMatching(n: SimNode, rd: Ready): void {
    for (const e of rd.entries) {
      const key = `${e.index}:${e.term}`;
      const data = dataKey(e);
      const prevTerm = n.disk.term(e.index - 1);
      const had = this.logAt.get(key);
      if (!had) {
        this.logAt.set(key, { data, prevTerm });
        continue;
      }
      if (had.data !== data) throw new SimViolation("safety", `log matching: two different entries at index ${e.index} term ${e.term}`);
      if (had.prevTerm !== undefined && prevTerm !== undefined && had.prevTerm !== prevTerm) {
        throw new SimViolation("safety", `log matching: entry ${e.index}/${e.term} follows term ${had.prevTerm} and term ${prevTerm}`);
      }
    }
  }

  /** State machine safety: every node applies the same entry at each index. */
  private checkApplied(n: SimNode, e: Entry): void {
    const data = dataKey(e);
    const had = this.appliedAt.get(e.index);
    if (!had) {
      this.appliedAt.set(e.index, { term: e.term, data });
      return;
    }
    if (had.term !== e.term || had.data !== data) {
      throw new SimViolation("safety", `state machine safety: n${n.id} applied term ${e.term} at index ${e.index}, another node applied term ${had.term}`);
    }
  }

  // ------------------------------------------------------------------ workload

  private invoke(client: Client): void {
    if (this.opsInvoked >= this.opts.ops) return;
    const key = `k${this.rng.int(this.sc.keys)}`;
    const r = this.rng.float();
    const kind: KvInput["kind"] = r < 0.45 ? "get" : r < 0.75 ? "put" : "cas";
    const opId = this.nextOpId++;
    const input: KvInput =
      kind === "get"
        ? { kind }
        : kind === "put"
          ? { kind, value: `v${opId}` }
          : { kind, expected: client.lastSeen.get(key) ?? null, value: `v${opId}` };
    const viaReadIndex = kind === "get" && this.rng.chance(this.sc.readIndexP);
    const started = this.submit(client, key, input, opId, viaReadIndex, (op) => {
      if (op.output && "value" in op.output) client.lastSeen.set(key, op.output.value);
      else if (op.output && "ok" in op.output && op.output.ok && input.kind !== "get") client.lastSeen.set(key, input.value);
      this.opsDone++;
      if (this.opsDone >= this.opts.ops && this.opsInvoked >= this.opts.ops) this.beginFinalPhase();
      else this.q.schedule(this.rng.int(20), () => this.invoke(client));
    });
    if (started) this.opsInvoked++;
    else this.q.schedule(5 + this.rng.int(20), () => this.invoke(client));
  }

  private pickTarget(client: Client): SimNode {
    const hinted = this.nodes.get(client.leaderHint);
    if (hinted?.raft && this.rng.chance(0.8)) return hinted;
    const live = [...this.nodes.values()].filter((n) => n.started && !n.removed);
    return this.rng.pick(live);
  }

  /**
   * Submits one operation; returns false if it was refused before entering the
   * system (not recorded: it cannot have taken effect). `done` runs once, on
   * response or timeout.
   */
  private submit(
    client: Client,
    key: string,
    input: KvInput,
    opId: number,
    viaReadIndex: boolean,
    done: (op: Operation) => void,
  ): boolean {
    const n = this.pickTarget(client);
    const raft = n.raft;
    if (!raft || this.q.now < n.pausedUntil) return false;
    const ctx = `r${opId}`;
    try {
      if (viaReadIndex) raft.readIndex(ctx);
      else raft.propose(encodeCommand({ id: opId, key, input }));
    } catch (err) {
      if (err instanceof NotLeaderError) {
        client.leaderHint = err.leader;
        this.stats.opsRefused++;
        return false;
      }
      if (err instanceof ProposalDroppedError) {
        this.stats.opsRefused++;
        return false;
      }
      throw err;
    }
    const op: Operation = { id: opId, client: client.id, key, input, call: this.stamp++, ret: Infinity };
    this.history.push(op);
    let finished = false;
    const finish = (out: KvOutput | undefined): void => {
      if (finished) return;
      finished = true;
      if (out !== undefined) {
        op.output = out;
        op.ret = this.stamp++;
        this.stats.opsOk++;
      } else {
        this.stats.opsUnknown++;
      }
      done(op);
    };
    const inc = n.incarnation;
    if (viaReadIndex) n.reads.set(ctx, () => finish({ value: n.kv.get(key) }));
    else n.waiting.set(opId, (out) => finish(out));
    this.q.schedule(opTimeoutMs, () => {
      if (n.incarnation === inc) {
        n.reads.delete(ctx);
        n.waiting.delete(opId);
      }
      finish(undefined);
    });
    this.afterInput(n);
    return true;
  }

  /** Heal everything, restart every member, and require one more write to succeed. */
  private beginFinalPhase(): void {
    if (!this.nemesisOn) return;
    this.nemesisOn = false;
    this.log(() => "final phase: heal and restart");
    this.blocked.clear();
    this.sc.lossP = 0;
    this.sc.dupP = 0;
    for (const n of this.nodes.values()) {
      n.pausedUntil = 0;
      if (n.started && !n.removed && !n.raft) this.start(n);
    }
    const deadline = this.q.now + livenessDeadlineMs;
    const client: Client = { id: this.clients.length, leaderHint: 0, lastSeen: new Map() };
    const attempt = (): void => {
      if (this.q.now > deadline) {
        throw new SimViolation("liveness", `no write succeeded within ${livenessDeadlineMs} ms after healing`);
      }
      const opId = this.nextOpId++;
      const ok = this.submit(client, "k0", { kind: "put", value: `final${opId}` }, opId, false, (op) => {
        if (op.output) this.finished = true;
        else attempt();
      });
      if (!ok) this.q.schedule(20, attempt);
    };
    this.q.schedule(0, attempt);
  }

  private checkLinearizability(): void {
    const v = checkHistory(this.history, this.opts.checkStepsMax ?? checkStepsMax);
    this.stats.linearizability = v.verdict;
    if (v.verdict === "violation") {
      throw new LinearizabilityViolation(
        `history of key ${v.key} is not linearizable (${v.witness?.length} operations in the shrunk witness)`,
        (v.witness ?? []).map(formatOperation),
      );
    }
  }

  // ------------------------------------------------------------------ nemeses

  private leader(): { n: SimNode; raft: RaftNode } | undefined {
    let best: { n: SimNode; raft: RaftNode; term: number } | undefined;
    for (const n of this.nodes.values()) {
      const st = n.raft?.basicStatus();
      if (n.raft && st?.role === "leader" && (!best || st.term > best.term)) best = { n, raft: n.raft, term: st.term };
    }
    return best;
  }

  private partitionNemesis(): void {
    this.blocked.clear();
    const ids = [...this.nodes.values()].filter((n) => n.started && !n.removed).map((n) => n.id);
    const choice = this.rng.int(4);
    if (choice === 0) {
      this.log(() => "heal");
      return;
    }
    const leader = this.leader();
    if (leader && this.rng.chance(this.sc.leaderMinorityP)) {
      // the leader keeps taking proposals that only a minority can store
      const others = ids.filter((id) => id !== leader.n.id);
      const side = new Set([leader.n.id]);
      const minority = Math.max(1, ids.length - (Math.floor(ids.length / 2) + 1));
      while (side.size < minority && others.length > 0) {
        side.add(others.splice(this.rng.int(others.length), 1)[0] as NodeId);
      }
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.blocked.add(`${a}->${b}`);
      this.log(() => `leader with a minority {${[...side].join(",")}} | rest`);
      return;
    }
    const victim = this.rng.pick(ids);
    if (choice === 1) {
      for (const o of ids) if (o !== victim) this.blocked.add(`${victim}->${o}`).add(`${o}->${victim}`);
      this.log(() => `isolate n${victim}`);
    } else if (choice === 2) {
      const side = new Set(ids.filter(() => this.rng.chance(0.5)));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.blocked.add(`${a}->${b}`);
      this.log(() => `split {${[...side].join(",")}} | rest`);
    } else {
      const inbound = this.rng.chance(0.5);
      for (const o of ids) if (o !== victim) this.blocked.add(inbound ? `${o}->${victim}` : `${victim}->${o}`);
      this.log(() => `n${victim} ${inbound ? "cannot receive" : "cannot send"}`);
    }
  }

  private crashNemesis(): void {
    const up = [...this.nodes.values()].filter((n) => n.raft && !n.removed);
    if (up.length === 0) return;
    const leader = this.leader();
    if (leader && this.rng.chance(this.sc.crashMidSyncP)) {
      leader.n.crashMidSync = true;
      return;
    }
    const victim = this.rng.pick(up);
    if (this.rng.chance(this.sc.pauseP)) {
      victim.pausedUntil = this.q.now + 100 + this.rng.int(1000);
      this.log(() => `pause n${victim.id} until ${victim.pausedUntil}`);
      return;
    }
    this.crashAndRestart(victim);
  }

  private crashAndRestart(victim: SimNode): void {
    this.crash(victim);
    const inc = victim.incarnation;
    this.q.schedule(100 + this.rng.int(1500), () => {
      if (victim.incarnation === inc && !victim.removed) this.start(victim);
    });
  }

  private membershipNemesis(): void {
    const l = this.leader();
    if (!l) return;
    const st = l.raft.status();
    // Stop nodes whose removal the leader has committed.
    for (let i = this.pendingRemovals.length - 1; i >= 0; i--) {
      const p = this.pendingRemovals[i] as { node: NodeId; index: number; term: number };
      const inConf = st.conf.voters.includes(p.node) || st.conf.learners.includes(p.node);
      if (!inConf && st.applied >= p.index) {
        const n = this.node(p.node);
        this.crash(n);
        n.removed = true;
        this.pendingRemovals.splice(i, 1);
        this.log(() => `n${p.node} removed and stopped`);
      } else if (l.raft.termAt(p.index) !== undefined && l.raft.termAt(p.index) !== p.term) {
        this.pendingRemovals.splice(i, 1);
      }
    }
    const propose = (cc: Parameters<RaftNode["proposeConfChange"]>[0]): void => {
      try {
        const index = l.raft.proposeConfChange(cc);
        this.stats.confChanges++;
        this.log(() => `propose ${cc.kind}(n${cc.node}) at ${index}`);
        if (cc.kind === "remove") this.pendingRemovals.push({ node: cc.node, index, term: st.term });
        this.afterInput(l.n);
      } catch (err) {
        if (!(err instanceof ConfChangeError || err instanceof ProposalDroppedError || err instanceof NotLeaderError)) throw err;
      }
    };
    const learner = st.conf.learners[0];
    if (learner !== undefined) {
      const pr = st.progress?.get(learner);
      if (pr && pr.match >= st.commit) propose({ kind: "addVoter", node: learner });
      return;
    }
    const spare = [...this.nodes.values()].find((n) => !n.started);
    if (st.conf.voters.length < 5 && spare && this.rng.chance(0.6)) {
      this.start(spare);
      propose({ kind: "addLearner", node: spare.id });
    } else if (st.conf.voters.length > 3) {
      propose({ kind: "remove", node: this.rng.pick(st.conf.voters) });
    }
  }

  private transferNemesis(): void {
    const l = this.leader();
    if (!l) return;
    const voters = l.raft.status().conf.voters.filter((v) => v !== l.n.id);
    if (voters.length === 0) return;
    const to = this.rng.pick(voters);
    try {
      l.raft.transferLeader(to);
      this.stats.transfers++;
      this.log(() => `transfer leadership n${l.n.id} -> n${to}`);
      this.afterInput(l.n);
    } catch (err) {
      if (!(err instanceof TransferError || err instanceof NotLeaderError)) throw err;
    }
  }
}

class LinearizabilityViolation extends Error {
  constructor(message: string, readonly witness: string[]) {
    super(message);
  }
}

const textDecoder = new TextDecoder();
function dataKey(e: Entry): string {
  return `${e.type}:${textDecoder.decode(e.data)}`;
}

export function describeScenario(seed: number): Scenario {
  return chooseScenario(new Xoshiro128(seed));
}
