/**
 * The federation log as a hub service, enabled when the hub config lists
 * raft peers (hub.json `consensus.peers`, or `grey-hub run --raft-peer`).
 *
 * - starts the hub's Raft groups (groups.ts: flat → DIR/raft.db + DIR/fedlog.db; region/global
 *   levels → one raft-GROUP.db + fedlog-GROUP.db per group) and routes each command to its owner;
 * - in a hierarchy, keeps the global seat with the region's leader (seats.ts);
 * - announces this hub's API URL in the log, so followers can point clients at the leader;
 * - on a follower, API writes (any method but GET/HEAD/OPTIONS) answer 307 with the
 *   leader's URL in Location, or 503 naming the leader when its URL is not known yet;
 * - GET /v1/consensus shows the group as this hub sees it; metrics grey_raft_*;
 * - optional rotating leadership (consensus.rotateEveryMs);
 * - heartbeat gossip (gossip.ts): members heartbeating to any hub show fresh on every hub.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { MiddlewareHandler } from "hono";
import { errorResponse, jsonError } from "../api/errors.ts";
import type { HubService, HubServiceContext } from "../services.ts";
import { rotateLeadership } from "../../plugins/consensus-raft/driver/rotation.ts";
import { keepSeats } from "../../plugins/consensus-raft/driver/seats.ts";
import { announceCheckMs, gossipEveryMsMax, seatRoundMsMin } from "./constants.ts";
import { GossipService } from "./gossip.ts";
import { groupPlans, isGlobalRoute, ownsGlobally, type GroupPlan } from "./groups.ts";
import { FederationLog, type FederationLogInit } from "./log.ts";
import { seatClaim, type FedlogSnapshotPart } from "./state-machine.ts";
import type { FedlogCommand } from "./commands.ts";

/** What other hub services use: write through the log, and apply commands into their own stores. */
export interface FedlogWrites {
  /** True when consensus is configured: the writes below must go through the log. */
  active(): boolean;
  /** Resolves once the command is applied on this hub; FedlogRejectedError when every hub refused it. */
  write(cmd: FedlogCommand): Promise<number>;
  /**
   * Run `fn` on every hub when a command of `type` is applied (and for the
   * agreements of a snapshot). Deterministic; a GreyError it throws refuses
   * the command on every hub alike. Register before `replication` starts.
   */
  onApply<T extends FedlogCommand["type"]>(type: T, fn: (cmd: Extract<FedlogCommand, { type: T }>) => void): void;
  /**
   * Carry a store built from the log's commands in the log's snapshots (`name` unique): a hub that
   * catches up from a snapshot gets its rows (import replaces them). Register before `replication` starts.
   */
  onSnapshot(name: string, part: FedlogSnapshotPart): void;
}

export interface FedlogService extends HubService, FedlogWrites {
  /** The log, when consensus is enabled and the service started. */
  readonly log: FederationLog | undefined;
  /**
   * Starts replication (and with it the replay of the log into the stores):
   * list it after the services that register appliers.
   */
  readonly replication: HubService;
}

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

