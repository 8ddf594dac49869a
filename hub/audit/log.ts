/**
 * Append-only, hash-chained, hub-signed audit log in bun:sqlite.
 *
 * Record: { seq, at, kind, actor, subject, details, prevHash, hash, sig }
 *   seq       1, 2, 3, ... with no gaps
 *   at        ISO 8601 time of the append (injected clock)
 *   details   canonical JSON text (keys sorted), hashed exactly as stored
 *   prevHash  hash of record seq-1; 64 zeros for seq 1
 *   hash      hex sha256 of JSON.stringify([seq, at, kind, actor, subject, details, prevHash])
 *   sig       hex Ed25519 signature by the hub key over the 32 hash bytes
 *
 * `verifyAuditLog` walks the chain and names the first seq that was modified,
 * removed or reordered. Removing records at the tail is only visible against
 * a head (seq, hash) kept elsewhere: pass it as `expectHead`.
 */
import { Database } from "bun:sqlite";
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { MalformedInputError } from "../../plugins/sdk/errors.ts";
import type { Clock } from "../../plugins/sdk/plugin.ts";
import { AUDIT_KINDS, auditDetailsBytesMax, auditNameCharsMax, auditPageSizeMax, type AuditKind } from "./constants.ts";

export const GENESIS_HASH = "0".repeat(64);

export type AuditRecord = {
  seq: number;
  at: string;
  kind: AuditKind;
  actor: string;
  subject: string;
  details: unknown;
  prevHash: string;
  hash: string;
  sig: string;
};

export type AuditEntry = { kind: AuditKind; actor: string; subject: string; details?: unknown };

