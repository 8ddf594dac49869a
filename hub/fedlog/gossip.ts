/**
 * Heartbeat gossip between the hubs of the consensus group: optimistic state
 * (a LastSeenMap CRDT stamped with hybrid logical clocks), not the Raft log.
 * Each hub records the heartbeats its own members send; every round it puts
 * the newer ones into its map and sends every other hub what that hub has not
 * acknowledged yet. A hub that receives rows merges them and records newer
 * sightings in its registry, so GET /v1/clusters on any hub shows a member
 * healthy while it heartbeats to another hub. Both sides of a partition keep
 * recording; a failed exchange resets that peer to a full resend, so the maps
 * merge on heal (same result in any order: LWW per cluster id).
 */
import type { Connection } from "@libp2p/interface";
import { multiaddr } from "@multiformats/multiaddr";
import { z } from "zod";
import { type Channel, request, serve } from "../../plugins/mesh-libp2p/rpc.ts";
import { UnauthorizedError } from "../../plugins/sdk/errors.ts";
import { multiaddrsPerPeerMax } from "../../plugins/sdk/limits.ts";
import type { Clock, Logger } from "../../plugins/sdk/plugin.ts";
import { ClockSkewError, HybridClock, compareHlc, hlcZero, type Hlc } from "../../plugins/consensus-raft/crdt/hlc.ts";
import { LastSeenMap, type LastSeen } from "../../plugins/consensus-raft/crdt/last-seen.ts";
import type { LwwEntry } from "../../plugins/consensus-raft/crdt/lww-map.ts";
import type { RaftPeer } from "../../plugins/consensus-raft/driver/libp2p-transport.ts";
import type { Registry } from "../registry/index.ts";

export const PROTOCOL_GOSSIP = "/grey/fedlog-gossip/1.0.0";
/** Rows per wire message (keeps each far below wireMessageBytesMax). */
export const gossipRowsPerMessageMax = 100;
/** Rows sent to one hub per round; the rest follow next round (oldest first). */
export const gossipRowsPerRoundMax = 5_000;
/** Longest gossip round between two hubs. Longer: the exchange fails, that hub gets a full resend next round. */
export const gossipExchangeTimeoutMs = 5_000;

export type GossipRow = [string, LwwEntry<LastSeen>];

const hlc = z.object({ wall: z.number().int().min(0), logical: z.number().int().min(0), node: z.string().max(128) });
const RowSchema = z.tuple([
  z.string().min(1).max(64),
  z.object({ ts: hlc, value: z.object({ at: z.number().int().min(0), hub: z.string().max(128), multiaddrs: z.array(z.string().max(256)).max(multiaddrsPerPeerMax) }) }),
]);
const Rows = z.object({ v: z.literal(1), type: z.literal("gossip-rows"), rows: z.array(RowSchema).max(gossipRowsPerMessageMax), last: z.boolean() });
const Ack = z.object({ v: z.literal(1), type: z.literal("gossip-ack"), recorded: z.number().int().min(0) });

/** The CRDT side, without I/O (tests drive two of them). */
export class HeartbeatGossip {
  readonly seen: LastSeenMap;
  /** Per peer hub: newest timestamp it acknowledged. Absent: send everything. */
  private readonly acked = new Map<string, Hlc>();

  constructor(private readonly self: string, private readonly registry: Registry, clock: Clock, private readonly logger: Logger) {
    this.seen = new LastSeenMap(new HybridClock(self, clock));
  }

  /** Heartbeats this hub received since the last round enter the map, stamped by our clock. */
  collect(): void {
    let after: string | undefined;
    for (;;) {
      const page = this.registry.list({ limit: 1000, ...(after ? { after } : {}) });
      for (const m of page.items) {
        const at = m.lastHeartbeat?.getTime();
        if (at === undefined || m.revoked) continue;
        const cur = this.seen.get(m.clusterId);
        if (!cur || cur.at < at) this.seen.heartbeat(m.clusterId, { at, hub: this.self, multiaddrs: m.multiaddrs });
      }
      if (!page.next) return;
      after = page.next;
    }
  }

