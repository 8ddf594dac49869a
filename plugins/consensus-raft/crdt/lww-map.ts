/**
 * A last-writer-wins map (state-based CRDT): each key holds the value with
 * the greatest HLC timestamp; deletes are timestamped tombstones, so a
 * delete and a concurrent write resolve the same way on every replica.
 * merge is commutative, associative and idempotent (see crdt.test.ts).
 */
import { compareHlc, type Hlc } from "./hlc.ts";

export interface LwwEntry<V> {
  readonly ts: Hlc;
  /** undefined: deleted at ts (tombstone). */
  readonly value: V | undefined;
}

export class LwwMap<V> {
  private readonly entries = new Map<string, LwwEntry<V>>();

  set(key: string, value: V, ts: Hlc): boolean {
    return this.put(key, { ts, value });
  }

  delete(key: string, ts: Hlc): boolean {
    return this.put(key, { ts, value: undefined });
  }

  get(key: string): V | undefined {
    return this.entries.get(key)?.value;
  }

  /** Live keys, sorted. */
  keys(): string[] {
    return [...this.entries].filter(([, e]) => e.value !== undefined).map(([k]) => k).sort();
  }

  /** Applies one entry; true when it won (changed the map). */
  put(key: string, e: LwwEntry<V>): boolean {
    const cur = this.entries.get(key);
    if (cur && compareHlc(cur.ts, e.ts) >= 0) return false;
    this.entries.set(key, e);
    return true;
  }

  merge(other: LwwMap<V>): this {
    for (const [k, e] of other.entries) this.put(k, e);
    return this;
  }

  /** Entries changed after `since` (for delta sync on reconnect). */
  delta(since: Hlc): [string, LwwEntry<V>][] {
    return [...this.entries].filter(([, e]) => compareHlc(e.ts, since) > 0);
  }

  /** Canonical state: sorted entries including tombstones. Equal states ⇔ equal JSON. */
  toJSON(): [string, LwwEntry<V>][] {
    return [...this.entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  static fromJSON<V>(rows: [string, LwwEntry<V>][]): LwwMap<V> {
    const m = new LwwMap<V>();
    for (const [k, e] of rows) m.put(k, e);
    return m;
  }

  clone(): LwwMap<V> {
    return LwwMap.fromJSON(this.toJSON());
  }
}
