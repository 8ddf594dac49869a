/**
 * Member liveness as optimistic state: each hub records the heartbeats it
 * receives in an LWW map keyed by cluster id (value: when and where the
 * member was last seen, stamped with the receiving hub's HLC). Hubs on both
 * sides of a partition keep recording; on heal, merging their maps keeps the
 * most recent sighting of every member, identically on every hub.
 */
import { HybridClock, type Hlc } from "./hlc.ts";
import { LwwMap, type LwwEntry } from "./lww-map.ts";

export interface LastSeen {
  at: number;
  hub: string;
  multiaddrs: string[];
}

export class LastSeenMap {
  readonly map = new LwwMap<LastSeen>();
  constructor(private readonly hlc: HybridClock) {}

  heartbeat(clusterId: string, seen: LastSeen): void {
    this.map.set(clusterId, seen, this.hlc.now());
  }

  get(clusterId: string): LastSeen | undefined {
    return this.map.get(clusterId);
  }

  /** Merge a peer hub's state (gossip or heal); the remote clock is folded into ours. */
  mergeFrom(rows: [string, LwwEntry<LastSeen>][]): void {
    let newest: Hlc | undefined;
    for (const [k, e] of rows) {
      this.map.put(k, e);
      if (!newest || e.ts.wall > newest.wall) newest = e.ts;
    }
    if (newest) this.hlc.receive(newest);
  }
}
