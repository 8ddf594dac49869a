/**
 * Agreements in bun:sqlite, versioned. An agreement's id is a stable hash of
 * its provider/consumer pair, so applying a document for the same pair again
 * updates it (new version) instead of adding another. Re-applying the same
 * terms (comments or layout changed only) is a no-op.
 */
import { Database } from "bun:sqlite";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { NotFoundError } from "../../plugins/sdk/errors.ts";
import { agreementsMax, agreementVersionsKeptMax } from "./constants.ts";
import { AgreementLimitError } from "./errors.ts";
import { parseAgreement, type AgreementTerms, type ParseOptions } from "./parse.ts";
import { exportTables, importTables, type TableSpec, type TablesImage } from "../fedlog/snapshot-tables.ts";

/** The tables `agreement-applied` builds (usage metering in the same file is local, not in snapshots). */
const SNAPSHOT_TABLES: readonly TableSpec[] = [
  { table: "agreements", orderBy: "id" },
  { table: "agreement_versions", orderBy: "id, version" },
];

export type Agreement = AgreementTerms & {
  /** "agr-" + 16 hex digits of sha256("provider/consumer"). */
  id: string;
  /** 1 for the first version, +1 for every change of terms. */
  version: number;
  createdAt: string;
  updatedAt: string;
};

export type ApplyResult = { agreement: Agreement; change: "created" | "updated" | "unchanged" };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS agreements (
  id           TEXT PRIMARY KEY,
  provider     TEXT NOT NULL,
  consumer     TEXT NOT NULL,
  version      INTEGER NOT NULL,
  terms        TEXT NOT NULL,
  terms_hash   TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  UNIQUE (provider, consumer)
) STRICT;
CREATE TABLE IF NOT EXISTS agreement_versions (
  id          TEXT NOT NULL,
  version     INTEGER NOT NULL,
  terms       TEXT NOT NULL,
  source      TEXT NOT NULL,
  applied_at  INTEGER NOT NULL,
  PRIMARY KEY (id, version)
) STRICT;
`;

type Row = { id: string; version: number; terms: string; terms_hash: string; created_at: number; updated_at: number };

export function agreementId(provider: string, consumer: string): string {
  return `agr-${bytesToHex(sha256(new TextEncoder().encode(`${provider}/${consumer}`))).slice(0, 16)}`;
}

/** Terms as JSON with a fixed key order, so equal terms hash equal. */
function canonicalTerms(t: AgreementTerms): string {
  const resources: Record<string, unknown> = {};
  if (t.resources.cpu) resources.cpu = { limitMilliCores: t.resources.cpu.limitMilliCores, priority: t.resources.cpu.priority };
  if (t.resources.memory) resources.memory = { limitBytes: t.resources.memory.limitBytes, priority: t.resources.memory.priority };
  return JSON.stringify({
    provider: t.provider,
    consumer: t.consumer,
    resources,
    scheduling: { preemption: t.scheduling.preemption, maxBurstPermille: t.scheduling.maxBurstPermille },
    billing: { model: t.billing.model, rateCard: t.billing.rateCard },
  });
}

function fromRow(r: Row): Agreement {
  return {
    id: r.id,
    version: r.version,
    ...(JSON.parse(r.terms) as AgreementTerms),
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}

export class AgreementStore {
  private constructor(
    private readonly db: Database,
    private readonly ownsDb: boolean,
    private readonly parseOptions: ParseOptions,
  ) {}

  /** Open (creating tables if needed) at `path`, or inside an already open database. */
  static open(pathOrDb: string | Database, parseOptions: ParseOptions = {}): AgreementStore {
    const owns = typeof pathOrDb === "string";
    const db = owns ? new Database(pathOrDb, { create: true, strict: true }) : pathOrDb;
    if (owns) {
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = FULL");
      db.exec("PRAGMA busy_timeout = 5000");
    }
    db.exec(SCHEMA);
    return new AgreementStore(db, owns, parseOptions);
  }

  close(): void {
    if (this.ownsDb) this.db.close();
  }

  /**
   * Parse, validate and store. Throws `AgreementInvalidError` (every problem,
   * with path and line) or `AgreementLimitError`.
   */
  applyAgreement(text: string, now: Date | number): ApplyResult {
    const terms = parseAgreement(text, this.parseOptions);
    const at = typeof now === "number" ? now : now.getTime();
    const id = agreementId(terms.provider, terms.consumer);
    const json = canonicalTerms(terms);
    const hash = bytesToHex(sha256(new TextEncoder().encode(json)));

    return this.db.transaction((): ApplyResult => {
      const current = this.db.query("SELECT * FROM agreements WHERE id = ?").get(id) as Row | null;
      if (current && current.terms_hash === hash) return { agreement: fromRow(current), change: "unchanged" };
      if (!current) {
        const { n } = this.db.query("SELECT count(*) AS n FROM agreements").get() as { n: number };
        if (n >= agreementsMax) throw new AgreementLimitError(agreementsMax);
      }
      const version = (current?.version ?? 0) + 1;
      const createdAt = current?.created_at ?? at;
      this.db
        .query(
          `INSERT INTO agreements (id, provider, consumer, version, terms, terms_hash, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET version = excluded.version, terms = excluded.terms,
             terms_hash = excluded.terms_hash, updated_at = excluded.updated_at`,
        )
        .run(id, terms.provider, terms.consumer, version, json, hash, createdAt, at);
      this.db.query("INSERT INTO agreement_versions (id, version, terms, source, applied_at) VALUES (?, ?, ?, ?, ?)").run(id, version, json, text, at);
      this.db.query("DELETE FROM agreement_versions WHERE id = ? AND version <= ?").run(id, version - agreementVersionsKeptMax);
      const row: Row = { id, version, terms: json, terms_hash: hash, created_at: createdAt, updated_at: at };
      return { agreement: fromRow(row), change: current ? "updated" : "created" };
    }).immediate();
  }

  /** Agreements with their versions and stored documents, for a federation log snapshot. */
  exportSnapshot(): TablesImage {
    return this.db.transaction(() => exportTables(this.db, SNAPSHOT_TABLES))();
  }

  /** Replace every agreement and version with a snapshot's (same ids, versions and times as on the hub that took it). Idempotent. */
  importSnapshot(image: unknown): void {
    this.db.transaction(() => importTables(this.db, SNAPSHOT_TABLES, image)).immediate();
  }

  getAgreement(id: string): Agreement | null {
    const row = this.db.query("SELECT * FROM agreements WHERE id = ?").get(id) as Row | null;
    return row ? fromRow(row) : null;
  }

  /** Like `getAgreement`, but a missing agreement is a `NotFoundError`. */
  requireAgreement(id: string): Agreement {
    const a = this.getAgreement(id);
    if (!a) throw new NotFoundError(`no agreement ${id}`);
    return a;
  }

  /** All agreements (at most `agreementsMax`), ordered by id. */
  listAgreements(): Agreement[] {
    return (this.db.query("SELECT * FROM agreements ORDER BY id").all() as Row[]).map(fromRow);
  }

  /** Stored versions of one agreement, oldest first, with the document as applied. */
  versions(id: string): { version: number; appliedAt: string; source: string; terms: AgreementTerms }[] {
    const rows = this.db.query("SELECT version, terms, source, applied_at FROM agreement_versions WHERE id = ? ORDER BY version").all(id) as {
      version: number;
      terms: string;
      source: string;
      applied_at: number;
    }[];
    return rows.map((r) => ({ version: r.version, appliedAt: new Date(r.applied_at).toISOString(), source: r.source, terms: JSON.parse(r.terms) }));
  }
}
