/**
 * A synchronous in-memory cluster for scripted core tests: messages are
 * delivered in order by `drain()`, links can be cut, nodes can crash and
 * restart from what they persisted, and each node keeps a "disk" and the list
 * of entries it applied.
 */
import { assert } from "./assert.ts";
import { bootstrapStorage, emptyStorage } from "./confchange.ts";
import { Xoshiro128 } from "./prng.ts";
import { RaftNode, type RaftInit } from "./raft.ts";
import type { Entry, HardState, Message, NodeId, ReadState, Snapshot } from "./types.ts";

export interface TestNode {
  raft: RaftNode;
  hardState: HardState;
  snapshot: Snapshot | undefined;
  entries: Entry[];
  applied: Entry[];
  readStates: ReadState[];
}

type Options = Partial<Omit<RaftInit, "id" | "storage" | "rng">>;

export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Directed links that drop every message: "from->to". */
  readonly cut = new Set<string>();
  /** Messages for which this returns true are dropped. */
  drop: ((m: Message) => boolean) | undefined;
  /** Every message delivered, for assertions. */
  readonly delivered: Message[] = [];
  /** Crashed nodes: they handle nothing, and messages to them are lost. */
  readonly down = new Set<NodeId>();
  private queue: Message[] = [];
  private restarts = 0;

  constructor(voters: NodeId[], private readonly opts: Options = {}, private readonly seed = 1) {
    const storage = bootstrapStorage(voters);
    for (const id of voters) {
      const raft = new RaftNode({ id, storage, rng: new Xoshiro128(seed * 1000 + id), ...opts });
      this.nodes.set(id, { raft, hardState: storage.hardState, snapshot: undefined, entries: [...storage.entries], applied: [], readStates: [] });
    }
    this.drain();
  }

  /** Starts a node with empty storage (to be added by a conf change). */
  addEmpty(id: NodeId): TestNode {
    const storage = emptyStorage();
    const raft = new RaftNode({ id, storage, rng: new Xoshiro128(id), ...this.opts });
    const n: TestNode = { raft, hardState: storage.hardState, snapshot: undefined, entries: [], applied: [], readStates: [] };
    this.nodes.set(id, n);
    return n;
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    assert(n, `no node ${id}`);
    return n;
  }

  raft(id: NodeId): RaftNode {
    return this.node(id).raft;
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Stops `id` between two drains (every Ready it was handed is already persisted). */
  crash(id: NodeId): void {
    this.node(id);
    this.down.add(id);
  }

  /** Starts `id` again from its persisted hard state, snapshot and entries; its volatile state is gone. */
  restart(id: NodeId): RaftNode {
    const n = this.node(id);
    this.down.delete(id);
    const storage = { hardState: n.hardState, ...(n.snapshot ? { snapshot: n.snapshot } : {}), entries: [...n.entries] };
    n.raft = new RaftNode({ id, storage, rng: new Xoshiro128(this.seed * 1000 + id + 100 * ++this.restarts), ...this.opts });
    this.drain();
    return n.raft;
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()]
      .filter((n) => !this.down.has(n.raft.id) && n.raft.status().role === "leader")
      .map((n) => n.raft.id);
  }

  /** Processes every Ready and delivers messages until the cluster is quiet. */
  drain(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let busy = false;
      for (const n of this.nodes.values()) {
        if (this.down.has(n.raft.id) || !n.raft.hasReady()) continue;
        busy = true;
        const rd = n.raft.ready();
        if (rd.snapshot) {
          n.snapshot = rd.snapshot;
          n.entries = [];
        }
        if (rd.entries.length > 0) {
          const first = (rd.entries[0] as Entry).index;
          n.entries = n.entries.filter((e) => e.index < first).concat(rd.entries);
        }
        if (rd.hardState) n.hardState = rd.hardState;
        this.queue.push(...rd.messages);
        n.applied.push(...rd.committedEntries);
        n.readStates.push(...rd.readStates);
        n.raft.advance();
      }
      const msgs = this.queue;
      this.queue = [];
      for (const m of msgs) {
        busy = true;
        if (this.cut.has(`${m.from}->${m.to}`) || this.down.has(m.to) || this.drop?.(m)) continue;
        const target = this.nodes.get(m.to);
        if (!target) continue;
        this.delivered.push(m);
        target.raft.step(m);
      }
      if (!busy) return;
    }
    throw new Error("cluster did not quiesce");
  }

  tick(ids: NodeId[], times = 1): void {
    for (let t = 0; t < times; t++) {
      for (const id of ids) if (!this.down.has(id)) this.raft(id).tick();
      this.drain();
    }
  }

  tickAll(times = 1): void {
    this.tick([...this.nodes.keys()], times);
  }

  /** Normal (non-empty, non-conf) entries a node applied, decoded as text. */
  appliedText(id: NodeId): string[] {
    return this.node(id)
      .applied.filter((e) => e.type === "normal" && e.data.byteLength > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
