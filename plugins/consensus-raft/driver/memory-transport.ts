/**
 * An in-memory network for tests, benches and single-process groups.
 * Messages are copied through a structured clone (no shared objects between
 * nodes, as on a real wire) and delivered after `delayMs(from, to)` on the
 * event loop; links can be cut in either direction.
 */
import type { Message, NodeId } from "../core/index.ts";
import type { RaftTransport } from "./transport.ts";

export class MemoryNetwork {
  private readonly nodes = new Map<NodeId, (raw: unknown, from: NodeId) => void>();
  /** Directed links that drop every message: "from->to". */
  readonly cut = new Set<string>();
  /** One-way delay of a link (ms); 0 delivers on the next macrotask. */
  delayMs: (from: NodeId, to: NodeId) => number = () => 0;
  delivered = 0;

  transport(id: NodeId): RaftTransport {
    const net = this;
    let receive: ((raw: unknown, from: NodeId) => void) | undefined;
    return {
      send(m) {
        net.deliver(m);
      },
      listen(fn) {
        receive = fn;
      },
      async start() {
        net.nodes.set(id, (raw, from) => receive?.(raw, from));
      },
      async stop() {
        net.nodes.delete(id);
      },
    };
  }

  /** Cut (or heal, with `on = false`) both directions between a and b. */
  partition(a: NodeId, b: NodeId, on = true): void {
    for (const k of [`${a}->${b}`, `${b}->${a}`]) on ? this.cut.add(k) : this.cut.delete(k);
  }

  isolate(id: NodeId, on = true): void {
    for (const other of this.nodes.keys()) if (other !== id) this.partition(id, other, on);
  }

  private deliver(m: Message): void {
    if (this.cut.has(`${m.from}->${m.to}`)) return;
    const copy = structuredClone({ v: 1, ...m });
    const d = this.delayMs(m.from, m.to);
    const go = () => {
      if (this.cut.has(`${m.from}->${m.to}`)) return;
      const to = this.nodes.get(m.to);
      if (!to) return;
      this.delivered++;
      to(copy, m.from);
    };
    if (d > 0) setTimeout(go, d);
    else setImmediate(go);
  }
}
