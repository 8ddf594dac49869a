/**
 * A positive-negative counter (state-based CRDT): one increment and one
 * decrement total per node; merge takes the per-node maximum. Used for
 * metrics that must keep counting on both sides of a partition.
 */
export class PnCounter {
  private readonly p = new Map<string, number>();
  private readonly n = new Map<string, number>();

  add(node: string, delta: number): void {
    if (!Number.isSafeInteger(delta)) throw new RangeError(`counter delta must be an integer, got ${delta}`);
    const m = delta >= 0 ? this.p : this.n;
    m.set(node, (m.get(node) ?? 0) + Math.abs(delta));
  }

  value(): number {
    let v = 0;
    for (const x of this.p.values()) v += x;
    for (const x of this.n.values()) v -= x;
    return v;
  }

  merge(other: PnCounter): this {
    for (const [k, x] of other.p) this.p.set(k, Math.max(this.p.get(k) ?? 0, x));
    for (const [k, x] of other.n) this.n.set(k, Math.max(this.n.get(k) ?? 0, x));
    return this;
  }

  toJSON(): { p: [string, number][]; n: [string, number][] } {
    const sorted = (m: Map<string, number>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return { p: sorted(this.p), n: sorted(this.n) };
  }

  clone(): PnCounter {
    return new PnCounter().merge(this);
  }
}