export type AuditVerification =
  | { ok: true; count: number; head: { seq: number; hash: string } }
  | { ok: false; seq: number; problem: string };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_log (
  seq        INTEGER PRIMARY KEY,
  at         TEXT NOT NULL,
  kind       TEXT NOT NULL,
  actor      TEXT NOT NULL,
  subject    TEXT NOT NULL,
  details    TEXT NOT NULL,
  prev_hash  TEXT NOT NULL,
  hash       TEXT NOT NULL,
  sig        TEXT NOT NULL
) STRICT;
`;

type Row = { seq: number; at: string; kind: string; actor: string; subject: string; details: string; prev_hash: string; hash: string; sig: string };

/** JSON with object keys sorted at every level, so equal details hash equal. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export function recordHash(r: { seq: number; at: string; kind: string; actor: string; subject: string; details: string; prevHash: string }): string {
  const text = JSON.stringify([r.seq, r.at, r.kind, r.actor, r.subject, r.details, r.prevHash]);
  return bytesToHex(sha256(new TextEncoder().encode(text)));
}

function toRecord(r: Row): AuditRecord {
  return {
    seq: r.seq,
    at: r.at,
    kind: r.kind as AuditKind,
    actor: r.actor,
    subject: r.subject,
    details: JSON.parse(r.details),
    prevHash: r.prev_hash,
    hash: r.hash,
    sig: r.sig,
  };
}

function openDb(pathOrDb: string | Database): { db: Database; owns: boolean } {
  if (typeof pathOrDb !== "string") return { db: pathOrDb, owns: false };
  const db = new Database(pathOrDb, { create: true, strict: true });
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = FULL");
  db.exec("PRAGMA busy_timeout = 5000");
  return { db, owns: true };
}

export type AuditLogOptions = {
  /** The hub's 32-byte Ed25519 secret key. */
  signingKey: Uint8Array;
  clock: Clock;
};

export class AuditLog {
  readonly publicKey: Uint8Array;

  private constructor(
    private readonly db: Database,
    private readonly owns: boolean,
    private readonly options: AuditLogOptions,
  ) {
    this.publicKey = ed25519.getPublicKey(options.signingKey);
  }

  static open(pathOrDb: string | Database, options: AuditLogOptions): AuditLog {
    if (!(options.signingKey instanceof Uint8Array) || options.signingKey.length !== 32) {
      throw new Error("AuditLog: signingKey must be a 32-byte Ed25519 secret key");
    }
    const { db, owns } = openDb(pathOrDb);
    db.exec(SCHEMA);
    return new AuditLog(db, owns, options);
  }

  close(): void {
    if (this.owns) this.db.close();
  }

  /** Append one record; concurrent appenders (other processes) are serialised by an IMMEDIATE transaction. */
  append(entry: AuditEntry): AuditRecord {
    if (!AUDIT_KINDS.includes(entry.kind)) throw new MalformedInputError(`audit kind must be one of ${AUDIT_KINDS.join(", ")}`);
    for (const field of ["actor", "subject"] as const) {
      const v = entry[field];
      if (typeof v !== "string" || v.length === 0 || v.length > auditNameCharsMax) {
        throw new MalformedInputError(`audit ${field} must be 1 to ${auditNameCharsMax} characters`);
      }
    }
    const details = canonicalJson(entry.details ?? {});
    if (details === undefined || Buffer.byteLength(details, "utf8") > auditDetailsBytesMax) {
      throw new MalformedInputError(`audit details must be JSON of at most ${auditDetailsBytesMax} bytes`);
    }
    const at = new Date(this.options.clock.now()).toISOString();

    return this.db.transaction((): AuditRecord => {
      const last = this.db.query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").get() as { seq: number; hash: string } | null;
      const seq = (last?.seq ?? 0) + 1;
      const prevHash = last?.hash ?? GENESIS_HASH;
      const hash = recordHash({ seq, at, kind: entry.kind, actor: entry.actor, subject: entry.subject, details, prevHash });
      const sig = bytesToHex(ed25519.sign(hexToBytes(hash), this.options.signingKey));
      this.db
        .query("INSERT INTO audit_log (seq, at, kind, actor, subject, details, prev_hash, hash, sig) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .run(seq, at, entry.kind, entry.actor, entry.subject, details, prevHash, hash, sig);
      return { seq, at, kind: entry.kind, actor: entry.actor, subject: entry.subject, details: JSON.parse(details), prevHash, hash, sig };
    }).immediate();
  }

  /** Records with seq > after, oldest first, at most min(limit, auditPageSizeMax). */
  page(after = 0, limit = auditPageSizeMax): AuditRecord[] {
    const n = Math.max(1, Math.min(limit, auditPageSizeMax));
    return (this.db.query("SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?").all(after, n) as Row[]).map(toRecord);
  }

  head(): { seq: number; hash: string } | null {
    return this.db.query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").get() as { seq: number; hash: string } | null;
  }

  /** JSON lines (one record per line, "\n"-terminated), streamed page by page. */
  *jsonLines(after = 0): Generator<string> {
    for (;;) {
      const records = this.page(after, auditPageSizeMax);
      for (const r of records) yield `${JSON.stringify(r)}\n`;
      if (records.length < auditPageSizeMax) return;
      after = records[records.length - 1]!.seq;
    }
  }

  verify(options: VerifyOptions = {}): AuditVerification {
    return verifyAuditLog(this.db, { publicKeys: [this.publicKey], ...options });
  }
}

export type VerifyOptions = {
  /** Keys whose signatures are accepted (the hub's key, and earlier keys after rotation). */
  publicKeys?: readonly Uint8Array[];
  /** A head recorded earlier; records missing from the tail are reported. */
  expectHead?: { seq: number; hash: string };
};

/**
 * Walk the whole chain in seq order. Reports the first bad record: a gap
 * (removed), a prevHash that does not link (removed or reordered), content
 * that does not match its hash (modified), or a bad signature.
 */
export function verifyAuditLog(pathOrDb: string | Database, options: VerifyOptions & { publicKeys: readonly Uint8Array[] }): AuditVerification {
  const { db, owns } = typeof pathOrDb === "string" ? { db: new Database(pathOrDb, { readonly: true, strict: true }), owns: true } : { db: pathOrDb, owns: false };
  try {
    let expectedSeq = 1;
    let prevHash = GENESIS_HASH;
    for (const row of db.query("SELECT * FROM audit_log ORDER BY seq").iterate() as IterableIterator<Row>) {
      if (row.seq !== expectedSeq) return { ok: false, seq: expectedSeq, problem: `record ${expectedSeq} is missing (next is ${row.seq})` };
      if (row.prev_hash !== prevHash) return { ok: false, seq: row.seq, problem: `record ${row.seq} does not link to record ${row.seq - 1} (removed or reordered)` };
      const hash = recordHash({ seq: row.seq, at: row.at, kind: row.kind, actor: row.actor, subject: row.subject, details: row.details, prevHash: row.prev_hash });
      if (hash !== row.hash) return { ok: false, seq: row.seq, problem: `record ${row.seq} does not match its hash (modified)` };
      if (!signatureValid(row.sig, row.hash, options.publicKeys)) return { ok: false, seq: row.seq, problem: `record ${row.seq} has no valid hub signature` };
      prevHash = row.hash;
      expectedSeq += 1;
    }
    const count = expectedSeq - 1;
    const expect = options.expectHead;
    if (expect && (count < expect.seq)) return { ok: false, seq: count + 1, problem: `records ${count + 1}..${expect.seq} are missing from the tail` };
    if (expect && expect.seq > 0) {
      const at = db.query("SELECT hash FROM audit_log WHERE seq = ?").get(expect.seq) as { hash: string } | null;
      if (at?.hash !== expect.hash) return { ok: false, seq: expect.seq, problem: `record ${expect.seq} differs from the expected head` };
    }
    return { ok: true, count, head: { seq: count, hash: prevHash } };
  } finally {
    if (owns) db.close();
  }
}

function signatureValid(sigHex: string, hashHex: string, keys: readonly Uint8Array[]): boolean {
  try {
    const sig = hexToBytes(sigHex);
    const msg = hexToBytes(hashHex);
    return keys.some((k) => ed25519.verify(sig, msg, k));
  } catch {
    return false;
  }
}
