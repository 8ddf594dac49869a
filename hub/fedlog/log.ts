/**
 * FederationLog: the hub's handle on the replicated federation log. Any hub
 * can write: the leader proposes directly; a follower forwards the command
 * to the leader over /grey/fedlog/1.0.0 and then waits until it has applied
 * the entry itself, so a caller reads its own write on the hub it asked.
 */
import type { Connection } from "@libp2p/interface";
import { multiaddr } from "@multiformats/multiaddr";
import { z } from "zod";
import { type Channel, request, serve } from "../../plugins/mesh-libp2p/rpc.ts";
import { GreyError, MalformedInputError, TimeoutError, UnauthorizedError } from "../../plugins/sdk/errors.ts";
import type { Logger } from "../../plugins/sdk/plugin.ts";
import { NotLeaderError } from "../../plugins/consensus-raft/core/index.ts";
import { RaftDriver, isRetryable } from "../../plugins/consensus-raft/driver/driver.ts";
import { Libp2pTransport, type Libp2pLike, type RaftPeer } from "../../plugins/consensus-raft/driver/libp2p-transport.ts";
import { nodeIdOfPeer } from "../../plugins/consensus-raft/driver/node-id.ts";
import { UnknownGroupError } from "../../plugins/consensus-raft/driver/errors.ts";
import { DEFAULT_RAFT_GROUP, RaftGroupId } from "../../plugins/consensus-raft/driver/wire.ts";
import type { Registry } from "../registry/index.ts";
import { encodeCommand, fedlogCommandBytesMax, type FedlogCommand } from "./commands.ts";
import { PROTOCOL_FEDLOG, fedlogRetryMs, fedlogWriteTimeoutMs, peerCatchUpTimeoutMs } from "./constants.ts";
import { FedlogStateMachine, type ApplyResult, type FedlogAppliers, type FedlogSnapshotPart } from "./state-machine.ts";

const bytes = z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.byteLength <= fedlogCommandBytesMax);
/** `group` names the Raft group the command is for (absent: the default group, as flat hubs send it). */
const ForwardRequest = z.object({ v: z.literal(1), type: z.literal("fedlog-propose"), group: RaftGroupId.optional(), relayed: z.literal(true).optional(), command: bytes });
type ForwardRequest = z.infer<typeof ForwardRequest>;
type ForwardHandler = (ch: Channel, conn: Connection, req: ForwardRequest) => Promise<void>;

/** One /grey/fedlog/1.0.0 handler per libp2p node, dispatching to the group a request names. */
class ForwardEndpoint {
  readonly groups = new Map<string, ForwardHandler>();
  handling: Promise<void> | undefined;
  readonly stats = { unknownGroup: 0 };
  constructor(private readonly node: Libp2pLike) {}

  async register(group: string, h: ForwardHandler): Promise<void> {
    if (this.groups.has(group)) throw new MalformedInputError(`fedlog group ${group} is already running on this node`);
    this.groups.set(group, h);
    this.handling ??= this.node.handle(PROTOCOL_FEDLOG, serve(PROTOCOL_FEDLOG, async (ch, conn) => {
      const req = await ch.receive(ForwardRequest);
      const group = req.group ?? DEFAULT_RAFT_GROUP;
      const handler = this.groups.get(group);
      if (!handler) {
        this.stats.unknownGroup++;
        throw new UnknownGroupError(group);
      }
      await handler(ch, conn, req);
    }) as never, { maxInboundStreams: 64 });
    await this.handling;
  }

  async unregister(group: string): Promise<void> {
    if (!this.groups.delete(group) || this.groups.size > 0) return;
    this.handling = undefined;
    await this.node.unhandle(PROTOCOL_FEDLOG).catch(() => {});
  }
}
const forwardEndpoints = new WeakMap<object, ForwardEndpoint>();
/** The node's fedlog forward endpoint (its stats count requests for unknown groups). */
export function forwardEndpoint(node: Libp2pLike): ForwardEndpoint {
  let e = forwardEndpoints.get(node);
  if (!e) forwardEndpoints.set(node, (e = new ForwardEndpoint(node)));
  return e;
}
const ForwardResult = z.object({
  v: z.literal(1), type: z.literal("fedlog-result"), index: z.number().int().positive(),
  ok: z.boolean(), code: z.string().max(64).optional(), message: z.string().max(1024).optional(),
});

