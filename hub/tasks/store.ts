/**
 * Task state in DIR/tasks.db (bun:sqlite, WAL, synchronous=FULL): tasks,
 * their subtasks (stable ids "<task>.<index>", reducer "<task>.r"), outbox
 * receipts per agent ((peer, high-water seq): exactly-once with the agent's
 * at-least-once resend), the records agents delivered and, with consensus,
 * task modules by content hash (replicated.ts applies the log into this store).
 *
 * A subtask's first result wins: a late result from a cluster the subtask was
 * taken away from (failover) is recorded as a duplicate and never counted.
 */
import { Database } from "bun:sqlite";
import { decodeCbor, encodeCbor } from "../../plugins/sdk/codec.ts";
import type { SubtaskResult } from "../../plugins/sdk/wire-tasks.ts";
import type { TaskPlan } from "./spec.ts";
import { exportTables, importTables, type TableSpec, type TablesImage } from "../fedlog/snapshot-tables.ts";

export const TASKS_DB = "tasks.db";

export type TaskState = "running" | "done" | "failed";
export type SubtaskState = "pending" | "assigned" | "done" | "failed";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY, name TEXT, plan BLOB NOT NULL, state TEXT NOT NULL, origin TEXT NOT NULL,
  created_at INTEGER NOT NULL, finished_at INTEGER, result BLOB, error TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS subtasks (
  id TEXT PRIMARY KEY, task_id TEXT NOT NULL, idx INTEGER NOT NULL, kind TEXT NOT NULL, input BLOB NOT NULL,
  state TEXT NOT NULL, cluster_id TEXT, peer_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, history TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL, assigned_at INTEGER, started_at INTEGER, finished_at INTEGER,
  output BLOB, error TEXT, result_cluster TEXT, cpu_ms REAL, wall_ms REAL, duplicates INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX IF NOT EXISTS subtasks_by_task ON subtasks (task_id, idx);
CREATE INDEX IF NOT EXISTS subtasks_by_state ON subtasks (state);
CREATE TABLE IF NOT EXISTS modules (hash TEXT PRIMARY KEY, bytes BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS receipts (peer_id TEXT PRIMARY KEY, high_water INTEGER NOT NULL, updated_at INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS agent_records (
  peer_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, at INTEGER NOT NULL, body BLOB NOT NULL,
  PRIMARY KEY (peer_id, seq)
) STRICT;
`;

/** Columns added after the first schema (ALTER TABLE on open when missing). */
const ADDED_COLUMNS: [table: string, column: string, type: string][] = [
  ["tasks", "consumer", "TEXT"],
  ["subtasks", "agreement_id", "TEXT"],
  ["subtasks", "provider_org", "TEXT"],
  ["subtasks", "demand_cpu", "INTEGER"],
  ["subtasks", "demand_mem", "INTEGER"],
  ["subtasks", "priority", "TEXT"],
  ["subtasks", "preemptible", "INTEGER"],
  ["subtasks", "held", "TEXT"],
  ["subtasks", "preemptions", "INTEGER NOT NULL DEFAULT 0"],
];

/** Why a cross-org subtask may run where it was placed: the agreement that admitted it, recorded with the assignment. */
export interface CrossOrgAdmission {
  agreementId: string;
  providerOrg: string;
  demand: { cpuMilliCores: number; memoryBytes: number };
  priority: "low" | "medium" | "high";
  preemptible: boolean;
}

export interface SubtaskRow {
  id: string;
  task_id: string;
  idx: number;
  kind: "map" | "reduce";
  input: Uint8Array;
  state: SubtaskState;
  cluster_id: string | null;
  peer_id: string | null;
  attempts: number;
  history: string;
  created_at: number;
  assigned_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  output: Uint8Array | null;
  error: string | null;
  result_cluster: string | null;
  cpu_ms: number | null;
  wall_ms: number | null;
  duplicates: number;
  /** Set while assigned across organisations (and kept after, for the record). */
  agreement_id: string | null;
  provider_org: string | null;
  demand_cpu: number | null;
  demand_mem: number | null;
  priority: string | null;
  preemptible: number | null;
  /** Why a pending subtask is not placed yet (agreement limits, capacity, no agreement). */
  held: string | null;
  preemptions: number;
}

export interface TaskRow {
  id: string;
  name: string | null;
  plan: Uint8Array;
  state: TaskState;
  origin: string;
  created_at: number;
  finished_at: number | null;
  result: Uint8Array | null;
  error: string | null;
  /** The submitter's organisation (the consumer for cross-org placement); null: the hub's own. */
  consumer: string | null;
}

export type StoredPlan = Omit<TaskPlan, "partitions">;

/** Every table the federation log's task commands build (replicated.ts): a snapshot carries them whole. */
const SNAPSHOT_TABLES: readonly TableSpec[] = [
  { table: "tasks", orderBy: "id" },
  { table: "subtasks", orderBy: "id" },
  { table: "modules", orderBy: "hash" },
  { table: "receipts", orderBy: "peer_id" },
  { table: "agent_records", orderBy: "peer_id, seq" },
];

export class TaskStore {
  /** Set while a federation log command is applied: its time, so every hub writes the same rows. */
  #at: number | undefined;
  private constructor(readonly db: Database, private readonly clock: { now(): number }) {}

  private now(): number {
    return this.#at ?? this.clock.now();
  }

  /** Run `fn` with the store's clock fixed at `at` (deterministic apply of a replicated command). */
  at<T>(at: number, fn: () => T): T {
    const prev = this.#at;
    this.#at = at;
    try {
      return fn();
    } finally {
      this.#at = prev;
    }
  }

  static open(path: string, clock: { now(): number }): TaskStore {
    const db = new Database(path, { create: true, strict: true });
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec(SCHEMA);
    for (const [table, column, type] of ADDED_COLUMNS) {
      const have = db.query<{ name: string }, []>(`PRAGMA table_info(${table})`).all().some((c) => c.name === column);
      if (!have) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
    }
    return new TaskStore(db, clock);
  }

  close(): void {
    this.db.close();
  }

  /** The replicated task state (tasks, subtasks, modules, outbox high-water marks, records) for a federation log snapshot. */
  exportSnapshot(): TablesImage {
    return this.db.transaction(() => exportTables(this.db, SNAPSHOT_TABLES))();
  }

  /** Replace the replicated task state with a snapshot's (rows absent from it are deleted). One transaction; idempotent. */
  importSnapshot(image: unknown): void {
    this.tx(() => importTables(this.db, SNAPSHOT_TABLES, image));
  }

  tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** A module stored by content hash (replicated tasks: sent through the federation log once). */
  module(hash: string): Uint8Array | undefined {
    return this.db.query<{ bytes: Uint8Array }, [string]>("SELECT bytes FROM modules WHERE hash = ?").get(hash)?.bytes ?? undefined;
  }

  putModule(hash: string, bytes: Uint8Array): void {
    this.db.query("INSERT INTO modules (hash, bytes) VALUES (?, ?) ON CONFLICT (hash) DO NOTHING").run(hash, bytes);
  }

  createTask(id: string, plan: TaskPlan, origin: string, consumer?: string): void {
    const { partitions, ...stored } = plan;
    const now = this.now();
    this.tx(() => {
      this.db.query("INSERT INTO tasks (id, name, plan, state, origin, created_at, consumer) VALUES (?, ?, ?, 'running', ?, ?, ?)")
        .run(id, plan.name ?? null, encodeCbor(stored), origin, now, consumer ?? null);
      partitions.forEach((input, i) => this.addSubtask(`${id}.${i}`, id, i, "map", input));
    });
  }

  addSubtask(id: string, taskId: string, idx: number, kind: "map" | "reduce", input: Uint8Array): void {
    this.db.query("INSERT INTO subtasks (id, task_id, idx, kind, input, state, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (id) DO NOTHING")
      .run(id, taskId, idx, kind, input, this.now());
  }

  task(id: string): TaskRow | undefined {
    return this.db.query<TaskRow, [string]>("SELECT * FROM tasks WHERE id = ?").get(id) ?? undefined;
  }

  plan(row: TaskRow): StoredPlan {
    return decodeCbor(row.plan, 1 << 22) as StoredPlan;
  }

  tasks(limit: number, after?: string): TaskRow[] {
    return this.db.query<TaskRow, [string, number]>("SELECT * FROM tasks WHERE id > ? ORDER BY id LIMIT ?").all(after ?? "", limit);
  }

  subtasksOf(taskId: string): SubtaskRow[] {
    return this.db.query<SubtaskRow, [string]>("SELECT * FROM subtasks WHERE task_id = ? ORDER BY kind, idx").all(taskId);
  }

  subtask(id: string): SubtaskRow | undefined {
    return this.db.query<SubtaskRow, [string]>("SELECT * FROM subtasks WHERE id = ?").get(id) ?? undefined;
  }

  byState(state: SubtaskState, limit = 10_000): SubtaskRow[] {
    return this.db.query<SubtaskRow, [string, number]>("SELECT * FROM subtasks WHERE state = ? ORDER BY created_at, id LIMIT ?").all(state, limit);
  }

  markAssigned(id: string, clusterId: string, peerId: string, crossOrg?: CrossOrgAdmission): void {
    const row = this.subtask(id);
    if (!row || row.state !== "pending") return;
    const history = [...(JSON.parse(row.history) as string[]), clusterId];
    const a = crossOrg;
    this.db.query(
      `UPDATE subtasks SET state = 'assigned', cluster_id = ?, peer_id = ?, attempts = attempts + 1, history = ?, assigned_at = ?, held = NULL,
         agreement_id = ?, provider_org = ?, demand_cpu = ?, demand_mem = ?, priority = ?, preemptible = ? WHERE id = ? AND state = 'pending'`,
    ).run(clusterId, peerId, JSON.stringify(history), this.now(),
      a?.agreementId ?? null, a?.providerOrg ?? null, a?.demand.cpuMilliCores ?? null, a?.demand.memoryBytes ?? null, a?.priority ?? null, a ? (a.preemptible ? 1 : 0) : null, id);
  }

  /** Cross-org subtasks assigned to clusters of `providerOrg` now (the running set admission counts). */
  runningOn(providerOrg: string): SubtaskRow[] {
    return this.db.query<SubtaskRow, [string]>("SELECT * FROM subtasks WHERE state = 'assigned' AND provider_org = ? AND agreement_id IS NOT NULL ORDER BY assigned_at, id").all(providerOrg);
  }

  /** Record why a pending subtask waits (written only when the reason changes). */
  hold(id: string, reason: string | null): boolean {
    return this.db.query("UPDATE subtasks SET held = ? WHERE id = ? AND state = 'pending' AND held IS NOT ?").run(reason, id, reason).changes === 1;
  }

  /** Refuse a pending subtask for good (e.g. cross-org with no agreement). */
  refuse(id: string, reason: string): void {
    this.db.query("UPDATE subtasks SET state = 'failed', error = ?, held = NULL, finished_at = ? WHERE id = ? AND state = 'pending'").run(reason, this.now(), id);
  }

  /**
   * Take an assigned subtask back for higher-priority work: pending again
   * (requeued, not lost; the attempt does not count against maxAttempts).
   */
  preempt(id: string, why: string): boolean {
    return this.db.query(
      "UPDATE subtasks SET state = 'pending', attempts = max(attempts - 1, 0), preemptions = preemptions + 1, error = ?, held = ? WHERE id = ? AND state = 'assigned'",
    ).run(why, why, id).changes === 1;
  }

  /** Take a subtask back from its cluster (failed or refused): pending again, or failed after `maxAttempts`. */
  release(id: string, maxAttempts: number, why: string): "pending" | "failed" | "unchanged" {
    const row = this.subtask(id);
    if (!row || row.state !== "assigned") return "unchanged";
    const next = row.attempts >= maxAttempts ? "failed" : "pending";
    this.db.query("UPDATE subtasks SET state = ?, error = ?, finished_at = ? WHERE id = ?")
      .run(next, why, next === "failed" ? this.now() : null, id);
    return next;
  }

  /** A delivery that never happened does not count as an attempt: pending again. */
  undoAssign(id: string, why: string): void {
    this.db.query("UPDATE subtasks SET state = 'pending', attempts = max(attempts - 1, 0), error = ? WHERE id = ? AND state = 'assigned'").run(why, id);
  }

  /** Apply one result. First result wins; later ones are counted as duplicates. */
  applyResult(r: SubtaskResult, clusterId: string, retryable: (reason: string) => boolean, maxAttempts: (taskId: string) => number): "applied" | "duplicate" | "unknown" | "retry" {
    const row = this.subtask(r.subtaskId);
    if (!row) return "unknown";
    if (row.state === "done" || row.state === "failed") {
      this.db.query("UPDATE subtasks SET duplicates = duplicates + 1 WHERE id = ?").run(row.id);
      return "duplicate";
    }
    if (!r.ok && retryable(r.reason ?? "") && row.attempts < maxAttempts(row.task_id)) {
      this.db.query("UPDATE subtasks SET state = 'pending', error = ? WHERE id = ?").run(`${r.reason}: ${r.detail ?? ""}`, row.id);
      return "retry";
    }
    this.db.query(
      "UPDATE subtasks SET state = ?, output = ?, error = ?, result_cluster = ?, started_at = ?, finished_at = ?, cpu_ms = ?, wall_ms = ? WHERE id = ?",
    ).run(r.ok ? "done" : "failed", r.output ?? null, r.ok ? null : `${r.reason}: ${r.detail ?? ""}`, clusterId, r.startedAt, r.finishedAt, r.cpuMs, r.wallMs, row.id);
    return "applied";
  }

  finishTask(id: string, outcome: { result?: Uint8Array; error?: string }): void {
    this.db.query("UPDATE tasks SET state = ?, result = ?, error = ?, finished_at = ? WHERE id = ? AND state = 'running'")
      .run(outcome.error ? "failed" : "done", outcome.result ?? null, outcome.error ?? null, this.now(), id);
  }

  highWater(peerId: string): number {
    return this.db.query<{ high_water: number }, [string]>("SELECT high_water FROM receipts WHERE peer_id = ?").get(peerId)?.high_water ?? 0;
  }

  setHighWater(peerId: string, seq: number): void {
    this.db.query("INSERT INTO receipts (peer_id, high_water, updated_at) VALUES (?, ?, ?) ON CONFLICT (peer_id) DO UPDATE SET high_water = max(high_water, excluded.high_water), updated_at = excluded.updated_at")
      .run(peerId, seq, this.now());
  }

  recordAgentRecord(peerId: string, seq: number, kind: string, at: number, body: Uint8Array): boolean {
    return this.db.query("INSERT INTO agent_records (peer_id, seq, kind, at, body) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING").run(peerId, seq, kind, at, body).changes === 1;
  }

  recordCounts(): { peerId: string; kind: string; count: number; highWater: number }[] {
    return this.db.query<{ peerId: string; kind: string; count: number; highWater: number }, []>(`
      SELECT r.peer_id AS peerId, r.kind AS kind, count(*) AS count, coalesce(max(x.high_water), 0) AS highWater
      FROM agent_records r LEFT JOIN receipts x ON x.peer_id = r.peer_id GROUP BY r.peer_id, r.kind ORDER BY r.peer_id, r.kind`).all();
  }

  /** Raw records of one kind (for views and tests). */
  records(kind: string, limit = 1000): { peerId: string; seq: number; body: unknown }[] {
    return this.db.query<{ peer_id: string; seq: number; body: Uint8Array }, [string, number]>("SELECT peer_id, seq, body FROM agent_records WHERE kind = ? ORDER BY peer_id, seq LIMIT ?")
      .all(kind, limit).map((r) => ({ peerId: r.peer_id, seq: r.seq, body: decodeCbor(r.body, 1 << 20) }));
  }
}
