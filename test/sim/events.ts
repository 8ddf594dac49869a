/** A deterministic event queue: events fire in (time, insertion order). */
export interface SimEvent {
  at: number;
  seq: number;
  run: () => void;
}

export class EventQueue {
  private heap: SimEvent[] = [];
  private seq = 0;
  now = 0;

  get size(): number {
    return this.heap.length;
  }

  schedule(delayMs: number, run: () => void): void {
    const e: SimEvent = { at: this.now + Math.max(0, delayMs), seq: this.seq++, run };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, h[p] as SimEvent)) break;
      h[i] = h[p] as SimEvent;
      i = p;
    }
    h[i] = e;
  }

  /** Runs the next event; returns false when none is left or the next is after `untilMs`. */
  runNext(untilMs: number): boolean {
    const h = this.heap;
    const top = h[0];
    if (!top || top.at > untilMs) return false;
    const last = h.pop() as SimEvent;
    const n = h.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = -1;
        let best = last;
        if (l < n && before(h[l] as SimEvent, best)) {
          m = l;
          best = h[l] as SimEvent;
        }
        if (r < n && before(h[r] as SimEvent, best)) {
          m = r;
          best = h[r] as SimEvent;
        }
        if (m < 0) break;
        h[i] = best;
        i = m;
      }
      h[i] = last;
    }
    this.now = top.at;
    top.run();
    return true;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