  /** What `peer` (its HLC node name: its peer id) has not acknowledged and did not stamp itself, oldest first (at most gossipRowsPerRoundMax). */
  deltaFor(peer: string): GossipRow[] {
    const rows = (this.seen.map.delta(this.acked.get(peer) ?? hlcZero) as GossipRow[]).filter(([, e]) => e.ts.node !== peer);
    return rows.sort((a, b) => compareHlc(a[1].ts, b[1].ts)).slice(0, gossipRowsPerRoundMax);
  }

  ack(peer: string, rows: readonly GossipRow[]): void {
    const last = rows[rows.length - 1];
    if (last) this.acked.set(peer, last[1].ts);
  }

  /** The exchange failed: resend everything next time (how maps converge after a partition). */
  forget(peer: string): void {
    this.acked.delete(peer);
  }

  /** Merge a peer hub's rows; sightings newer than our registry's are recorded there. Returns how many. */
  receive(rows: readonly GossipRow[]): number {
    try {
      this.seen.mergeFrom([...rows]);
    } catch (err) {
      if (!(err instanceof ClockSkewError)) throw err;
      // the rows are merged; only our clock refused to jump that far ahead
      this.logger.warn("heartbeat gossip from a hub with a skewed clock", { error: err.message });
    }
    let recorded = 0;
    for (const [clusterId] of rows) {
      const s = this.seen.get(clusterId);
      const m = this.registry.getByCluster(clusterId);
      if (!s || !m || m.revoked || (m.lastHeartbeat?.getTime() ?? 0) >= s.at) continue;
      try {
        this.registry.recordHeartbeat(m.peerId, s.multiaddrs, new Date(s.at));
        recorded++;
      } catch (err) {
        this.logger.debug("gossiped heartbeat not recorded", { clusterId, error: (err as Error).message });
      }
    }
    return recorded;
  }
}

type Node = { dialProtocol: Function; handle: Function; unhandle(protocol: string): Promise<void> };

/** The I/O side: one exchange per peer hub per round over /grey/fedlog-gossip/1.0.0. */
export class GossipService {
  readonly gossip: HeartbeatGossip;
  private timer: ReturnType<typeof setInterval> | undefined;
  private running = false;

  constructor(
    private readonly init: { self: string; peers: () => Iterable<RaftPeer>; everyMs: number },
    private readonly deps: { node: Node; registry: Registry; clock: Clock; logger: Logger },
  ) {
    this.gossip = new HeartbeatGossip(init.self, deps.registry, deps.clock, deps.logger);
  }

  async start(): Promise<void> {
    await this.deps.node.handle(PROTOCOL_GOSSIP, serve(PROTOCOL_GOSSIP, (ch, conn) => this.serveRows(ch, conn)), { maxInboundStreams: 16 });
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = true;
      void this.round().finally(() => (this.running = false));
    }, this.init.everyMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.deps.node.unhandle(PROTOCOL_GOSSIP).catch(() => {});
  }

  async round(): Promise<void> {
    this.gossip.collect();
    await Promise.all([...this.init.peers()].map(async (p) => {
      const rows = this.gossip.deltaFor(p.peerId);
      if (rows.length === 0) return;
      try {
        const target = p.multiaddrs.length ? p.multiaddrs.map((a) => multiaddr(a)) : p.peerId;
        await request(this.deps.node as never, target, PROTOCOL_GOSSIP, async (ch) => {
          for (let i = 0; i < rows.length; i += gossipRowsPerMessageMax) {
            await ch.send({ type: "gossip-rows", rows: rows.slice(i, i + gossipRowsPerMessageMax), last: i + gossipRowsPerMessageMax >= rows.length });
          }
          return ch.receive(Ack);
        }, gossipExchangeTimeoutMs);
        this.gossip.ack(p.peerId, rows);
      } catch (err) {
        this.gossip.forget(p.peerId);
        this.deps.logger.debug("heartbeat gossip failed", { peer: p.peerId, error: (err as Error).message });
      }
    }));
  }

  private async serveRows(ch: Channel, conn: Connection): Promise<void> {
    const remote = conn.remotePeer.toString();
    if (![...this.init.peers()].some((p) => p.peerId === remote)) throw new UnauthorizedError("not a hub of this consensus group");
    let recorded = 0;
    for (;;) {
      const m = await ch.receive(Rows);
      recorded += this.gossip.receive(m.rows as GossipRow[]);
      if (m.last) break;
    }
    await ch.send({ type: "gossip-ack", recorded });
  }
}
