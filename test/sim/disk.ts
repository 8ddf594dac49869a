/**
 * A simulated disk for one node: durable state plus at most one unsynced
 * write (a Ready's persistence). A crash loses the unsynced write entirely.
 */
import { assert } from "../../plugins/consensus-raft/core/assert.ts";
import type { Entry, HardState, Ready, Snapshot, Storage } from "../../plugins/consensus-raft/core/types.ts";

interface Write {
  hardState?: HardState;
  snapshot?: Snapshot;
  entries: readonly Entry[];
}

export class Disk {
  hardState: HardState;
  snapshot: Snapshot | undefined;
  entries: Entry[];
  private unsynced: Write | undefined;

  constructor(initial: Storage) {
    this.hardState = initial.hardState;
    this.snapshot = initial.snapshot;
    this.entries = [...initial.entries];
  }

  write(rd: Ready): void {
    assert(this.unsynced === undefined, "write while a previous write is unsynced");
    this.unsynced = {
      ...(rd.hardState ? { hardState: rd.hardState } : {}),
      ...(rd.snapshot ? { snapshot: rd.snapshot } : {}),
      entries: rd.entries,
    };
  }

  sync(): void {
    const w = this.unsynced;
    if (!w) return;
    this.unsynced = undefined;
    if (w.snapshot) {
      this.snapshot = w.snapshot;
      this.entries = [];
    }
    if (w.entries.length > 0) {
      const first = (w.entries[0] as Entry).index;
      const base = this.snapshot?.meta.index ?? 0;
      assert(first > base, `disk: append at ${first} inside snapshot ${base}`);
      assert(first <= base + this.entries.length + 1, `disk: append at ${first} leaves a gap after ${base + this.entries.length}`);
      this.entries.length = first - base - 1;
      this.entries.push(...w.entries);
    }
    if (w.hardState) this.hardState = w.hardState;
  }

  /** A local compaction: the snapshot file and log truncation are written atomically. */
  compact(s: Snapshot): void {
    assert(this.unsynced === undefined, "compact while a write is unsynced");
    const base = this.snapshot?.meta.index ?? 0;
    this.entries = this.entries.slice(s.meta.index - base);
    this.snapshot = s;
  }

  crash(): void {
    this.unsynced = undefined;
  }

  /** Term of the durable entry at i (snapshot boundary included). */
  term(i: number): number | undefined {
    const base = this.snapshot?.meta.index ?? 0;
    if (i === base) return this.snapshot?.meta.term ?? 0;
    return this.entries[i - base - 1]?.term;
  }

  storage(): Storage {
    return { hardState: this.hardState, ...(this.snapshot ? { snapshot: this.snapshot } : {}), entries: this.entries };
  }
}
