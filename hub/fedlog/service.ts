/**
 * The federation log as a hub service, enabled when the hub config lists
 * raft peers (hub.json `consensus.peers`, or `grey-hub run --raft-peer`).
 *
 * - starts the Raft group (DIR/raft.db) and its state machine (DIR/fedlog.db + the registry);
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
import { FEDLOG_DB, RAFT_DB, announceCheckMs, gossipEveryMsMax } from "./constants.ts";
import { GossipService } from "./gossip.ts";
import { FederationLog } from "./log.ts";
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
  let log: FederationLog | undefined;
  let started = false;
  let ctx: HubServiceContext | undefined;
  let timers: ReturnType<typeof setInterval>[] = [];
  let stopRotation: (() => void) | undefined;
  let gossip: GossipService | undefined;
  const appliers = new Map<FedlogCommand["type"], (cmd: FedlogCommand) => void>();
  const replication: HubService = {
    name: "fedlog-replication",
    async start() {
      if (!log || !ctx) return;
      await log.start();
      started = true;
      startBackground(log, ctx);
      await startGossip(log, ctx);
    },
    async stop() {},
  };
  const startBackground = (l: FederationLog, ctx: HubServiceContext) => {
    const c = ctx.cfg.consensus!;
    // Announce our API URL once the API listens (DIR/run.json of this process), and again if the log lost it.
    const announce = async () => {
      const api = readOwnApi(ctx.cfg.dataDir);
      if (!api || l.sm.hub(l.self)?.api === api) return;
      await l.write({ type: "hub-announced", member: l.self, peerId: ctx.hubPeerId, api, at: ctx.clock.now() }).catch((err) =>
        ctx.logger.debug("hub announce deferred", { error: (err as Error).message }));
    };
    let announcing = false;
    timers.push(setInterval(() => {
      if (announcing) return;
      announcing = true;
      void announce().finally(() => (announcing = false));
    }, Math.min(announceCheckMs, 10 * c.tickMs)));
    if (c.rotateEveryMs) stopRotation = rotateLeadership(l.driver, { everyMs: c.rotateEveryMs, logger: ctx.logger });
    ctx.logger.info("federation log started", { member: l.self, peers: c.peers.length });
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
      return log;
    },
    active: () => log !== undefined,
    async write(cmd) {
      if (!log) throw new Error("fedlog service not active");
      return log.write(cmd);
    },
    onApply(type, fn) {
      appliers.set(type, fn as (cmd: FedlogCommand) => void);
    },
    async start(c0: HubServiceContext) {
      ctx = c0;
      const c = ctx.cfg.consensus;
      if (!c || c.peers.length === 0) return;
      const l = new FederationLog(
        { selfPeerId: ctx.hubPeerId, peers: c.peers, raftPath: join(ctx.cfg.dataDir, RAFT_DB), fedlogPath: join(ctx.cfg.dataDir, FEDLOG_DB), tickMs: c.tickMs, electionTicks: c.electionTicks, join: c.join },
        { node: ctx.node as never, registry: ctx.registry, logger: ctx.logger, appliers },
      );
      // Writes made before replication starts wait for it (they retry until a leader is known).
      log = l;
      ctx.app.use("*", redirectWritesToLeader(l));
      ctx.app.get("/v1/consensus", (cx) => {
        const s = l.driver.status();
        const m = l.driver.membership();
        return cx.json({ member: l.self, role: s.role, term: s.term, leader: l.leaderApi() ?? null, commit: s.commit, applied: l.sm.appliedIndex(), voters: m.voters, learners: m.learners, hubs: l.sm.hubs() });
      });
      // Membership of the hub group (admins): add a hub as learner, promoted once caught up; remove a hub.
      ctx.app.post("/v1/consensus/peers", async (cx) => {
        if (cx.var.identity?.role !== "admin") return jsonError(cx, 403, "ERR_FORBIDDEN", "only federation admins change the hub group");
        const body = (await cx.req.json().catch(() => ({}))) as { multiaddr?: unknown };
        if (typeof body.multiaddr !== "string") return jsonError(cx, 400, "ERR_MALFORMED_INPUT", "body: { \"multiaddr\": \"MULTIADDR/p2p/PEER_ID\" }");
        try {
          return cx.json({ ...(await l.addPeer(body.multiaddr)), voters: l.driver.membership().voters }, 201);
        } catch (err) {
          return errorResponse(cx, err);
        }
      });
      ctx.app.delete("/v1/consensus/peers/:id", async (cx) => {
        if (cx.var.identity?.role !== "admin") return jsonError(cx, 403, "ERR_FORBIDDEN", "only federation admins change the hub group");
        try {
          return cx.json({ ...(await l.removePeer(cx.req.param("id"))), voters: l.driver.membership().voters });
        } catch (err) {
          return errorResponse(cx, err);
        }
      });
      ctx.app.get("/v1/consensus/tasks/:id", (cx) => {
        const a = l.sm.taskAssignmentAt(cx.req.param("id"));
        return a ? cx.json({ subtaskId: cx.req.param("id"), ...a }) : jsonError(cx, 404, "ERR_NOT_FOUND", "no assignment of that subtask in the federation log");
      });
      const term = ctx.metrics.gauge("grey_raft_term", "Current Raft term of the federation log.");
      const leader = ctx.metrics.gauge("grey_raft_is_leader", "1 when this hub leads the federation log.");
      const commit = ctx.metrics.gauge("grey_raft_commit_index", "Commit index of the federation log.");
      ctx.metrics.collect(() => {
        if (!started) return;
        const s = l.driver.status();
        term.set({}, s.term);
        leader.set({}, l.isLeader() ? 1 : 0);
        commit.set({}, s.commit);
      });
    },
    async stop() {
      stopRotation?.();
      for (const t of timers) clearInterval(t);
      timers = [];
      await gossip?.stop();
      gossip = undefined;
      await log?.stop();
      log = undefined;
      started = false;
    },
  };
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

/** Followers send writers to the leader: 307 + Location, or 503 naming the leader (member id) when its URL is unknown. */
export function redirectWritesToLeader(log: Pick<FederationLog, "isLeader" | "leaderApi">): MiddlewareHandler {
  return async function redirectWritesToLeader(c, next) {
    if (SAFE.has(c.req.method) || log.isLeader()) return next();
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
