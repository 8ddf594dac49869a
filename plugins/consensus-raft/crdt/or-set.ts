/**
 * An observed-remove set (state-based CRDT): every add carries a unique tag
 * (the HLC of the add), a remove tombstones the tags it observed, so an add
 * concurrent with a remove survives (add wins). merge = union of adds and
 * tombstones: commutative, associative, idempotent.
 */
import type { Hlc } from "./hlc.ts";

const tagOf = (ts: Hlc) => `${ts.wall}.${ts.logical}.${ts.node}`;

export class OrSet {
  private readonly adds = new Map<string, Set<string>>();
  private readonly tombs = new Set<string>();

  add(element: string, ts: Hlc): void {
    let tags = this.adds.get(element);
    if (!tags) this.adds.set(element, (tags = new Set()));
    tags.add(tagOf(ts));
  }

  /** Removes the element as observed here (concurrent adds elsewhere survive). */
  remove(element: string): void {
    for (const t of this.adds.get(element) ?? []) this.tombs.add(t);
  }

  has(element: string): boolean {
    for (const t of this.adds.get(element) ?? []) if (!this.tombs.has(t)) return true;
    return false;
  }

  values(): string[] {
    return [...this.adds.keys()].filter((e) => this.has(e)).sort();
  }

  merge(other: OrSet): this {
    for (const [e, tags] of other.adds) for (const t of tags) {
      let mine = this.adds.get(e);
      if (!mine) this.adds.set(e, (mine = new Set()));
      mine.add(t);
    }
    for (const t of other.tombs) this.tombs.add(t);
    return this;
  }

  toJSON(): { adds: [string, string[]][]; tombs: string[] } {
    return {
      adds: [...this.adds].map(([e, t]) => [e, [...t].sort()] as [string, string[]]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      tombs: [...this.tombs].sort(),
    };
  }

  clone(): OrSet {
    const s = new OrSet();
    return s.merge(this);
  }
}
