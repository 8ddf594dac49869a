/**
 * The agent's local store (DIR/autonomy.db, bun:sqlite, WAL, synchronous=FULL):
 * desired state, the subtask queue, locally submitted tasks, and the durable
 * OUTBOX of records for the hub (results, usage, audit, metrics) numbered by
 * `seq`. It is what keeps an edge site working while the hub is away and what
 * makes delivery exactly once: records are written in the same transaction
 * as the state change that produced them, resent until the hub acknowledges a
 * high-water mark, and the hub ignores any seq at or below its mark.
 *
 * Desired state (`desired`): merged with the rule of hub/desired/rule.ts;
 * local changes are recorded as signed `desired-change` outbox records,
 * hub changes arrive with heartbeat acks (agent/runtime.ts).
 *
 * Bounds (limits at the top; each states what happens when reached):
 *  - subtasks queued or running: `subtasksQueuedMax`. Beyond: new work refused ("queue-full").
 *  - outbox entries: `outboxEntriesMax`. Reached: the oldest `metric` entries are
 *    dropped (counted in `metricsDropped`); results, usage and audit records are
 *    never dropped: the agent refuses new work ("outbox-full") until the hub drains it.
 * Several processes may open it (the running agent, `grey-agent status/submit`).
 */
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { decodeCbor, encodeCbor } from "../../plugins/sdk/codec.ts";
import type { OutboxEntry, OutboxKind, SubtaskResult, SubtaskSpec } from "../../plugins/sdk/wire-tasks.ts";
import { outboxEntriesPerPushMax, outboxPushBytesMax } from "../../plugins/sdk/wire-tasks.ts";
import { GreyError } from "../../plugins/sdk/errors.ts";
import {
  DesiredKeysFullError, desiredKeysPerClusterMax, DesiredSupersededError, desiredWins, nextDesiredAt, type DesiredEntry, type DesiredSource,
} from "../../hub/desired/rule.ts";

export const AUTONOMY_DB = "autonomy.db";
export const subtasksQueuedMax = 1_000;
export const outboxEntriesMax = 100_000;

/** The outbox holds outboxEntriesMax durable records: nothing more is accepted until the hub drains it. */
export class OutboxFullError extends GreyError {
  constructor() {
    super("ERR_OUTBOX_FULL", `the outbox holds ${outboxEntriesMax} records: reconnect to a hub to drain it`);
  }
}