export function fedlogService(): FedlogService {
  let logs: { home: FederationLog; global?: FederationLog } | undefined;
  let started = false;
  let ctx: HubServiceContext | undefined;
  let timers: ReturnType<typeof setInterval>[] = [];
  let stops: (() => void)[] = [];
  let gossip: GossipService | undefined;
  const appliers = new Map<FedlogCommand["type"], (cmd: FedlogCommand) => void>();
  const parts = new Map<string, FedlogSnapshotPart>();
  /** The log that owns a command (groups.ts). */
  const owner = (type: FedlogCommand["type"]) => (logs!.global && ownsGlobally(type) ? logs!.global : logs!.home);
  const all = () => (logs ? [logs.home, ...(logs.global ? [logs.global] : [])] : []);
  const replication: HubService = {
    name: "fedlog-replication",
    async start() {
      if (!logs || !ctx) return;
      for (const l of all()) await l.start();
      started = true;
      for (const l of all()) announceApi(l, ctx);
      const c = ctx.cfg.consensus!;
      // the federation leader rotates: the global group's when there is one
      if (c.rotateEveryMs) stops.push(rotateLeadership((logs.global ?? logs.home).driver, { everyMs: c.rotateEveryMs, logger: ctx.logger }));
      if (logs.global) stops.push(keepGlobalSeat(logs.home, logs.global, ctx));
      ctx.logger.info("federation log started", { member: logs.home.self, groups: all().map((l) => l.group), peers: c.peers.length });
      await startGossip(logs.home, ctx);
    },
    async stop() {},
  };
  // Announce our API URL in a log once the API listens (DIR/run.json of this process), and again if the log lost it.
  const announceApi = (l: FederationLog, ctx: HubServiceContext) => {
    const announce = async () => {
      const api = readOwnApi(ctx.cfg.dataDir);
      if (!api || l.sm.hub(l.self)?.api === api) return;
      await l.write({ type: "hub-announced", member: l.self, peerId: ctx.hubPeerId, api, at: ctx.clock.now() }).catch((err) =>
        ctx.logger.debug("hub announce deferred", { group: l.group, error: (err as Error).message }));
    };
    let announcing = false;
    timers.push(setInterval(() => {
      if (announcing) return;
      announcing = true;
      void announce().finally(() => (announcing = false));
    }, Math.min(announceCheckMs, 10 * ctx.cfg.consensus!.tickMs)));
  };
  const startGossip = async (l: FederationLog, ctx: HubServiceContext) => {
    gossip = new GossipService(
      { self: ctx.hubPeerId, peers: () => l.peers.values(), everyMs: Math.min(gossipEveryMsMax, ctx.cfg.heartbeatIntervalMs) },
      { node: ctx.node as never, registry: ctx.registry, clock: ctx.clock, logger: ctx.logger },
    );
    await gossip.start();
  };
  return {
    name: "fedlog",
    replication,
    get log() {
      return logs?.home;
    },
    active: () => logs !== undefined,
    async write(cmd) {
      if (!logs) throw new Error("fedlog service not active");
      return owner(cmd.type).write(cmd);
    },
    onApply(type, fn) {
      appliers.set(type, fn as (cmd: FedlogCommand) => void);
    },
    onSnapshot(name, part) {
      parts.set(name, part);
    },
    async start(c0: HubServiceContext) {
      ctx = c0;
      const c = ctx.cfg.consensus;
      if (!c || (c.level === "flat" && c.peers.length === 0)) return;
      const plans = groupPlans(c.level, c.region);
      const deps = { node: ctx.node as never, registry: ctx.registry, logger: ctx.logger, appliers, parts };
      const open = (p: GroupPlan, more: Partial<FederationLogInit>) => new FederationLog(
        { selfPeerId: ctx!.hubPeerId, peers: c.peers, raftPath: join(ctx!.cfg.dataDir, p.raftFile), fedlogPath: join(ctx!.cfg.dataDir, p.fedlogFile), tickMs: c.tickMs, electionTicks: c.electionTicks, group: p.group, members: p.members, snapshotEveryEntries: c.snapshotEntries, ...more },
        deps,
      );
      const hierarchy = plans.global !== undefined && c.global !== undefined;
      const home = open(plans.home, { join: c.join, ...(hierarchy ? { owns: (t: FedlogCommand["type"]) => !ownsGlobally(t) } : {}) });
      const global = plans.global && c.global ? open(plans.global, { peers: c.global.peers, founders: c.global.founders, owns: ownsGlobally }) : undefined;
      // Writes made before replication starts wait for it (they retry until a leader is known).
      logs = { home, ...(global ? { global } : {}) };
      ctx.app.use("*", redirectWritesToLeader((path) => (global && isGlobalRoute(path) ? global : home)));
      ctx.app.get("/v1/consensus", (cx) => cx.json({ ...groupView(home), groups: all().map(groupView) }));
      // Membership of the hub's own group (admins): add a hub as learner, promoted once caught up; remove a hub.
      ctx.app.post("/v1/consensus/peers", async (cx) => {
        if (cx.var.identity?.role !== "admin") return jsonError(cx, 403, "ERR_FORBIDDEN", "only federation admins change the hub group");
        const body = (await cx.req.json().catch(() => ({}))) as { multiaddr?: unknown };
        if (typeof body.multiaddr !== "string") return jsonError(cx, 400, "ERR_MALFORMED_INPUT", "body: { \"multiaddr\": \"MULTIADDR/p2p/PEER_ID\" }");
        try {
          return cx.json({ ...(await home.addPeer(body.multiaddr)), voters: home.driver.membership().voters }, 201);
        } catch (err) {
          return errorResponse(cx, err);
        }
      });
      ctx.app.delete("/v1/consensus/peers/:id", async (cx) => {
        if (cx.var.identity?.role !== "admin") return jsonError(cx, 403, "ERR_FORBIDDEN", "only federation admins change the hub group");
        try {
          return cx.json({ ...(await home.removePeer(cx.req.param("id"))), voters: home.driver.membership().voters });
        } catch (err) {
          return errorResponse(cx, err);
        }
      });
      ctx.app.get("/v1/consensus/tasks/:id", (cx) => {
        const a = owner("task-assigned").sm.taskAssignmentAt(cx.req.param("id"));
        return a ? cx.json({ subtaskId: cx.req.param("id"), ...a }) : jsonError(cx, 404, "ERR_NOT_FOUND", "no assignment of that subtask in the federation log");
      });
      const term = ctx.metrics.gauge("grey_raft_term", "Current Raft term of each consensus group of this hub.");
      const leader = ctx.metrics.gauge("grey_raft_is_leader", "1 when this hub leads the group.");
      const commit = ctx.metrics.gauge("grey_raft_commit_index", "Commit index of each consensus group.");
      ctx.metrics.collect(() => {
        if (!started) return;
        for (const l of all()) {
          const s = l.driver.status();
          term.set({ group: l.group }, s.term);
          leader.set({ group: l.group }, l.isLeader() ? 1 : 0);
          commit.set({ group: l.group }, s.commit);
        }
      });
    },
    async stop() {
      for (const s of stops) s();
      stops = [];
      for (const t of timers) clearInterval(t);
      timers = [];
      await gossip?.stop();
      gossip = undefined;
      for (const l of all().reverse()) await l.stop();
      logs = undefined;
      started = false;
    },
  };
}

