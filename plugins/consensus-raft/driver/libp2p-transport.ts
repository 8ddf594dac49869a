/**
 * Raft over libp2p: one long-lived outbound stream per peer on
 * /grey/raft/1.0.0 carrying length-prefixed CBOR frames, one way (replies
 * travel on the peer's own outbound stream). Each peer has a bounded
 * outbound queue (peerOutboundMessagesMax; full: the oldest heartbeat goes
 * first). Inbound streams are accepted only from configured peers, and
 * the sender's Raft id is the one derived from its authenticated libp2p
 * peer id, so a member cannot speak for another. Several groups share one
 * node: frames carry the group id and the node's RaftEndpoint (raft-endpoint.ts)
 * hands each to its group's transport. Frames are size-checked by the
 * framing, CBOR-decoded by the endpoint and schema-validated by the driver.
 */
import type { Connection, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { lpStream, type LengthPrefixedStream } from "@libp2p/utils";
import { multiaddr } from "@multiformats/multiaddr";
import type { Logger } from "../../sdk/plugin.ts";
import type { Message, NodeId } from "../core/index.ts";
import { peerDialTimeoutMs, peerOutboundMessagesMax, peerRedialBackoffMs, raftFrameBytesMax } from "./constants.ts";
import { OutboundQueue, type RaftTransport } from "./transport.ts";
import { DEFAULT_RAFT_GROUP, PROTOCOL_RAFT, encodeRaftMessage } from "./wire.ts";
import { raftEndpoint } from "./raft-endpoint.ts";

export interface RaftPeer {
  peerId: string;
  /** Where to dial it (optional when the peer is already connected or findable). */
  multiaddrs: readonly string[];
}

/** The subset of a libp2p node the transport uses. */
export interface Libp2pLike {
  handle(protocol: string, handler: (stream: Stream, connection: Connection) => void | Promise<void>, opts?: { maxInboundStreams?: number }): Promise<void>;
  unhandle(protocol: string): Promise<void>;
  dialProtocol(target: never, protocol: string, opts: { signal: AbortSignal }): Promise<Stream>;
}

export interface Libp2pTransportInit {
  node: Libp2pLike;
  peers: ReadonlyMap<NodeId, RaftPeer>;
  logger: Logger;
  queueMessagesMax?: number;
  /** The Raft group this transport carries (frames name it). Default: the flat federation log's group. */
  group?: string;
  /** Every refused inbound frame or stream (metrics). */
  onRejected?: (err: unknown, peer: string) => void;
}

interface Outbound {
  id: NodeId;
  peer: RaftPeer;
  queue: OutboundQueue<Message>;
  stream?: Stream;
  lp?: LengthPrefixedStream<Stream>;
  pumping: boolean;
  retryAt: number;
  retryTimer?: ReturnType<typeof setTimeout>;
}

export class Libp2pTransport implements RaftTransport {
  private receive: ((raw: unknown, from: NodeId) => void) | undefined;
  private readonly out = new Map<NodeId, Outbound>();
  private readonly byPeer = new Map<string, NodeId>();
  private stopped = false;
  readonly group: string;
  readonly stats = { sent: 0, received: 0, rejected: 0, dropped: 0, dialFailures: 0 };

  constructor(private readonly init: Libp2pTransportInit) {
    this.group = init.group ?? DEFAULT_RAFT_GROUP;
    for (const [id, peer] of init.peers) this.addPeer(id, peer);
  }

  /** A member added to the group (or its new addresses): messages to it are sent, streams from it accepted. */
  addPeer(id: NodeId, peer: RaftPeer): void {
    const o = this.out.get(id);
    if (o && o.peer.peerId === peer.peerId) {
      o.peer = { peerId: peer.peerId, multiaddrs: [...new Set([...peer.multiaddrs, ...o.peer.multiaddrs])] };
      return;
    }
    if (o) this.removePeer(id);
    this.byPeer.set(peer.peerId, id);
    this.out.set(id, { id, peer, queue: new OutboundQueue(this.init.queueMessagesMax ?? peerOutboundMessagesMax), pumping: false, retryAt: 0 });
  }

  /** A member removed from the group: nothing more is sent to it or accepted from it. */
  removePeer(id: NodeId): void {
    const o = this.out.get(id);
    if (!o) return;
    this.out.delete(id);
    this.byPeer.delete(o.peer.peerId);
    if (o.retryTimer) clearTimeout(o.retryTimer);
    o.stream?.abort(new Error("peer removed from the group"));
  }

  listen(receive: (raw: unknown, from: NodeId) => void): void {
    this.receive = receive;
  }

  /** Joins the node's shared raft endpoint (one protocol handler for every group of the node). */
  async start(): Promise<void> {
    this.stopped = false;
    await raftEndpoint(this.init.node).register({
      group: this.group,
      memberOf: (remote) => this.byPeer.get(remote),
      deliver: (raw, from) => {
        if (this.stopped) return;
        this.stats.received++;
        this.receive?.(raw, from);
      },
      rejected: (err, remote) => this.reject(err, remote),
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await raftEndpoint(this.init.node).unregister(this.group);
    for (const o of this.out.values()) {
      if (o.retryTimer) clearTimeout(o.retryTimer);
      o.stream?.abort(new Error("transport stopped"));
    }
  }

  send(m: Message): void {
    const o = this.out.get(m.to);
    if (!o || this.stopped) return;
    if (o.queue.push(m)) this.stats.dropped++;
    void this.pump(o);
  }

  private async pump(o: Outbound): Promise<void> {
    if (o.pumping || this.stopped) return;
    o.pumping = true;
    try {
      while (o.queue.length > 0 && !this.stopped) {
        if (!o.lp) {
          const wait = o.retryAt - Date.now();
          if (wait > 0) {
            o.retryTimer ??= setTimeout(() => {
              o.retryTimer = undefined;
              void this.pump(o);
            }, wait);
            return;
          }
          await this.dial(o);
        }
        const frames: Uint8Array[] = [];
        for (const m of o.queue.drain()) {
          const f = encodeRaftMessage(m, this.group);
          if (f.byteLength > raftFrameBytesMax) {
            this.init.logger.warn("raft frame too large: dropped", { type: m.type, bytes: f.byteLength, limit: raftFrameBytesMax });
            continue;
          }
          frames.push(f);
        }
        await o.lp!.writeV(frames, { signal: AbortSignal.timeout(peerDialTimeoutMs) });
        this.stats.sent += frames.length;
      }
    } catch (err) {
      this.stats.dialFailures++;
      this.init.logger.debug("raft peer unreachable", { peer: o.peer.peerId, error: (err as Error).message });
      o.stream?.abort(err instanceof Error ? err : new Error(String(err)));
      o.stream = undefined;
      o.lp = undefined;
      o.retryAt = Date.now() + peerRedialBackoffMs;
    } finally {
      o.pumping = false;
    }
    if (o.queue.length > 0 && !this.stopped && !o.retryTimer) {
      o.retryTimer = setTimeout(() => {
        o.retryTimer = undefined;
        void this.pump(o);
      }, Math.max(0, o.retryAt - Date.now()));
    }
  }

  private async dial(o: Outbound): Promise<void> {
    const signal = AbortSignal.timeout(peerDialTimeoutMs);
    const target = o.peer.multiaddrs.length > 0
      ? o.peer.multiaddrs.map((a) => multiaddr(a.includes("/p2p/") ? a : `${a}/p2p/${o.peer.peerId}`))
      : peerIdFromString(o.peer.peerId);
    const stream = await this.init.node.dialProtocol(target as never, PROTOCOL_RAFT, { signal });
    o.stream = stream;
    o.lp = lpStream(stream, { maxDataLength: raftFrameBytesMax });
  }

  private reject(err: unknown, peer: string): void {
    this.stats.rejected++;
    this.init.onRejected?.(err, peer);
    this.init.logger.debug("raft frame rejected", { peer, error: (err as Error).message });
  }
}
