/**
 * A small durable key/value state machine (bun:sqlite) used by tests, the
 * crash test child and the bench: `put key value` commands, applied index
 * stored in the same transaction as the write.
 */
import { Database } from "bun:sqlite";
import type { CommittedCommand, ReplicatedStateMachine } from "../../sdk/consensus.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

export class KvStateMachine implements ReplicatedStateMachine {
  private readonly db: Database;
  private applied = 0;
  constructor(path = ":memory:", durable = true) {
    this.db = new Database(path, { create: true, strict: true });
    this.db.exec("PRAGMA journal_mode = WAL");
    // The Raft log is the durable record: a state machine write lost to power loss is re-applied from it.
    this.db.exec(`PRAGMA synchronous = ${durable ? "NORMAL" : "OFF"}`);
    this.db.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL) STRICT");
    this.db.exec("CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY CHECK (id = 1), applied INTEGER NOT NULL) STRICT");
    this.applied = (this.db.query("SELECT applied FROM meta").get() as { applied: number } | null)?.applied ?? 0;
  }

  static put(key: string, value: string): Uint8Array {
    return enc.encode(JSON.stringify([key, value]));
  }

  appliedIndex(): number {
    return this.applied;
  }

  apply(cmd: CommittedCommand): unknown {
    return this.applyBatch([cmd])[0];
  }

  applyBatch(cmds: readonly CommittedCommand[]): unknown[] {
    const last = cmds[cmds.length - 1];
    if (!last) return [];
    const kvs = cmds.map((c) => JSON.parse(dec.decode(c.data)) as [string, string]);
    this.db.transaction(() => {
      const put = this.db.query("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)");
      for (const [k, v] of kvs) put.run(k, v);
      this.db.query("INSERT OR REPLACE INTO meta (id, applied) VALUES (1, ?)").run(last.index);
    })();
    this.applied = last.index;
    return kvs.map(([k]) => k);
  }

  get(k: string): string | undefined {
    return (this.db.query("SELECT v FROM kv WHERE k = ?").get(k) as { v: string } | null)?.v;
  }

  keys(): string[] {
    return (this.db.query("SELECT k FROM kv ORDER BY k").all() as { k: string }[]).map((r) => r.k);
  }

  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify(this.db.query("SELECT k, v FROM kv ORDER BY k").all()));
  }

  restore(index: number, data: Uint8Array): void {
    const rows = JSON.parse(dec.decode(data)) as { k: string; v: string }[];
    this.db.transaction(() => {
      this.db.exec("DELETE FROM kv");
      for (const r of rows) this.db.query("INSERT INTO kv (k, v) VALUES (?, ?)").run(r.k, r.v);
      this.db.query("INSERT OR REPLACE INTO meta (id, applied) VALUES (1, ?)").run(index);
    })();
    this.applied = index;
  }

  close(): void {
    this.db.close();
  }
}
