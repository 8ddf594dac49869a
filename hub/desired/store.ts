/**
 * The hub's per-cluster desired-state view, in DIR/tasks.db (tables
 * `desired` and `desired_changes`), merged with the rule of rule.ts.
 *
 *  - `desired`: the winner per (cluster, key), with `version`: this hub's
 *    change counter (increases on every accepted change, any cluster), so an
 *    agent asks for "everything after version N" in its heartbeat.
 *  - `desired_changes`: every change received (admin writes and agents'
 *    outbox records, winning or not), the last `desiredChangesKeptMax` per
 *    cluster, for audit and the exactly-once check.
 *
 * Agents' changes are applied inside the outbox transaction (hub/tasks/outbox.ts),
 * so they commit together with the (peer, seq) high-water mark: exactly once.
 * With consensus enabled those travel through the federation log's
 * `task-outbox` command and every hub applies them; admin writes are applied
 * on the hub that took the request only (see ARCHITECTURE.md, edge autonomy).
 */
import { Database } from "bun:sqlite";
import { ed25519 } from "@noble/curves/ed25519.js";
import { peerIdFromString } from "@libp2p/peer-id";
import {
  checkDesiredKey, checkDesiredValue, desiredAckBytesMax, desiredEntriesPerAckMax, DesiredKeysFullError, desiredKeysPerClusterMax,
  desiredSigningPayload, desiredWins, nextDesiredAt, type DesiredEntry, type DesiredSource,
} from "./rule.ts";

