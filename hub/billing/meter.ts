/**
 * Usage records per subtask, in bun:sqlite. Quantities are integers in base
 * units (see `BASE_UNIT`): millicore-seconds of cpu, byte-seconds of memory,
 * bytes transferred. Each record carries an id chosen by its producer;
 * recording the same id again is a no-op (so an agent's outbox may resend),
 * and the same id with different content is a `UsageConflictError`.
 */
import { Database } from "bun:sqlite";
import { MalformedInputError } from "../../plugins/sdk/errors.ts";
import { usageIdCharsMax, usageQuantityMax } from "./constants.ts";
import { UsageConflictError } from "./errors.ts";
import type { UsageResource } from "./rate-card.ts";

export type UsageRecord = {
  /** Idempotency key, unique per measurement (e.g. "<subtask>/<interval>"). */
  id: string;
  agreementId: string;
  subtaskId: string;
  /** When the usage happened (end of the measured interval), ms since the epoch. Invoices include from <= at < to. */
  at: number;
  cpuMilliCoreSeconds: bigint | number;
  memoryByteSeconds: bigint | number;
  transferBytes: bigint | number;
};

export type UsageTotals = Record<UsageResource, bigint> & { records: number };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS usage_records (
  id                     TEXT PRIMARY KEY,
  agreement_id           TEXT NOT NULL,
  subtask_id             TEXT NOT NULL,
  at                     INTEGER NOT NULL,
  cpu_millicore_seconds  INTEGER NOT NULL,
  memory_byte_seconds    INTEGER NOT NULL,
  transfer_bytes         INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS usage_by_agreement ON usage_records (agreement_id, at);
`;

type Row = {
  id: string;
  agreement_id: string;
  subtask_id: string;
  at: bigint;
  cpu_millicore_seconds: bigint;
  memory_byte_seconds: bigint;
  transfer_bytes: bigint;
};

function quantity(record: UsageRecord, field: "cpuMilliCoreSeconds" | "memoryByteSeconds" | "transferBytes"): bigint {
  const v = record[field];
  if (typeof v === "number" && !Number.isSafeInteger(v)) throw new MalformedInputError(`usage ${record.id}: ${field} must be an integer`);
  const b = BigInt(v);
  if (b < 0n || b > usageQuantityMax) throw new MalformedInputError(`usage ${record.id}: ${field} must be from 0 to ${usageQuantityMax}`);
  return b;
}

function text(record: UsageRecord, field: "id" | "agreementId" | "subtaskId"): string {
  const v = record[field];
  if (typeof v !== "string" || v.length === 0 || v.length > usageIdCharsMax) {
    throw new MalformedInputError(`usage record: ${field} must be 1 to ${usageIdCharsMax} characters`);
  }
  return v;
}

export class UsageMeter {
  private constructor(
    private readonly db: Database,
    private readonly ownsDb: boolean,
  ) {}

  static open(pathOrDb: string | Database): UsageMeter {
    const owns = typeof pathOrDb === "string";
    const db = owns ? new Database(pathOrDb, { create: true, strict: true }) : pathOrDb;
    if (owns) {
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = FULL");
      db.exec("PRAGMA busy_timeout = 5000");
    }
    db.exec(SCHEMA);
    return new UsageMeter(db, owns);
  }

  close(): void {
    if (this.ownsDb) this.db.close();
  }

  /** Record one measurement. "duplicate" when this exact record was recorded before. */
  record(r: UsageRecord): "recorded" | "duplicate" {
    const row = {
      id: text(r, "id"),
      agreement_id: text(r, "agreementId"),
      subtask_id: text(r, "subtaskId"),
      at: r.at,
      cpu: quantity(r, "cpuMilliCoreSeconds"),
      memory: quantity(r, "memoryByteSeconds"),
      transfer: quantity(r, "transferBytes"),
    };
    if (!Number.isSafeInteger(row.at) || row.at < 0) throw new MalformedInputError(`usage ${row.id}: at must be ms since the epoch`);
    return this.db.transaction((): "recorded" | "duplicate" => {
      const inserted = this.db
        .query(
          `INSERT INTO usage_records (id, agreement_id, subtask_id, at, cpu_millicore_seconds, memory_byte_seconds, transfer_bytes)
           VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
        )
        .run(row.id, row.agreement_id, row.subtask_id, row.at, row.cpu, row.memory, row.transfer);
      if (inserted.changes === 1) return "recorded";
      const existing = this.db.query("SELECT * FROM usage_records WHERE id = ?").safeIntegers(true).get(row.id) as Row;
      const same =
        existing.agreement_id === row.agreement_id &&
        existing.subtask_id === row.subtask_id &&
        existing.at === BigInt(row.at) &&
        existing.cpu_millicore_seconds === row.cpu &&
        existing.memory_byte_seconds === row.memory &&
        existing.transfer_bytes === row.transfer;
      if (!same) throw new UsageConflictError(row.id);
      return "duplicate";
    }).immediate();
  }

  /** Sums for one agreement over from <= at < to, exact (summed as bigint, never in SQL). */
  totals(agreementId: string, from: Date, to: Date): UsageTotals {
    const totals: UsageTotals = { cpu: 0n, memory: 0n, transfer: 0n, records: 0 };
    const rows = this.db
      .query("SELECT cpu_millicore_seconds, memory_byte_seconds, transfer_bytes FROM usage_records WHERE agreement_id = ? AND at >= ? AND at < ?")
      .safeIntegers(true)
      .iterate(agreementId, from.getTime(), to.getTime()) as IterableIterator<Pick<Row, "cpu_millicore_seconds" | "memory_byte_seconds" | "transfer_bytes">>;
    for (const r of rows) {
      totals.cpu += r.cpu_millicore_seconds;
      totals.memory += r.memory_byte_seconds;
      totals.transfer += r.transfer_bytes;
      totals.records += 1;
    }
    return totals;
  }
}