/** A command the state machine refused (deterministically, on every hub): e.g. a cluster id owned by another org. */
export class FedlogRejectedError extends GreyError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

export interface FederationLogInit {
  selfPeerId: string;
  /** The other hubs: multiaddrs ending in /p2p/PEER_ID (or bare peer ids). */
  peers: readonly string[];
  raftPath: string;
  fedlogPath: string;
  tickMs: number;
  electionTicks: number;
  /** This hub joins a running group (added with `grey-hub consensus add-peer`): it starts empty, never as a founder. */
  join?: boolean;
  /** The Raft group (default: the flat federation log's). */
  group?: string;
  /**
   * The founding voters (multiaddrs or peer ids), the same list on every hub;
   * a hub not in it starts empty and waits to be added. Default: this hub and `peers`.
   */
  founders?: readonly string[];
  /** Does this log own cluster membership (FedlogStateMachineOptions.members)? Default true. */
  members?: boolean;
  /** Does this log own commands of a type (FedlogStateMachineOptions.owns)? Default: all. */
  owns?: (type: FedlogCommand["type"]) => boolean;
  /** Snapshot (compact the log) once this many entries were applied since the last (hub.json consensus.snapshotEntries). */
  snapshotEveryEntries?: number;
}

export function parseRaftPeers(peers: readonly string[]): Map<number, RaftPeer> {
  const out = new Map<number, RaftPeer>();
  const problems: string[] = [];
  for (const p of peers) {
    let peerId: string;
    let addrs: string[] = [];
    if (p.startsWith("/")) {
      try {
        peerId = multiaddr(p).getComponents().findLast((c) => c.name === "p2p")?.value ?? "";
      } catch {
        peerId = "";
      }
      addrs = [p];
    } else peerId = p;
    if (!peerId) {
      problems.push(`consensus.peers: "${p}" names no peer (end it with /p2p/PEER_ID)`);
      continue;
    }
    const id = nodeIdOfPeer(peerId);
    const prev = out.get(id);
    out.set(id, { peerId, multiaddrs: [...(prev?.multiaddrs ?? []), ...addrs] });
  }
  if (problems.length) throw new MalformedInputError(problems.join("; "));
  return out;
}

export class FederationLog {
  readonly driver: RaftDriver;
  readonly sm: FedlogStateMachine;
  readonly transport: Libp2pTransport;
  readonly peers: Map<number, RaftPeer>;
  readonly self: number;
  readonly group: string;
  private relaySeq = 0;

  constructor(private readonly init: FederationLogInit, private readonly deps: { node: Libp2pLike & { handle: Function }; registry: Registry; logger: Logger; appliers?: FedlogAppliers; parts?: ReadonlyMap<string, FedlogSnapshotPart> }) {
    this.self = nodeIdOfPeer(init.selfPeerId);
    this.group = init.group ?? DEFAULT_RAFT_GROUP;
    const notSelf = (p: string) => !p.endsWith(init.selfPeerId);
    this.peers = parseRaftPeers([...init.peers, ...(init.founders ?? [])].filter(notSelf));
    if (this.peers.has(this.self)) throw new MalformedInputError("consensus.peers: two hubs map to the same raft id");
    this.sm = new FedlogStateMachine(init.fedlogPath, deps.registry, deps.logger, deps.appliers, {
      members: init.members ?? true, ...(deps.parts ? { parts: deps.parts } : {}), ...(init.owns ? { owns: init.owns } : {}),
    });
    const listed = init.founders ? [...parseRaftPeers(init.founders.filter(notSelf)).keys()] : [...this.peers.keys()];
    const founding = !init.join && (!init.founders || init.founders.some((f) => !notSelf(f)));
    const founders = [this.self, ...listed];
    // hubs added through the log since (persisted in fedlog.db)
    for (const p of this.sm.peers()) if (p.member !== this.self) this.peers.set(p.member, { peerId: p.peerId, multiaddrs: p.multiaddrs });
    this.transport = new Libp2pTransport({ node: deps.node, group: this.group, peers: this.peers, logger: deps.logger });
    this.sm.onPeer = (member, p) => {
      if (member === this.self) return;
      if (p) {
        this.peers.set(member, { peerId: p.peerId, multiaddrs: p.multiaddrs });
        this.transport.addPeer(member, { peerId: p.peerId, multiaddrs: p.multiaddrs });
      } else {
        this.peers.delete(member);
        this.transport.removePeer(member);
      }
    };
    this.driver = new RaftDriver(
      {
        id: this.self, ...(founding ? { founders } : {}), storagePath: init.raftPath, tickMs: init.tickMs, electionTicks: init.electionTicks,
        ...(init.snapshotEveryEntries ? { snapshotEveryEntries: init.snapshotEveryEntries } : {}),
      },
      { logger: deps.logger, clock: { now: Date.now }, stateMachine: this.sm, transport: this.transport },
    );
  }