export type SubtaskOrigin = "hub" | `peer:${string}` | "local";
export type SubtaskState = "queued" | "running" | "done";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS desired (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL, source TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS subtasks (
  id TEXT PRIMARY KEY, task_id TEXT NOT NULL, attempt INTEGER NOT NULL, origin TEXT NOT NULL,
  spec BLOB NOT NULL, state TEXT NOT NULL, received_at INTEGER NOT NULL,
  started_at INTEGER, finished_at INTEGER, result BLOB
) STRICT;
CREATE INDEX IF NOT EXISTS subtasks_by_state ON subtasks (state, received_at);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, at INTEGER NOT NULL, body BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS local_tasks (
  id TEXT PRIMARY KEY, spec TEXT NOT NULL, sig BLOB NOT NULL, state TEXT NOT NULL,
  submitted_at INTEGER NOT NULL, finished_at INTEGER, result BLOB, error TEXT
) STRICT;
`;

export interface OutboxRecord {
  kind: OutboxKind;
  body: unknown;
}

export interface StoreCounts {
  queued: number;
  running: number;
  done: number;
  outbox: number;
  outboxByKind: Record<string, number>;
  ackedSeq: number;
  lastSeq: number;
  metricsDropped: number;
  localTasks: Record<string, number>;
}

export class AgentStore {
  private constructor(readonly db: Database, private readonly clock: { now(): number }) {}

  static open(dataDir: string, clock: { now(): number } = { now: Date.now }): AgentStore {
    const db = new Database(join(dataDir, AUTONOMY_DB), { create: true, strict: true });
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec(SCHEMA);
    return new AgentStore(db, clock);
  }

  close(): void {
    this.db.close();
  }

  meta(key: string): string | undefined {
    return this.db.query<{ value: string }, [string]>("SELECT value FROM meta WHERE key = ?").get(key)?.value;
  }

  setMeta(key: string, value: string): void {
    this.db.query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(key, value);
  }

  /**
   * Merge one desired-state entry with the rule of hub/desired/rule.ts (the
   * hub applies the same): the greater timestamp wins, a hub write wins a tie
   * over a local one, then the greater value. True when it replaced what was
   * held. A new key beyond desiredKeysPerClusterMax is not stored (false).
   */
  setDesired(key: string, value: string, source: DesiredSource, at = this.clock.now()): boolean {
    const cur = this.desired(key);
    if (!desiredWins({ value, at, source }, cur)) return false;
    if (!cur && this.db.query<{ n: number }, []>("SELECT count(*) AS n FROM desired").get()!.n >= desiredKeysPerClusterMax) return false;
    this.db.query("INSERT INTO desired (key, value, updated_at, source) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, source = excluded.source").run(key, value, at, source);
    return true;
  }

  desired(key: string): DesiredEntry | undefined {
    const r = this.db.query<{ key: string; value: string; updated_at: number; source: DesiredSource }, [string]>("SELECT key, value, updated_at, source FROM desired WHERE key = ?").get(key);
    return r ? { key: r.key, value: r.value, at: r.updated_at, source: r.source } : undefined;
  }

  desiredAll(): DesiredEntry[] {
    return this.db.query<{ key: string; value: string; updated_at: number; source: DesiredSource }, []>("SELECT key, value, updated_at, source FROM desired ORDER BY key").all()
      .map((r) => ({ key: r.key, value: r.value, at: r.updated_at, source: r.source }));
  }

  /**
   * A local desired-state change (`grey-agent desired set`): stored and
   * recorded in the outbox as a signed `desired-change` in one transaction, so
   * the hub receives it exactly once. `at` and `sig` come from
   * prepareLocalDesired + the node key; throws DesiredSupersededError when a
   * later entry arrived meanwhile, DesiredKeysFullError / OutboxFullError when full.
   */
  setLocalDesired(key: string, value: string, at: number, sig: Uint8Array, clusterId: string): void {
    this.db.transaction(() => {
      if (this.db.query<{ n: number }, []>("SELECT count(*) AS n FROM outbox WHERE kind != 'metric'").get()!.n >= outboxEntriesMax) throw new OutboxFullError();
      const cur = this.desired(key);
      if (!cur && this.db.query<{ n: number }, []>("SELECT count(*) AS n FROM desired").get()!.n >= desiredKeysPerClusterMax) throw new DesiredKeysFullError(clusterId);
      if (!this.setDesired(key, value, "local", at)) throw new DesiredSupersededError(key);
      this.appendLocked({ kind: "desired-change", body: { key, value, at, sig } });
    }).immediate();
  }

  /** The timestamp for a local change of `key` made now (hybrid: past the entry it replaces). */
  nextLocalDesiredAt(key: string): number {
    return nextDesiredAt(this.clock.now(), this.desired(key));
  }

  /** Apply desired entries from a hub's heartbeat ack, and remember the version held from that hub. */
  applyHubDesired(hubPeerId: string, entries: DesiredEntry[], version: number): number {
    if (entries.length === 0 && version === this.desiredVersion(hubPeerId)) return 0; // nothing new: no write
    return this.db.transaction(() => {
      let changed = 0;
      for (const e of entries) if (this.setDesired(e.key, e.value, e.source, e.at)) changed++;
      this.setMeta(`desiredVersion:${hubPeerId}`, String(version));
      return changed;
    }).immediate();
  }

  /** The desired-state version of `hubPeerId` this agent holds everything up to (0: none yet). */
  desiredVersion(hubPeerId: string): number {
    return Number(this.meta(`desiredVersion:${hubPeerId}`) ?? 0);
  }

  /** Why new work must be refused now, if it must. */
  refusal(extra = 1): string | undefined {
    const active = this.db.query<{ n: number }, []>("SELECT count(*) AS n FROM subtasks WHERE state != 'done'").get()!.n;
    if (active + extra > subtasksQueuedMax) return "queue-full";
    const durable = this.db.query<{ n: number }, []>("SELECT count(*) AS n FROM outbox WHERE kind != 'metric'").get()!.n;
    if (durable + extra * 3 > outboxEntriesMax) return "outbox-full";
    return undefined;
  }

  /**
   * Enqueue subtasks (idempotent by id: a subtask already held keeps its state,
   * unless a higher attempt of a finished one comes back, which is not re-run).
   */
  enqueue(specs: SubtaskSpec[], origin: SubtaskOrigin): { accepted: string[]; refused: { id: string; reason: string }[] } {
    const accepted: string[] = [];
    const refused: { id: string; reason: string }[] = [];
    this.db.transaction(() => {
      for (const s of specs) {
        const have = this.db.query<{ attempt: number }, [string]>("SELECT attempt FROM subtasks WHERE id = ?").get(s.id);
        if (have) {
          if (s.attempt > have.attempt) this.db.query("UPDATE subtasks SET attempt = ? WHERE id = ?").run(s.attempt, s.id);
          accepted.push(s.id);
          continue;
        }
        const why = this.refusal();
        if (why) {
          refused.push({ id: s.id, reason: why });
          continue;
        }
        this.db
          .query("INSERT INTO subtasks (id, task_id, attempt, origin, spec, state, received_at) VALUES (?, ?, ?, ?, ?, 'queued', ?)")
          .run(s.id, s.taskId, s.attempt, origin, encodeCbor(s), this.clock.now());
        accepted.push(s.id);
      }
    }).immediate();
    return { accepted, refused };
  }

  /**
   * Run `fn` in a transaction committed without waiting for the disk
   * (synchronous=NORMAL; WAL keeps order, so the next FULL commit makes it
   * durable too). Only for changes whose loss in a crash is harmless: a claim
   * (what was running is requeued anyway) or an ack (the hub skips a resend).
   */
  private relaxed<T>(fn: () => T): T {
    this.db.exec("PRAGMA synchronous = NORMAL");
    try {
      return this.db.transaction(fn).immediate();
    } finally {
      this.db.exec("PRAGMA synchronous = FULL");
    }
  }

  /** Claim up to `n` queued subtasks (oldest first) and mark them running (not waiting for the disk: see relaxed). */
  claim(n: number): { spec: SubtaskSpec; origin: SubtaskOrigin }[] {
    return this.relaxed(() => {
      const rows = this.db.query<{ id: string; spec: Uint8Array; origin: string }, [number]>(
        "SELECT id, spec, origin FROM subtasks WHERE state = 'queued' ORDER BY received_at, id LIMIT ?",
      ).all(n);
      const now = this.clock.now();
      for (const r of rows) this.db.query("UPDATE subtasks SET state = 'running', started_at = ? WHERE id = ?").run(now, r.id);
      return rows.map((r) => ({ spec: decodeCbor(r.spec, 1 << 20) as SubtaskSpec, origin: r.origin as SubtaskOrigin }));
    });
  }

  /** After a restart: what was running did not finish (its result was never committed): run it again. */
  requeueRunning(): number {
    return this.db.query("UPDATE subtasks SET state = 'queued', started_at = NULL WHERE state = 'running'").run().changes;
  }

  /** Finish a subtask: its state and every record it produced commit together (or not at all). */
  complete(subtaskId: string, result: SubtaskResult, records: OutboxRecord[]): void {
    this.completeMany([{ subtaskId, result, records }]);
  }

  /** Finish several subtasks in one transaction (group commit: one fsync); all or none. */
  completeMany(items: { subtaskId: string; result: SubtaskResult; records: OutboxRecord[] }[]): void {
    this.db.transaction(() => {
      for (const { subtaskId, result, records } of items) {
        this.db.query("UPDATE subtasks SET state = 'done', finished_at = ?, result = ? WHERE id = ?").run(this.clock.now(), encodeCbor(result), subtaskId);
        for (const r of records) this.appendLocked(r);
      }
    }).immediate();
  }

  result(subtaskId: string): SubtaskResult | undefined {
    const r = this.db.query<{ result: Uint8Array | null }, [string]>("SELECT result FROM subtasks WHERE id = ? AND state = 'done'").get(subtaskId);
    return r?.result ? (decodeCbor(r.result, 1 << 20) as SubtaskResult) : undefined;
  }

  append(records: OutboxRecord[]): void {
    this.db.transaction(() => {
      for (const r of records) this.appendLocked(r);
    }).immediate();
  }

  private appendLocked(r: OutboxRecord): void {
    const count = this.db.query<{ n: number }, []>("SELECT count(*) AS n FROM outbox").get()!.n;
    if (count >= outboxEntriesMax) {
      const oldest = this.db.query<{ seq: number }, []>("SELECT seq FROM outbox WHERE kind = 'metric' ORDER BY seq LIMIT 1").get();
      if (r.kind === "metric" || oldest) {
        if (oldest) this.db.query("DELETE FROM outbox WHERE seq = ?").run(oldest.seq);
        this.setMeta("metricsDropped", String(Number(this.meta("metricsDropped") ?? 0) + 1));
        if (!oldest) return; // a metric with no metric to make room for: drop the new one
      }
      // No metric to drop: durable records still go in (new work was refused before it produced them).
    }
    this.db.query("INSERT INTO outbox (kind, at, body) VALUES (?, ?, ?)").run(r.kind, this.clock.now(), encodeCbor(r.body));
  }

  /** The next batch to push: entries after `ackedSeq`, bounded in count and bytes. */
  pending(limit = outboxEntriesPerPushMax, bytesMax = outboxPushBytesMax): OutboxEntry[] {
    const acked = this.ackedSeq();
    const rows = this.db.query<{ seq: number; kind: string; at: number; body: Uint8Array }, [number, number]>(
      "SELECT seq, kind, at, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
    ).all(acked, limit);
    const out: OutboxEntry[] = [];
    let size = 0;
    for (const r of rows) {
      size += r.body.byteLength + 32;
      if (out.length > 0 && size > bytesMax) break;
      out.push({ seq: r.seq, kind: r.kind as OutboxKind, at: r.at, body: r.body });
    }
    return out;
  }

  ackedSeq(): number {
    return Number(this.meta("ackedSeq") ?? 0);
  }

  /** The hub holds everything up to `highWater`: forget it here (not waiting for the disk: a lost ack only means a resend the hub skips). */
  ack(highWater: number): void {
    this.relaxed(() => {
      if (highWater <= this.ackedSeq()) return;
      this.setMeta("ackedSeq", String(highWater));
      this.db.query("DELETE FROM outbox WHERE seq <= ?").run(highWater);
    });
  }

  addLocalTask(id: string, spec: string, sig: Uint8Array): boolean {
    return this.db.query("INSERT INTO local_tasks (id, spec, sig, state, submitted_at) VALUES (?, ?, ?, 'pending', ?) ON CONFLICT (id) DO NOTHING")
      .run(id, spec, sig, this.clock.now()).changes === 1;
  }

  /** Claim pending local tasks (marks them running). */
  claimLocalTasks(): { id: string; spec: string; sig: Uint8Array }[] {
    return this.db.transaction(() => {
      const rows = this.db.query<{ id: string; spec: string; sig: Uint8Array }, []>("SELECT id, spec, sig FROM local_tasks WHERE state = 'pending' ORDER BY submitted_at").all();
      for (const r of rows) this.db.query("UPDATE local_tasks SET state = 'running' WHERE id = ?").run(r.id);
      return rows;
    }).immediate();
  }

  /** After a restart: local tasks that were running start over. */
  requeueLocalTasks(): void {
    this.db.query("UPDATE local_tasks SET state = 'pending' WHERE state = 'running'").run();
  }

  finishLocalTask(id: string, outcome: { result?: Uint8Array; error?: string }, record: OutboxRecord): void {
    this.db.transaction(() => {
      this.db.query("UPDATE local_tasks SET state = ?, finished_at = ?, result = ?, error = ? WHERE id = ?")
        .run(outcome.error ? "failed" : "done", this.clock.now(), outcome.result ?? null, outcome.error ?? null, id);
      this.appendLocked(record);
    }).immediate();
  }

  localTask(id: string): { id: string; state: string; result?: Uint8Array; error?: string } | undefined {
    const r = this.db.query<{ id: string; state: string; result: Uint8Array | null; error: string | null }, [string]>("SELECT id, state, result, error FROM local_tasks WHERE id = ?").get(id);
    return r ? { id: r.id, state: r.state, ...(r.result ? { result: r.result } : {}), ...(r.error ? { error: r.error } : {}) } : undefined;
  }

  counts(): StoreCounts {
    const byState = Object.fromEntries(this.db.query<{ state: string; n: number }, []>("SELECT state, count(*) AS n FROM subtasks GROUP BY state").all().map((r) => [r.state, r.n]));
    const byKind = Object.fromEntries(this.db.query<{ kind: string; n: number }, []>("SELECT kind, count(*) AS n FROM outbox GROUP BY kind").all().map((r) => [r.kind, r.n]));
    const local = Object.fromEntries(this.db.query<{ state: string; n: number }, []>("SELECT state, count(*) AS n FROM local_tasks GROUP BY state").all().map((r) => [r.state, r.n]));
    const lastSeq = this.db.query<{ seq: number }, []>("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get()?.seq ?? 0;
    return {
      queued: byState.queued ?? 0, running: byState.running ?? 0, done: byState.done ?? 0,
      outbox: Object.values(byKind).reduce((a, b) => a + b, 0), outboxByKind: byKind,
      ackedSeq: this.ackedSeq(), lastSeq, metricsDropped: Number(this.meta("metricsDropped") ?? 0), localTasks: local,
    };
  }
}
