/**
 * One /grey/raft/1.0.0 handler per libp2p node, shared by every Raft group
 * the node runs. Inbound frames are CBOR-decoded here and handed to the
 * transport of the group they name (`group`; absent: the default group).
 * A frame for a group this node does not run is refused (UnknownGroupError)
 * and counted; a sender that is not a member of the named group is refused
 * (UnauthorizedError) and its stream closed. A stream from a peer that is a
 * member of no group is closed at once.
 *
 * Refusals that cannot be pinned on one group (bad framing, not CBOR, an
 * unknown group, a stranger) are counted on every group of the node.
 */
import type { Connection, Stream } from "@libp2p/interface";
import { lpStream } from "@libp2p/utils";
import { decodeCbor } from "../../sdk/codec.ts";
import { MalformedInputError, MessageTooLargeError, UnauthorizedError } from "../../sdk/errors.ts";
import type { NodeId } from "../core/index.ts";
import { groupMembersMax, raftFrameBytesMax, raftGroupsPerNodeMax } from "./constants.ts";
import { UnknownGroupError } from "./errors.ts";
import { PROTOCOL_RAFT, groupOfFrame } from "./wire.ts";

/** What a group's transport offers the endpoint. */
export interface GroupInbox {
  readonly group: string;
  /** The sender's member id in this group, or undefined when it is not a member. */
  memberOf(remotePeer: string): NodeId | undefined;
  deliver(raw: unknown, from: NodeId): void;
  rejected(err: unknown, remotePeer: string): void;
}

export interface EndpointNode {
  handle(protocol: string, handler: (stream: Stream, connection: Connection) => void | Promise<void>, opts?: { maxInboundStreams?: number }): Promise<void>;
  unhandle(protocol: string): Promise<void>;
}

export class RaftEndpoint {
  private readonly groups = new Map<string, GroupInbox>();
  private readonly inbound = new Set<Stream>();
  private handling: Promise<void> | undefined;
  readonly stats = { unknownGroup: 0, strangers: 0, malformed: 0 };

  constructor(private readonly node: EndpointNode) {}

  /** Adds a group's inbox; the protocol handler is registered with the first one. */
  async register(inbox: GroupInbox): Promise<void> {
    if (this.groups.has(inbox.group)) throw new MalformedInputError(`raft group ${inbox.group} is already running on this node`);
    if (this.groups.size >= raftGroupsPerNodeMax) throw new MalformedInputError(`at most ${raftGroupsPerNodeMax} raft groups per node`);
    this.groups.set(inbox.group, inbox);
    this.handling ??= this.node.handle(PROTOCOL_RAFT, (s, c) => this.serve(s, c), { maxInboundStreams: 4 * (groupMembersMax + 1) * raftGroupsPerNodeMax });
    await this.handling;
  }

  /** Removes a group's inbox; the handler goes with the last one. */
  async unregister(group: string): Promise<void> {
    if (!this.groups.delete(group) || this.groups.size > 0) return;
    this.handling = undefined;
    await this.node.unhandle(PROTOCOL_RAFT).catch(() => {});
    for (const s of this.inbound) s.abort(new Error("raft endpoint stopped"));
  }

  groupIds(): string[] {
    return [...this.groups.keys()];
  }

  private rejectAll(err: unknown, remote: string): void {
    for (const g of this.groups.values()) g.rejected(err, remote);
  }

  private async serve(stream: Stream, conn: Connection): Promise<void> {
    const remote = conn.remotePeer.toString();
    if (![...this.groups.values()].some((g) => g.memberOf(remote) !== undefined)) {
      this.stats.strangers++;
      this.rejectAll(new UnauthorizedError(`peer ${remote} is not a member of any raft group of this node`), remote);
      stream.abort(new Error("not a group member"));
      return;
    }
    this.inbound.add(stream);
    const lp = lpStream(stream, { maxDataLength: raftFrameBytesMax });
    try {
      while (this.groups.size > 0) {
        let frame;
        try {
          frame = await lp.read();
        } catch (err) {
          const name = (err as Error).name;
          if (name === "InvalidDataLengthError") this.rejectAll(new MessageTooLargeError(-1, raftFrameBytesMax), remote);
          else if (name !== "UnexpectedEOFError" && this.groups.size > 0) this.rejectAll(new MalformedInputError(`raft stream read failed: ${(err as Error).message}`), remote);
          break;
        }
        let raw: unknown;
        try {
          raw = decodeCbor(frame.subarray(), raftFrameBytesMax);
        } catch (err) {
          this.stats.malformed++;
          this.rejectAll(err, remote);
          continue; // framing is intact: the next frame may be fine
        }
        const group = groupOfFrame(raw);
        const inbox = group === undefined ? undefined : this.groups.get(group);
        if (!inbox) {
          this.stats.unknownGroup++;
          this.rejectAll(group === undefined ? new MalformedInputError("raft frame with an invalid group id") : new UnknownGroupError(group), remote);
          continue;
        }
        const from = inbox.memberOf(remote);
        if (from === undefined) {
          inbox.rejected(new UnauthorizedError(`peer ${remote} is not a member of raft group ${inbox.group}`), remote);
          break; // removed from the group meanwhile, or speaking for a group it is not in
        }
        inbox.deliver(raw, from);
      }
    } finally {
      this.inbound.delete(stream);
      stream.abort(new Error("raft stream closed"));
    }
  }
}

const endpoints = new WeakMap<object, RaftEndpoint>();

/** The node's shared endpoint (created on first use). */
export function raftEndpoint(node: EndpointNode): RaftEndpoint {
  let e = endpoints.get(node);
  if (!e) endpoints.set(node, (e = new RaftEndpoint(node)));
  return e;
}
