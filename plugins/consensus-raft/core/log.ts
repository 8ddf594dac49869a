/**
 * The in-memory Raft log: a snapshot boundary, the entries after it, and
 * bookkeeping of what the driver has persisted (stable) and applied.
 */
import { assert } from "./assert.ts";
import type { Entry, Snapshot, SnapshotMeta } from "./types.ts";

export class RaftLog {
  /** Entries after `snap.index`, contiguous. */
  private entries: Entry[];
  private snap: SnapshotMeta;
  committed: number;
  applied: number;
  /** First index not yet handed to the driver for persistence. */
  private unstableFrom: number;
  /** A snapshot received from the leader that the driver has not persisted yet. */
  pendingSnapshot: Snapshot | undefined;

  constructor(snap: SnapshotMeta, entries: readonly Entry[], committed: number) {
    this.snap = snap;
    this.entries = [...entries];
    entries.forEach((e, i) => {
      assert(e.index === snap.index + 1 + i, () => `storage entries not contiguous at ${e.index}`);
      assert(i === 0 ? e.term >= snap.term : e.term >= (entries[i - 1] as Entry).term, "storage entry terms decrease");
    });
    this.unstableFrom = this.lastIndex() + 1;
    assert(committed >= snap.index && committed <= this.lastIndex(), () => `commit ${committed} outside [${snap.index}, ${this.lastIndex()}]`);
    this.committed = committed;
    this.applied = snap.index;
  }

  snapshotMeta(): SnapshotMeta {
    return this.snap;
  }

  firstIndex(): number {
    return this.snap.index + 1;
  }

  lastIndex(): number {
    return this.snap.index + this.entries.length;
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) as number;
  }

  /** Term of the entry at i, or undefined when i is compacted away or beyond the log. */
  term(i: number): number | undefined {
    if (i === this.snap.index) return this.snap.term;
    if (i < this.snap.index || i > this.lastIndex()) return undefined;
    return (this.entries[i - this.snap.index - 1] as Entry).term;
  }

  entry(i: number): Entry | undefined {
    if (i <= this.snap.index || i > this.lastIndex()) return undefined;
    return this.entries[i - this.snap.index - 1];
  }

  matchTerm(i: number, term: number): boolean {
    return this.term(i) === term;
  }

  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Entries in [lo, hi), limited to `maxCount` entries and `maxBytes` of payload (at least one entry). */
  slice(lo: number, hi: number, maxCount = Infinity, maxBytes = Infinity): Entry[] {
    assert(lo > this.snap.index && hi <= this.lastIndex() + 1, () => `slice [${lo}, ${hi}) outside log`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi && out.length < maxCount; i++) {
      const e = this.entries[i - this.snap.index - 1] as Entry;
      bytes += e.data.byteLength;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** Appends entries, replacing any existing suffix from the first new index. Committed entries never change. */
  append(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const first = (ents[0] as Entry).index;
    assert(first > this.committed, () => `append at ${first} would overwrite committed entry (commit ${this.committed})`);
    assert(first <= this.lastIndex() + 1, () => `append at ${first} leaves a gap after ${this.lastIndex()}`);
    this.entries.length = first - this.snap.index - 1;
    for (const e of ents) {
      assert(e.index === this.lastIndex() + 1, "appended entries not contiguous");
      this.entries.push(e);
    }
    this.unstableFrom = Math.min(this.unstableFrom, first);
  }

  /**
   * The follower side of AppendEntries: when the log has (prevIndex, prevTerm),
   * append `ents` (skipping those already present, truncating at the first
   * conflict), advance commit, and return the last index now known to match.
   */
  maybeAppend(prevIndex: number, prevTerm: number, commit: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + ents.length;
    let k = 0;
    while (k < ents.length && this.matchTerm((ents[k] as Entry).index, (ents[k] as Entry).term)) k++;
    if (k < ents.length) this.append(ents.slice(k));
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /** Largest index <= index whose term is <= term (etcd's findConflictByTerm), with that term. */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (;;) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
      i--;
    }
  }

  commitTo(i: number): void {
    if (i <= this.committed) return;
    assert(i <= this.lastIndex(), () => `commit ${i} beyond last index ${this.lastIndex()}`);
    this.committed = i;
  }

  /** Leader rule: only entries of the current term are committed by counting replicas. */
  maybeCommit(i: number, term: number): boolean {
    if (i > this.committed && this.term(i) === term) {
      this.commitTo(i);
      return true;
    }
    return false;
  }

  /** Last index the driver has persisted (what a leader may count as its own acknowledgement). */
  stableLastIndex(): number {
    return Math.min(this.lastIndex(), this.unstableFrom - 1);
  }

  unstableEntries(): Entry[] {
    if (this.unstableFrom > this.lastIndex()) return [];
    return this.entries.slice(this.unstableFrom - this.snap.index - 1);
  }

  /** The driver persisted entries up to (index, term); ignored if the log changed there since. */
  stableTo(index: number, term: number): void {
    if (this.term(index) === term && index >= this.unstableFrom) this.unstableFrom = index + 1;
  }

  /** Committed entries not yet handed out for applying, starting after `from`. */
  committedAfter(from: number): Entry[] {
    const lo = Math.max(from, this.snap.index) + 1;
    if (lo > this.committed) return [];
    return this.slice(lo, this.committed + 1);
  }

  /** Replaces the whole log with a snapshot from the leader. */
  restore(s: Snapshot): void {
    assert(s.meta.index > this.committed, "restore of a snapshot that is not ahead of commit");
    this.snap = s.meta;
    this.entries = [];
    this.committed = s.meta.index;
    this.unstableFrom = s.meta.index + 1;
    this.pendingSnapshot = s;
  }

  /** Drops entries up to `meta.index`, which the application has captured in a snapshot. */
  compact(meta: SnapshotMeta): void {
    assert(meta.index <= this.applied, () => `compact to ${meta.index} beyond applied ${this.applied}`);
    assert(meta.index < this.unstableFrom, "compact over entries not yet persisted");
    assert(this.term(meta.index) === meta.term, "compact meta term does not match the log");
    this.entries = this.entries.slice(meta.index - this.snap.index);
    this.snap = meta;
  }
}
