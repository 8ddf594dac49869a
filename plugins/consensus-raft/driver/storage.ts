/**
 * Durable Raft storage in bun:sqlite: hard state, log entries and the latest
 * snapshot. One Ready is written in ONE transaction with synchronous=FULL
 * (WAL: the commit fsyncs the log file), and `save` returns only once the
 * transaction is durable, so the driver may then send and acknowledge.
 */
import { Database } from "bun:sqlite";
import type { ConfState, Entry, HardState, Snapshot, Storage } from "../core/index.ts";
import { ConfigError } from "../../sdk/errors.ts";

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS hard_state (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  term   INTEGER NOT NULL,
  vote   INTEGER NOT NULL,
  commit_index INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS entries (
  idx  INTEGER PRIMARY KEY,
  term INTEGER NOT NULL,
  conf INTEGER NOT NULL,
  data BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS snapshot (
  id    INTEGER PRIMARY KEY CHECK (id = 1),
  idx   INTEGER NOT NULL,
  term  INTEGER NOT NULL,
  conf  TEXT NOT NULL,
  data  BLOB NOT NULL
) STRICT;
`;

export interface ReadyWrite {
  hardState?: HardState;
  snapshot?: Snapshot;
  entries: readonly Entry[];
}

type EntryRow = { idx: number; term: number; conf: number; data: Uint8Array };

export class RaftStorage {
  private constructor(private readonly db: Database, private readonly durable: boolean) {}

  /** Open (creating) the store. `durable: false` (synchronous=OFF) is for tests and benches that say so. */
  static open(path: string, opts: { durable?: boolean } = {}): RaftStorage {
    const db = new Database(path, { create: true, strict: true });
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(`PRAGMA synchronous = ${opts.durable === false ? "OFF" : "FULL"}`);
    db.exec("PRAGMA busy_timeout = 5000");
    const { user_version } = db.query("PRAGMA user_version").get() as { user_version: number };
    if (user_version > SCHEMA_VERSION) {
      db.close();
      throw new ConfigError([`raft store ${path}: schema ${user_version} is newer than this build's ${SCHEMA_VERSION}`]);
    }
    db.transaction(() => {
      db.exec(SCHEMA);
      db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    }).immediate();
    return new RaftStorage(db, opts.durable !== false);
  }

  /** True when nothing was ever persisted (the caller bootstraps or starts empty). */
  isEmpty(): boolean {
    return this.db.query("SELECT 1 FROM hard_state").get() === null;
  }

  /** Exactly what was persisted, in the shape the core restarts from. */
  load(): Storage {
    const hs = this.db.query<{ term: number; vote: number; commit_index: number }, []>("SELECT term, vote, commit_index FROM hard_state").get();
    const snap = this.loadSnapshot();
    const after = snap?.meta.index ?? 0;
    const rows = this.db.query<EntryRow, [number]>("SELECT idx, term, conf, data FROM entries WHERE idx > ? ORDER BY idx").all(after);
    return {
      hardState: hs ? { term: hs.term, vote: hs.vote, commit: hs.commit_index } : { term: 0, vote: 0, commit: 0 },
      ...(snap ? { snapshot: snap } : {}),
      entries: rows.map(toEntry),
    };
  }

  loadSnapshot(): Snapshot | undefined {
    const s = this.db.query<{ idx: number; term: number; conf: string; data: Uint8Array }, []>("SELECT idx, term, conf, data FROM snapshot").get();
    if (!s) return undefined;
    return { meta: { index: s.idx, term: s.term, confState: JSON.parse(s.conf) as ConfState }, data: new Uint8Array(s.data) };
  }

  /**
   * Persist one Ready atomically: snapshot (dropping the log up to it), entries
   * (replacing the log from the first), hard state. `sync: false` (only the
   * commit index moved) commits without waiting for fsync: WAL keeps commit
   * order, so a crash loses at most such unsynced tails, never a synced write.
   */
  save(w: ReadyWrite, sync = true): void {
    if (!w.hardState && !w.snapshot && w.entries.length === 0) return;
    if (sync || !this.durable) {
      this.tx(w);
      return;
    }
    this.db.exec("PRAGMA synchronous = NORMAL");
    try {
      this.tx(w);
    } finally {
      this.db.exec("PRAGMA synchronous = FULL");
    }
  }

  /** Persist a snapshot taken by compaction and drop the entries it covers (later entries stay). */
  saveSnapshot(s: Snapshot): void {
    this.tx({ snapshot: s, entries: [] }, true);
  }

  /** Bootstrap state for a founder: persisted as one Ready so a restart sees the same log. */
  bootstrap(s: Storage): void {
    this.tx({ hardState: s.hardState, entries: s.entries });
  }

  close(): void {
    this.db.close();
  }

  private readonly putSnap = () => this.db.query("INSERT OR REPLACE INTO snapshot (id, idx, term, conf, data) VALUES (1, ?, ?, ?, ?)");
  /** A snapshot from the leader replaces the whole log (as the core does); a compaction keeps what follows it. */
  private readonly tx = (w: ReadyWrite, compaction = false) =>
    this.db
      .transaction((w: ReadyWrite) => {
        if (w.snapshot) {
          const m = w.snapshot.meta;
          this.putSnap().run(m.index, m.term, JSON.stringify(m.confState), w.snapshot.data);
          if (compaction) this.db.query("DELETE FROM entries WHERE idx <= ?").run(m.index);
          else this.db.query("DELETE FROM entries").run();
        }
        const first = w.entries[0];
        if (first) {
          this.db.query("DELETE FROM entries WHERE idx >= ?").run(first.index);
          const ins = this.db.query("INSERT INTO entries (idx, term, conf, data) VALUES (?, ?, ?, ?)");
          for (const e of w.entries) ins.run(e.index, e.term, e.type === "conf" ? 1 : 0, e.data);
        }
        if (w.hardState) {
          const h = w.hardState;
          this.db.query("INSERT OR REPLACE INTO hard_state (id, term, vote, commit_index) VALUES (1, ?, ?, ?)").run(h.term, h.vote, h.commit);
        }
      })
      .immediate(w);
}

function toEntry(r: EntryRow): Entry {
  return { index: r.idx, term: r.term, type: r.conf === 1 ? "conf" : "normal", data: new Uint8Array(r.data) };
}