/** A group as this hub sees it (GET /v1/consensus, `grey-hub consensus status`). */
function groupView(l: FederationLog) {
  const s = l.driver.status();
  const m = l.driver.membership();
  const seats = l.sm.seats().map((c) => ({ child: c.child, member: c.member, childTerm: c.childTerm }));
  return {
    group: l.group, member: l.self, role: s.role, term: s.term, leader: l.leaderApi() ?? null, commit: s.commit, applied: l.sm.appliedIndex(),
    voters: m.voters, learners: m.learners, hubs: l.sm.hubs(), ...(seats.length ? { seats } : {}),
  };
}

/**
 * The region log's leader claims the global seat; the global leader moves seats
 * (learner → voter → old holder removed). Runs on every hub of a hierarchy.
 */
function keepGlobalSeat(home: FederationLog, global: FederationLog, ctx: HubServiceContext): () => void {
  const c = ctx.cfg.consensus!;
  const address = (member: number): { member: number; peerId: string; multiaddrs: string[] } | undefined => {
    if (member === home.self) return { member, peerId: ctx.hubPeerId, multiaddrs: ctx.node.getMultiaddrs().map(String) };
    const p = home.peers.get(member);
    return p ? { member, peerId: p.peerId, multiaddrs: [...p.multiaddrs] } : undefined;
  };
  const known = (member: number) => {
    for (const claim of global.sm.seats()) for (const h of claim.hubs) if (h.member === member) return h;
    return undefined;
  };
  return keepSeats(
    {
      name: home.group,
      leader: () => home.driver.leader(),
      status: () => home.driver.status(),
      hubs: () => {
        const m = home.driver.membership();
        return [...m.voters, ...m.learners].filter((h) => address(h) !== undefined);
      },
    },
    {
      leader: () => global.driver.leader(),
      membership: () => global.driver.membership(),
      progress: () => global.driver.progress(),
      status: () => global.driver.status(),
      changeMembership: (ch) => global.driver.changeMembership(ch),
      transferLeadership: (to) => global.driver.transferLeadership(to),
      claims: () => global.sm.seats().map(seatClaim),
      async claim(cl) {
        const hubs = cl.hubs.map(address).filter((h) => h !== undefined);
        await global.write({ type: "seat-claimed", child: cl.child, member: cl.member, childTerm: cl.childTerm, hubs, at: Date.now() });
      },
      async prepare(member) {
        const h = known(member);
        if (h) await global.ensurePeer(member, { peerId: h.peerId, multiaddrs: h.multiaddrs });
      },
    },
    { self: home.self, everyMs: Math.max(seatRoundMsMin, 5 * c.tickMs), observers: c.global?.observers ?? true, logger: ctx.logger },
  );
}

function readOwnApi(dataDir: string): string | undefined {
  const p = join(dataDir, "run.json");
  if (!existsSync(p)) return undefined;
  try {
    const r = JSON.parse(readFileSync(p, "utf8")) as { api?: string; pid?: number };
    return r.pid === process.pid ? r.api : undefined;
  } catch {
    return undefined;
  }
}

type LeaderView = Pick<FederationLog, "isLeader" | "leaderApi">;

/**
 * Followers send writers to the leader: 307 + Location, or 503 naming the leader (member id) when its URL is unknown.
 * With several groups, `pick` names the group that owns the route (agreements: global; the rest: the hub's own group).
 */
export function redirectWritesToLeader(pick: LeaderView | ((path: string) => LeaderView)): MiddlewareHandler {
  return async function redirectWritesToLeader(c, next) {
    if (SAFE.has(c.req.method)) return next();
    const log = typeof pick === "function" ? pick(c.req.path) : pick;
    if (log.isLeader()) return next();
    const l = log.leaderApi();
    if (l?.api) {
      const u = new URL(c.req.url);
      c.header("x-grey-leader", l.api);
      return c.redirect(l.api.replace(/\/$/, "") + u.pathname + u.search, 307);
    }
    const res = jsonError(c, 503, "ERR_RAFT_NOT_LEADER", l ? `this hub is a follower; leader is member ${l.member} (its API address is not known yet): retry` : "no leader elected yet: retry");
    return res;
  };
}
