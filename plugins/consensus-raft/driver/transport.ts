/**
 * How a driver reaches its peers. A transport delivers best-effort (Raft
 * tolerates loss, duplication and reordering), never blocks the caller, and
 * hands every inbound message to the driver as `unknown`: the driver
 * validates it before the core sees it.
 */
import type { Message, NodeId } from "../core/index.ts";
import { peerOutboundMessagesMax } from "./constants.ts";

export interface RaftTransport {
  /** Queue `m` for `m.to`; returns at once. Unknown peers: dropped. */
  send(m: Message): void;
  /** Register the receiver of inbound messages (one per transport). */
  listen(receive: (raw: unknown, fromHint: NodeId | undefined) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A bounded per-peer queue. Full: the oldest heartbeat (or heartbeat
 * response) is dropped first, as the next one supersedes it; when there is
 * none, the oldest message. Returns what was dropped, for counting.
 */
export class OutboundQueue<T extends { type: string }> {
  private items: T[] = [];
  dropped = 0;
  constructor(readonly limit: number = peerOutboundMessagesMax) {}

  push(m: T): T | undefined {
    let dropped: T | undefined;
    if (this.items.length >= this.limit) {
      const hb = this.items.findIndex((x) => x.type === "heartbeat" || x.type === "heartbeatResp");
      dropped = this.items.splice(hb >= 0 ? hb : 0, 1)[0];
      this.dropped++;
    }
    this.items.push(m);
    return dropped;
  }

  /** Takes everything queued, oldest first. */
  drain(): T[] {
    const out = this.items;
    this.items = [];
    return out;
  }

  get length(): number {
    return this.items.length;
  }
}
