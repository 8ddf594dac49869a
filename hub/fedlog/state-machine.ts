/**
 * The federation log's state machine. Membership commands are applied into
 * the hub registry (so the API, heartbeats and renewals read one store);
 * hubs, agreements and task assignments live in DIR/fedlog.db together with
 * the applied index.
 *
 * Exactly-once: fedlog.db records the applied index in the same transaction
 * as its own tables. Registry writes happen in the registry's own
 * transaction just before; a crash in between re-applies that one command on
 * restart, which is harmless because every membership command is
 * idempotent and carries its own time (re-applying the same join, renewal
 * or revocation gives the same row).
 *
 * Snapshots carry the whole state the commands built (registry members,
 * this file's tables, and the stores other services register as parts:
 * tasks.db, agreements.db); restore replaces the local state with them.
 */
import { Database } from "bun:sqlite";
import type { CommittedCommand, ReplicatedStateMachine } from "../../plugins/sdk/consensus.ts";
import { z } from "zod";
import { decodeCbor, encodeCbor } from "../../plugins/sdk/codec.ts";
import { GreyError, MalformedInputError, UnsupportedVersionError } from "../../plugins/sdk/errors.ts";
import type { Logger } from "../../plugins/sdk/plugin.ts";
import type { AttestationRecord, Member, Registry } from "../registry/index.ts";
import { decodeCommand, type FedlogCommand } from "./commands.ts";
import { claimWins, type SeatClaim } from "../../plugins/consensus-raft/driver/seats.ts";
import { FEDLOG_SNAPSHOT_VERSION, fedlogSnapshotBytesMax } from "./constants.ts";
import { exportTables, importTables, TablesImage, type TableSpec } from "./snapshot-tables.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY CHECK (id = 1), applied INTEGER NOT NULL, skipped INTEGER NOT NULL DEFAULT 0) STRICT;
CREATE TABLE IF NOT EXISTS hubs (member INTEGER PRIMARY KEY, peer_id TEXT NOT NULL, api TEXT NOT NULL, at INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS agreements (agreement_id TEXT PRIMARY KEY, body TEXT NOT NULL, at INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS tasks (task_id TEXT PRIMARY KEY, cluster_id TEXT NOT NULL, at INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS peers (member INTEGER PRIMARY KEY, peer_id TEXT NOT NULL, multiaddrs TEXT NOT NULL, at INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS seats (child TEXT PRIMARY KEY, claim TEXT NOT NULL, at INTEGER NOT NULL) STRICT;
`;

/** This file's tables as snapshots carry them (meta: the applied index is the snapshot's). */
const LOG_TABLES: readonly TableSpec[] = [
  { table: "hubs", orderBy: "member" },
  { table: "agreements", orderBy: "agreement_id" },
  { table: "tasks", orderBy: "task_id" },
  { table: "peers", orderBy: "member" },
  { table: "seats", orderBy: "child" },
];

const SnapshotImage = z.object({
  v: z.literal(FEDLOG_SNAPSHOT_VERSION),
  members: TablesImage.optional(),
  log: TablesImage,
  parts: z.record(z.string(), z.unknown()),
});

/**
 * A store another service keeps from this log's commands (tasks.db, agreements.db), carried whole in
 * snapshots: `export` its rows (deterministic), `import` replaces its rows with an export (idempotent).
 */
export interface FedlogSnapshotPart {
  /** A command type that builds the store: the part is in the snapshots of the log owning that command. */
  owner: FedlogCommand["type"];
  export(): unknown;
  import(image: unknown): void;
}

/** A hub added to the group through the log (the founders come from configuration). */
export interface PeerRecord {
  member: number;
  peerId: string;
  multiaddrs: string[];
}

/** What apply returns to the proposer: JSON-safe, so it can travel back to a forwarding hub. */
export type ApplyResult = { ok: true } | { ok: false; code: string; message: string };

export interface HubRecord {
  member: number;
  peerId: string;
  api: string;
}

interface Image {
  members: Member[];
  hubs: HubRecord[];
  agreements: { agreementId: string; body: string; at: number }[];
  tasks: { taskId: string; clusterId: string; at: number }[];
  peers?: PeerRecord[];
  seats?: SeatRecord[];
}

/** A child group's recorded claim on its parent seat, with the child's hubs' addresses. */
export type SeatRecord = Extract<FedlogCommand, { type: "seat-claimed" }>;

export interface FedlogStateMachineOptions {
  /**
   * Does this log own cluster membership (member-* commands into the registry,
   * members in snapshots)? true for the flat and region logs; false for the
   * global log of a hierarchy, whose hubs keep their own region's members.
   */
  members?: boolean;
  /** Stores of other services carried in snapshots, by name (registered before replication starts). */
  parts?: ReadonlyMap<string, FedlogSnapshotPart>;
  /** Does this log own commands of `type` (hierarchy: groups.ts)? Default: every command. */
  owns?: (type: FedlogCommand["type"]) => boolean;
}

/** Commands other hub services apply into their own stores (agreements into agreements.db), on every hub. */
export type FedlogAppliers = ReadonlyMap<FedlogCommand["type"], (cmd: FedlogCommand) => void>;

export class FedlogStateMachine implements ReplicatedStateMachine {
  private readonly db: Database;
  private applied: number;

  /** Told of every hub added or removed (FederationLog updates its transport). */
  onPeer: ((member: number, peer: PeerRecord | undefined) => void) | undefined;

  private readonly members: boolean;
  private readonly parts: ReadonlyMap<string, FedlogSnapshotPart>;
  private readonly owns: (type: FedlogCommand["type"]) => boolean;

  constructor(path: string, private readonly registry: Registry, private readonly logger: Logger, private readonly appliers: FedlogAppliers = new Map(), opts: FedlogStateMachineOptions = {}) {
    this.members = opts.members ?? true;
    this.parts = opts.parts ?? new Map();
    this.owns = opts.owns ?? (() => true);
    this.db = new Database(path, { create: true, strict: true });
    this.db.exec("PRAGMA journal_mode = WAL");
    this.db.exec("PRAGMA synchronous = FULL");
    this.db.exec(SCHEMA);
    this.applied = (this.db.query("SELECT applied FROM meta").get() as { applied: number } | null)?.applied ?? 0;
  }

  appliedIndex(): number {
    return this.applied;
  }

  apply(cmd: CommittedCommand): ApplyResult {
    return this.applyBatch([cmd])[0]!;
  }

  /**
   * Applies a Ready's commands: registry writes command by command (each its
   * own transaction), then this store's tables and the applied index in ONE
   * transaction (one fsync per batch, not per command). A crash in between
   * re-applies the batch, which is harmless (idempotent commands).
   */
  applyBatch(cmds: readonly CommittedCommand[]): ApplyResult[] {
    const last = cmds[cmds.length - 1];
    if (!last) return [];
    const decoded: (FedlogCommand | undefined)[] = [];
    const results: ApplyResult[] = [];
    let skipped = 0;
    for (const cmd of cmds) {
      let d: FedlogCommand | undefined;
      let result: ApplyResult = { ok: true };
      try {
        d = decodeCommand(cmd.data);
      } catch (err) {
        // Deterministic on every replica of this build: skip, count, carry on.
        this.logger.warn("fedlog entry skipped", { index: cmd.index, error: (err as Error).message });
        result = { ok: false, code: (err as GreyError).code ?? "ERR_MALFORMED_INPUT", message: (err as Error).message };
        skipped++;
      }
      if (d) {
        try {
          this.applyToRegistry(d);
        } catch (err) {
          if (!(err instanceof GreyError)) throw err;
          result = { ok: false, code: err.code, message: err.message };
        }
      }
      decoded.push(d);
      results.push(result);
    }
    this.db.transaction(() => {
      decoded.forEach((d, i) => {
        if (d && results[i]!.ok) this.applyLocal(d);
      });
      this.db.query("INSERT INTO meta (id, applied, skipped) VALUES (1, ?1, ?2) ON CONFLICT (id) DO UPDATE SET applied = ?1, skipped = skipped + ?2")
        .run(last.index, skipped);
    })();
    this.applied = last.index;
    return results;
  }

  private applyToRegistry(c: FedlogCommand): void {
    if (!this.members && c.type.startsWith("member-")) throw new FedlogMisroutedError(c.type);
    switch (c.type) {
      case "member-joined":
        this.registry.recordJoin({
          clusterId: c.clusterId, org: c.org, region: c.region, peerId: c.peerId, multiaddrs: c.multiaddrs,
          certSerial: c.certSerial, certNotAfter: new Date(c.certNotAfter), attestation: c.attestation as unknown as AttestationRecord, now: new Date(c.at),
        });
        return;
      case "member-renewed":
        this.registry.recordRenewal(c.peerId, c.certSerial, new Date(c.certNotAfter), c.attestation as unknown as AttestationRecord, new Date(c.at));
        return;
      case "member-revoked":
        this.registry.revoke(c.peerId, c.reason, new Date(c.at));
        return;
      default:
        // a GreyError thrown here refuses the command, identically on every hub
        this.appliers.get(c.type)?.(c);
        return;
    }
  }

  private applyLocal(c: FedlogCommand): void {
    switch (c.type) {
      case "hub-announced":
        this.db.query("INSERT OR REPLACE INTO hubs (member, peer_id, api, at) VALUES (?, ?, ?, ?)").run(c.member, c.peerId, c.api, c.at);
        return;
      case "agreement-applied":
        this.db.query("INSERT OR REPLACE INTO agreements (agreement_id, body, at) VALUES (?, ?, ?)").run(c.agreementId, JSON.stringify(c.body), c.at);
        return;
      case "task-assigned":
        this.db.query("INSERT OR REPLACE INTO tasks (task_id, cluster_id, at) VALUES (?, ?, ?)").run(c.taskId, c.clusterId, c.at);
        return;
      case "hub-added":
        this.db.query("INSERT OR REPLACE INTO peers (member, peer_id, multiaddrs, at) VALUES (?, ?, ?, ?)").run(c.member, c.peerId, JSON.stringify(c.multiaddrs), c.at);
        this.onPeer?.(c.member, { member: c.member, peerId: c.peerId, multiaddrs: c.multiaddrs });
        return;
      case "seat-claimed": {
        const cur = this.seat(c.child);
        if (claimWins(cur && seatClaim(cur), seatClaim(c))) this.db.query("INSERT OR REPLACE INTO seats (child, claim, at) VALUES (?, ?, ?)").run(c.child, JSON.stringify(c), c.at);
        return;
      }
      case "hub-removed":
        this.db.query("DELETE FROM peers WHERE member = ?").run(c.member);
        this.db.query("DELETE FROM hubs WHERE member = ?").run(c.member);
        this.onPeer?.(c.member, undefined);
        return;
      default:
        return;
    }
  }

  hub(member: number): HubRecord | undefined {
    const r = this.db.query("SELECT member, peer_id AS peerId, api FROM hubs WHERE member = ?").get(member) as HubRecord | null;
    return r ?? undefined;
  }

  peers(): PeerRecord[] {
    const rows = this.db.query("SELECT member, peer_id AS peerId, multiaddrs FROM peers ORDER BY member").all() as { member: number; peerId: string; multiaddrs: string }[];
    return rows.map((r) => ({ ...r, multiaddrs: JSON.parse(r.multiaddrs) as string[] }));
  }

  seat(child: string): SeatRecord | undefined {
    const r = this.db.query("SELECT claim FROM seats WHERE child = ?").get(child) as { claim: string } | null;
    return r ? (JSON.parse(r.claim) as SeatRecord) : undefined;
  }

  seats(): SeatRecord[] {
    return (this.db.query("SELECT claim FROM seats ORDER BY child").all() as { claim: string }[]).map((r) => JSON.parse(r.claim) as SeatRecord);
  }

  hubs(): HubRecord[] {
    return this.db.query("SELECT member, peer_id AS peerId, api FROM hubs ORDER BY member").all() as HubRecord[];
  }

  taskAssignment(taskId: string): string | undefined {
    return this.taskAssignmentAt(taskId)?.clusterId;
  }

  taskAssignmentAt(taskId: string): { clusterId: string; at: number } | undefined {
    const r = this.db.query("SELECT cluster_id AS clusterId, at FROM tasks WHERE task_id = ?").get(taskId) as { clusterId: string; at: number } | null;
    return r ?? undefined;
  }

  agreement(agreementId: string): unknown {
    const r = this.db.query("SELECT body FROM agreements WHERE agreement_id = ?").get(agreementId) as { body: string } | null;
    return r ? JSON.parse(r.body) : undefined;
  }

  skipped(): number {
    return (this.db.query("SELECT skipped FROM meta").get() as { skipped: number } | null)?.skipped ?? 0;
  }

  /**
   * The whole state the log's commands built, as deterministic CBOR (FEDLOG_SNAPSHOT_VERSION):
   * `members` — the registry's member rows (only when this log owns membership);
   * `log` — this file's tables (hub announcements, agreement bodies, task assignments, peers, seat claims);
   * `parts` — the other services' stores (tasks.db, agreements.db), by part name, for the commands this log owns.
   * Tables are whole (columns by name, rows by key): equal state gives equal bytes.
   */
  snapshot(): Uint8Array {
    const parts: Record<string, unknown> = {};
    for (const [name, part] of [...this.parts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (this.owns(part.owner)) parts[name] = part.export();
    }
    const image = {
      v: FEDLOG_SNAPSHOT_VERSION,
      ...(this.members ? { members: this.registry.exportSnapshot() } : {}),
      log: exportTables(this.db, LOG_TABLES),
      parts,
    };
    return encodeCbor(image);
  }

  /**
   * Install an image (from the leader, or the stored one after a crash): REPLACES the local state —
   * members, rows and peers absent from the image are removed. The services' stores first (each in
   * its own transaction), this file's tables and the applied index last: a crash in between restores
   * the same image again on restart (the driver restores while the applied index is below it), and
   * restoring an image twice gives the same state.
   */
  restore(index: number, data: Uint8Array): void {
    if (data[0] === 0x7b) return this.restoreJson(index, data); // format 1 (JSON), from an older hub
    const raw = decodeCbor(data, fedlogSnapshotBytesMax);
    const r = SnapshotImage.safeParse(raw);
    if (!r.success) {
      const v = (raw as { v?: unknown } | null)?.v;
      if (v !== FEDLOG_SNAPSHOT_VERSION) throw new UnsupportedVersionError(v, [FEDLOG_SNAPSHOT_VERSION]);
      throw new MalformedInputError(`invalid fedlog snapshot: ${r.error.issues.slice(0, 3).map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    }
    const img = r.data;
    if (this.members && img.members) this.registry.importSnapshot(img.members);
    for (const [name, part] of this.parts) {
      if (!this.owns(part.owner)) continue;
      if (name in img.parts) part.import(img.parts[name]);
      else this.logger.warn("fedlog snapshot without a part this hub keeps: left as is", { part: name, index });
    }
    const before = this.peers();
    this.db.transaction(() => {
      importTables(this.db, LOG_TABLES, img.log);
      this.db.query("INSERT INTO meta (id, applied) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET applied = ?1").run(index);
    })();
    const after = this.peers();
    for (const p of before) if (!after.some((q) => q.member === p.member)) this.onPeer?.(p.member, undefined);
    for (const p of after) this.onPeer?.(p.member, p);
    this.applied = index;
  }

  /**
   * Format 1 (JSON, hubs before snapshots carried everything): members are
   * upserted (none removed), agreements re-applied from their latest source.
   */
  private restoreJson(index: number, data: Uint8Array): void {
    const img = JSON.parse(new TextDecoder().decode(data)) as Image;
    for (const m of this.members ? img.members : []) {
      this.registry.recordJoin({
        clusterId: m.clusterId, org: m.org, region: m.region, peerId: m.peerId, multiaddrs: m.multiaddrs,
        certSerial: m.certSerial, certNotAfter: new Date(m.certNotAfter), attestation: m.attestation, now: new Date(m.joinedAt),
      });
      if (m.renewedAt) this.registry.recordRenewal(m.peerId, m.certSerial, new Date(m.certNotAfter), m.attestation, new Date(m.renewedAt));
      if (m.revoked) this.registry.revoke(m.peerId, m.revoked.reason, new Date(m.revoked.at));
    }
    this.db.transaction(() => {
      this.db.exec("DELETE FROM hubs; DELETE FROM agreements; DELETE FROM tasks; DELETE FROM peers; DELETE FROM seats;");
      for (const c of img.seats ?? []) this.db.query("INSERT INTO seats (child, claim, at) VALUES (?, ?, ?)").run(c.child, JSON.stringify(c), c.at);
      for (const p of img.peers ?? []) this.db.query("INSERT INTO peers (member, peer_id, multiaddrs, at) VALUES (?, ?, ?, 0)").run(p.member, p.peerId, JSON.stringify(p.multiaddrs));
      for (const h of img.hubs) this.db.query("INSERT INTO hubs (member, peer_id, api, at) VALUES (?, ?, ?, 0)").run(h.member, h.peerId, h.api);
      for (const a of img.agreements) this.db.query("INSERT INTO agreements (agreement_id, body, at) VALUES (?, ?, ?)").run(a.agreementId, a.body, a.at);
      for (const t of img.tasks) this.db.query("INSERT INTO tasks (task_id, cluster_id, at) VALUES (?, ?, ?)").run(t.taskId, t.clusterId, t.at);
      this.db.query("INSERT INTO meta (id, applied) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET applied = ?1").run(index);
    })();
    for (const p of img.peers ?? []) this.onPeer?.(p.member, p);
    for (const a of this.owns("agreement-applied") ? img.agreements : []) {
      try {
        this.appliers.get("agreement-applied")?.({ type: "agreement-applied", agreementId: a.agreementId, body: JSON.parse(a.body) as Record<string, unknown>, at: a.at });
      } catch (err) {
        if (!(err instanceof GreyError)) throw err;
        this.logger.warn("agreement from snapshot refused", { agreementId: a.agreementId, error: err.message });
      }
    }
    this.applied = index;
  }

  close(): void {
    this.db.close();
  }
}

/** The seat-keeper's view of a recorded claim. */
export function seatClaim(c: SeatRecord): SeatClaim {
  return { child: c.child, member: c.member, childTerm: c.childTerm, hubs: c.hubs.map((h) => h.member).sort((a, b) => a - b) };
}

/** A command written to a log that does not own it (membership in the global log of a hierarchy): refused on every hub alike. */
export class FedlogMisroutedError extends GreyError {
  constructor(type: string) {
    super("ERR_FEDLOG_MISROUTED", `${type} belongs to the region log, not this one`);
  }
}