  async start(): Promise<void> {
    await this.driver.start();
    await forwardEndpoint(this.deps.node).register(this.group, (ch, conn, req) => this.serveForward(ch, conn, req));
  }

  async stop(): Promise<void> {
    await forwardEndpoint(this.deps.node).unregister(this.group);
    await this.driver.stop();
    this.sm.close();
  }

  /** The leader's API URL, when the leader announced it. */
  leaderApi(): { member: number; api?: string } | undefined {
    const l = this.driver.leader();
    if (!l) return undefined;
    const api = this.sm.hub(l.id)?.api;
    return { member: l.id, ...(api ? { api } : {}) };
  }

  isLeader(): boolean {
    return this.driver.leader()?.self ?? false;
  }

  /**
   * Write a command through the log from any hub; resolves once applied on
   * this hub. Throws FedlogRejectedError when the state machine refused it.
   */
  async write(cmd: FedlogCommand, timeoutMs = fedlogWriteTimeoutMs): Promise<number> {
    const data = encodeCommand(cmd);
    if (data.byteLength > fedlogCommandBytesMax) throw new MalformedInputError(`fedlog command of ${data.byteLength} bytes exceeds ${fedlogCommandBytesMax}`);
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const r = await this.writeOnce(data, deadline - Date.now());
        if (!r.ok) throw new FedlogRejectedError(r.code, r.message);
        await this.waitApplied(r.index, deadline);
        return r.index;
      } catch (err) {
        if (err instanceof FedlogRejectedError || !(isRetryable(err) || isTransient(err))) throw err;
        last = err;
        await Bun.sleep(fedlogRetryMs);
      }
    }
    throw last instanceof Error ? last : new TimeoutError("fedlog write", timeoutMs);
  }

  /**
   * Adds a hub to the group (leader only): every hub learns its address
   * through the log, it joins as a learner, and once its log has caught up
   * with the commit index it is promoted to voter. Idempotent.
   */
  async addPeer(addr: string, timeoutMs = peerCatchUpTimeoutMs): Promise<{ member: number; peerId: string }> {
    const [[member, peer]] = [...parseRaftPeers([addr])] as [[number, RaftPeer]];
    if (member === this.self) throw new MalformedInputError("this hub is already a member");
    if (!this.isLeader()) throw new NotLeaderError(this.driver.leader()?.id ?? 0);
    const conf = this.driver.membership();
    if (conf.voters.includes(member)) return { member, peerId: peer.peerId };
    await this.write({ type: "hub-added", member, peerId: peer.peerId, multiaddrs: [...peer.multiaddrs], at: Date.now() });
    if (!conf.learners.includes(member)) await this.driver.changeMembership({ kind: "addLearner", member });
    const target = this.driver.status().commit;
    const deadline = Date.now() + timeoutMs;
    while ((this.driver.progress()?.get(member)?.match ?? 0) < target) {
      if (Date.now() > deadline) throw new TimeoutError(`catch-up of hub ${peer.peerId} (learner; promote it by adding it again)`, timeoutMs);
      if (!this.isLeader()) throw new NotLeaderError(this.driver.leader()?.id ?? 0);
      await Bun.sleep(50);
    }
    await this.driver.changeMembership({ kind: "addVoter", member });
    return { member, peerId: peer.peerId };
  }

  /** Every member learns where `peer` is (hub-added through the log), unless it already knows. */
  async ensurePeer(member: number, peer: RaftPeer): Promise<void> {
    if (member === this.self || this.sm.peers().some((p) => p.member === member)) return;
    await this.write({ type: "hub-added", member, peerId: peer.peerId, multiaddrs: [...peer.multiaddrs], at: Date.now() });
  }

  /** Removes a hub (by peer id or member id) from the group, then from every hub's address book. Leader only. */
  async removePeer(idOrPeer: string): Promise<{ member: number }> {
    const member = /^\d+$/.test(idOrPeer) ? Number(idOrPeer) : nodeIdOfPeer(idOrPeer);
    if (!this.isLeader()) throw new NotLeaderError(this.driver.leader()?.id ?? 0);
    const conf = this.driver.membership();
    if (conf.voters.includes(member) || conf.learners.includes(member)) await this.driver.changeMembership({ kind: "remove", member });
    await this.write({ type: "hub-removed", member, at: Date.now() });
    return { member };
  }

  private async writeOnce(data: Uint8Array, budgetMs: number, relayed = false): Promise<{ index: number } & ApplyResult> {
    const l = this.driver.leader();
    if (l?.self) {
      const r = await this.driver.propose(data, { signal: AbortSignal.timeout(Math.max(1, budgetMs)) });
      return { index: r.index, ...(r.result as ApplyResult) };
    }
    // A hub outside the group (waiting for a seat, or not yet an observer) never hears of the
    // leader: it hands the command to any known member, which relays it to its leader (one hop).
    const outside = !l && !relayed && !this.driver.membership().voters.includes(this.self) && this.peers.size > 0;
    const to = l ? l.id : outside ? [...this.peers.keys()][this.relaySeq++ % this.peers.size]! : 0;
    const peer = this.peers.get(to);
    if (!peer || (relayed && !l)) throw new NotLeaderError(l?.id ?? 0);
    const target = peer.multiaddrs.length ? peer.multiaddrs.map((a) => multiaddr(a)) : peer.peerId;
    const res = await request(this.deps.node as never, target, PROTOCOL_FEDLOG, async (ch) => {
      await ch.send({ type: "fedlog-propose", ...(this.group === DEFAULT_RAFT_GROUP ? {} : { group: this.group }), ...(outside || relayed ? { relayed: true } : {}), command: data });
      return ch.receive(ForwardResult);
    }, Math.max(1, budgetMs));
    return res.ok ? { index: res.index, ok: true } : { index: res.index, ok: false, code: res.code ?? "ERR_FEDLOG_REJECTED", message: res.message ?? "refused" };
  }

  private async waitApplied(index: number, deadline: number): Promise<void> {
    while (this.sm.appliedIndex() < index) {
      if (Date.now() > deadline) throw new TimeoutError(`apply of fedlog entry ${index}`, fedlogWriteTimeoutMs);
      await Bun.sleep(5);
    }
  }

  private async serveForward(ch: Channel, conn: Connection, req: ForwardRequest): Promise<void> {
    const remote = conn.remotePeer.toString();
    if (![...this.peers.values()].some((p) => p.peerId === remote)) throw new UnauthorizedError(`not a hub of consensus group ${this.group}`);
    // from a hub outside the group: relay to our leader (once: a relayed request is never relayed again)
    const r = req.relayed && !this.isLeader()
      ? await this.writeOnce(req.command, fedlogWriteTimeoutMs, true)
      : await this.driver.propose(req.command).then((p) => ({ index: p.index, ...(p.result as ApplyResult) }));
    await ch.send({ type: "fedlog-result", index: r.index, ok: r.ok, ...(r.ok ? {} : { code: r.code, message: r.message }) });
  }
}

function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof GreyError) return err.code === "ERR_RAFT_NOT_LEADER" || err.code === "ERR_TIMEOUT" || err.code.startsWith("ERR_RAFT");
  return true; // dial/stream failures from libp2p
}