/** Received changes kept per cluster (older ones are deleted as new ones arrive). */
export const desiredChangesKeptMax = 1000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS desired (
  cluster_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, at INTEGER NOT NULL, source TEXT NOT NULL,
  origin TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (cluster_id, key)
) STRICT;
CREATE INDEX IF NOT EXISTS desired_by_version ON desired (cluster_id, version);
CREATE TABLE IF NOT EXISTS desired_changes (
  id INTEGER PRIMARY KEY AUTOINCREMENT, cluster_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, at INTEGER NOT NULL,
  source TEXT NOT NULL, origin TEXT NOT NULL, won INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS desired_changes_by_cluster ON desired_changes (cluster_id, id);
`;

export interface DesiredRow extends DesiredEntry {
  origin: string;
  version: number;
}

export interface DesiredChangeRow extends DesiredEntry {
  origin: string;
  won: boolean;
}

const views = new WeakMap<Database, DesiredView>();

export class DesiredView {
  private constructor(readonly db: Database) {
    db.exec(SCHEMA);
  }

  /** The view over `db` (one per connection; creates the tables). */
  static of(db: Database): DesiredView {
    let v = views.get(db);
    if (!v) views.set(db, (v = new DesiredView(db)));
    return v;
  }

  /** A connection of its own to `path` (DIR/tasks.db: the tasks service writes agents' changes through its connection). */
  static open(path: string): DesiredView {
    const db = new Database(path, { create: true, strict: true });
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA busy_timeout = 5000");
    return DesiredView.of(db);
  }

  close(): void {
    views.delete(this.db);
    this.db.close();
  }

  get(cluster: string, key: string): DesiredRow | undefined {
    const r = this.db.query<{ key: string; value: string; at: number; source: DesiredSource; origin: string; version: number }, [string, string]>(
      "SELECT key, value, at, source, origin, version FROM desired WHERE cluster_id = ? AND key = ?",
    ).get(cluster, key);
    return r ?? undefined;
  }

  list(cluster: string): DesiredRow[] {
    return this.db.query<DesiredRow, [string]>("SELECT key, value, at, source, origin, version FROM desired WHERE cluster_id = ? ORDER BY key").all(cluster);
  }

  changes(cluster: string): DesiredChangeRow[] {
    return this.db.query<{ key: string; value: string; at: number; source: DesiredSource; origin: string; won: number }, [string]>(
      "SELECT key, value, at, source, origin, won FROM desired_changes WHERE cluster_id = ? ORDER BY id",
    ).all(cluster).map((r) => ({ ...r, won: r.won === 1 }));
  }

  /**
   * Merge one change (rule.ts) and record it. True when it won. A new key
   * beyond desiredKeysPerClusterMax is refused (DesiredKeysFullError) for an
   * admin write; an agent's change is recorded but not applied then.
   */
  merge(cluster: string, e: DesiredEntry, origin: string): boolean {
    return this.db.transaction(() => {
      const cur = this.get(cluster, e.key);
      let won = desiredWins(e, cur);
      if (won && !cur && this.count(cluster) >= desiredKeysPerClusterMax) {
        if (e.source === "hub") throw new DesiredKeysFullError(cluster);
        won = false;
      }
      if (won) {
        const version = (this.db.query<{ v: number | null }, []>("SELECT max(version) AS v FROM desired").get()?.v ?? 0) + 1;
        this.db.query(
          "INSERT INTO desired (cluster_id, key, value, at, source, origin, version) VALUES (?, ?, ?, ?, ?, ?, ?) " +
          "ON CONFLICT (cluster_id, key) DO UPDATE SET value = excluded.value, at = excluded.at, source = excluded.source, origin = excluded.origin, version = excluded.version",
        ).run(cluster, e.key, e.value, e.at, e.source, origin, version);
      }
      this.db.query("INSERT INTO desired_changes (cluster_id, key, value, at, source, origin, won) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .run(cluster, e.key, e.value, e.at, e.source, origin, won ? 1 : 0);
      this.db.query("DELETE FROM desired_changes WHERE cluster_id = ? AND id <= (SELECT id FROM desired_changes WHERE cluster_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)")
        .run(cluster, cluster, desiredChangesKeptMax);
      return won;
    })();
  }

  /** An admin write at this hub: timestamped now, bumped past the entry it replaces. */
  put(cluster: string, key: string, value: string, now: number, origin: string): DesiredRow {
    checkDesiredKey(key);
    checkDesiredValue(value);
    const at = nextDesiredAt(now, this.get(cluster, key));
    this.merge(cluster, { key, value, at, source: "hub" }, origin);
    return this.get(cluster, key)!;
  }

  /**
   * An agent's signed local change (outbox `desired-change`): verified against
   * the agent's peer id, then merged. "invalid": not applied (bad key, value
   * or signature); the record itself is still kept by the outbox.
   */
  applyAgentChange(peerId: string, cluster: string, body: { key: string; value: string; at: number; sig: Uint8Array }): "won" | "lost" | "invalid" {
    try {
      checkDesiredKey(body.key);
      checkDesiredValue(body.value);
      const pub = peerIdFromString(peerId).publicKey?.raw;
      if (!pub || !ed25519.verify(body.sig, desiredSigningPayload(cluster, body.key, body.value, body.at), pub)) return "invalid";
    } catch {
      return "invalid";
    }
    return this.merge(cluster, { key: body.key, value: body.value, at: body.at, source: "local" }, peerId) ? "won" : "lost";
  }

  /** What an agent of `cluster` holding everything up to `since` is missing (bounded: see rule.ts), and the version it then holds. */
  since(cluster: string, since: number): { entries: DesiredEntry[]; version: number } {
    const top = this.db.query<{ v: number | null }, []>("SELECT max(version) AS v FROM desired").get()?.v ?? 0;
    if (since > top) since = 0; // a version this hub never issued (its store was replaced): send everything again
    const rows = this.db.query<DesiredRow, [string, number, number]>(
      "SELECT key, value, at, source, origin, version FROM desired WHERE cluster_id = ? AND version > ? ORDER BY version LIMIT ?",
    ).all(cluster, since, desiredEntriesPerAckMax);
    const entries: DesiredEntry[] = [];
    let version = since;
    let bytes = 0;
    for (const r of rows) {
      bytes += r.key.length + Buffer.byteLength(r.value) + 16;
      if (entries.length > 0 && bytes > desiredAckBytesMax) break;
      entries.push({ key: r.key, value: r.value, at: r.at, source: r.source });
      version = r.version;
    }
    // nothing newer for this cluster: the agent holds everything up to this hub's current version
    if (rows.length === 0) version = top;
    return { entries, version };
  }

  private count(cluster: string): number {
    return this.db.query<{ n: number }, [string]>("SELECT count(*) AS n FROM desired WHERE cluster_id = ?").get(cluster)!.n;
  }
}
