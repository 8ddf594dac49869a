/**
 * `grey-hub run`: registry, CA, libp2p node (DHT server, provider record under
 * the federation key), protocol handlers, and the mTLS API. Writes
 * DIR/run.json once everything is ready; stops in order on SIGINT/SIGTERM.
 */
import { readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { createLogger, type LogLevel } from "../plugins/host/log.ts";
import { connectBootstrap, provideHub, sleep } from "../plugins/mesh-libp2p/discovery.ts";
import { loadOrCreateNodeKey, peerIdOf } from "../plugins/mesh-libp2p/node-key.ts";
import { createMeshNode } from "../plugins/mesh-libp2p/node.ts";
import { serve } from "../plugins/mesh-libp2p/rpc.ts";
import { writeFileAtomic } from "../plugins/sdk/fs.ts";
import { pemToDer } from "../plugins/sdk/identity.ts";
import { inboundStreamsPerProtocolMax } from "../plugins/sdk/limits.ts";
import { PROTOCOL_HEARTBEAT, PROTOCOL_JOIN, PROTOCOL_RENEW } from "../plugins/sdk/wire.ts";
import { createApiApp } from "./api/app.ts";
import { startApiServer } from "./api/server.ts";
import { loadCa } from "./ca/ca.ts";
import { caPaths } from "./ca/layout.ts";
import { hubCatalog } from "./catalog.ts";
import type { HubConfig } from "./config.ts";
import { parseHostPort } from "./config.ts";
import { Metrics } from "./metrics.ts";
import { heartbeatHandler, joinHandler, renewHandler } from "./node/handlers.ts";
import { watchExpiry } from "./node/expiry.ts";
import { openRegistry } from "./registry/index.ts";
import { loadAttestPolicy } from "./attest-policy/index.ts";
import { reprovideIntervalMs } from "../plugins/mesh-libp2p/constants.ts";
import { agreementsService } from "./agreements/service.ts";
import { AuditLog, auditRoutes } from "./audit/index.ts";
import { RateLimitedError, TokenBucketLimiter, rateLimit } from "./ratelimit/index.ts";
import { DEFAULT_GOVERNANCE, allowListRefusal, loadGovernance, peersMayConnect } from "./governance/policy.ts";
import { governance } from "./api/middleware/governance/index.ts";
import { ForbiddenError } from "../plugins/sdk/errors.ts";
import { startServices, type HubService, type HubServiceContext } from "./services.ts";
import { meshHealthService } from "../plugins/connector-health/mesh.ts";
import { peersPerRoundMax } from "../plugins/connector-health/index.ts";
import { fedlogService, type FedlogService } from "./fedlog/service.ts";
import { tasksService } from "./tasks/service.ts";
import { TASKS_DB } from "./tasks/store.ts";
import { DesiredView } from "./desired/store.ts";
import { desiredRoutes } from "./desired/routes.ts";

export const AUDIT_DB = "audit.db";

/** Services every hub runs, in start order. */
export function hubServices(fedlog: FedlogService = fedlogService()): HubService[] {
  // fedlog first: its follower redirect must run before the other services' routes; its
  // replication last: the log replays into the stores once every applier is registered.
  return [fedlog, agreementsService(fedlog), tasksService(fedlog), fedlog.replication, hubHealthService()];
}

/** Probes hub.json's configured connectors and the members heard from recently (libp2p ping); figures on /metrics. */
function hubHealthService() {
  return meshHealthService((ctx: HubServiceContext) => ({
    node: ctx.node, metrics: ctx.metrics, logger: ctx.logger, clock: ctx.clock, init: ctx.cfg.health,
    connectors: () => ctx.catalog.connectors().filter((c) => (ctx.cfg.resolvedConnectors.configured as readonly string[]).includes(c.platform)),
    peers: () => ctx.registry.list({ limit: peersPerRoundMax }).items
      .filter((m) => !m.revoked && ctx.registry.stateOf(m, new Date(ctx.clock.now())) !== "offline").map((m) => m.peerId),
  }));
}

export const RUN_FILE = "run.json";
export const REGISTRY_FILE = "hub.db";

export interface RunningHub {
  peerId: string;
  multiaddrs: string[];
  api: string;
  stop(): Promise<void>;
}

export async function startHub(cfg: HubConfig, logLevel: LogLevel = "info"): Promise<RunningHub> {
  const logger = createLogger("hub", logLevel);
  const clock = { now: () => Date.now() };
  const paths = caPaths(cfg.dataDir);
  const ca = await loadCa(cfg.dataDir);
  const key = await loadOrCreateNodeKey(cfg.dataDir);
  const registry = openRegistry(join(cfg.dataDir, REGISTRY_FILE), { heartbeatIntervalMs: cfg.heartbeatIntervalMs });
  const metrics = new Metrics();
  const policyFile = cfg.attestation.policyFile ? resolve(cfg.dataDir, cfg.attestation.policyFile) : undefined;
  const policy = policyFile ? loadAttestPolicy(policyFile) : undefined;
  const catalog = hubCatalog({ logger, clock }, policy?.verifiers, undefined, cfg.resolvedConnectors);
  const attestations = metrics.counter("grey_attestations_total", "Attestation verifications at join and renewal.", ["format", "result", "reason"]);

  const node = await createMeshNode({ privateKey: key, listen: cfg.listen, dhtMode: "server", ...(cfg.pskFile ? { pskFile: cfg.pskFile } : {}) });
  const hubCertPem = readFileSync(paths.hubCert, "utf8");
  // The audit log is signed with the hub's Ed25519 identity (the seed half of libp2p's raw key).
  const audit = AuditLog.open(join(cfg.dataDir, AUDIT_DB), { signingKey: key.raw.subarray(0, 32), clock });
  const governancePolicy = cfg.governanceFile ? loadGovernance(resolve(cfg.dataDir, cfg.governanceFile)) : DEFAULT_GOVERNANCE;
  const fedlog = fedlogService();
  // Desired state per cluster (hub/desired), in tasks.db; agents' changes arrive through the outbox (tasks service).
  const desired = DesiredView.open(join(cfg.dataDir, TASKS_DB));
  const ctx = {
    fedlog,
    desiredSince: (cluster: string, since: number) => {
      try {
        return desired.since(cluster, since);
      } catch (err) {
        logger.warn("desired state not sent with the heartbeat ack", { cluster, error: (err as Error).message });
        return undefined;
      }
    },
    peerVisible: (a: { org: string; peerId: string }, b: { org: string; peerId: string }) => peersMayConnect(governancePolicy, a, b),
    ca, hubCertDer: pemToDer(hubCertPem), registry, catalog, allowFormats: cfg.attestation.allow,
    memberCertTtlMs: cfg.memberCertTtlMs, clock, logger, audit,
    ...(policy ? { policy: { policy, org: cfg.org, cluster: policy.cluster ?? cfg.name } } : {}),
    onAttestation: (e: { format: string; ok: boolean; reason: string }) => attestations.inc({ format: e.format, result: e.ok ? "ok" : "refused", reason: e.reason }),
  };
  watchExpiry(registry, metrics, logger, clock);
  const rejected = metrics.counter("grey_protocol_rejected_total", "Protocol exchanges refused (bad input, refused credentials).", ["protocol"]);
  const streamLimiter = new TokenBucketLimiter({ ratePerSecond: cfg.streamRateLimit.perSecond, burst: cfg.streamRateLimit.burst, clock });
  const hooks = {
    // Per-peer budget first (a flood from one peer never slows the others), then the governance allow-lists.
    admit: (protocol: string, conn: { remotePeer: { toString(): string } }) => {
      const peer = conn.remotePeer.toString();
      const budget = streamLimiter.take(`peer:${peer}`, 1);
      if (!budget.ok) throw new RateLimitedError(peer, budget.retryAfterMs);
      if (protocol === PROTOCOL_JOIN) return; // the token decides who may join
      const m = registry.getByPeer(peer);
      if (!m) return; // the handler refuses non-members with its own error
      const refusal = allowListRefusal(governancePolicy, cfg.org, { org: m.org, peerId: peer });
      if (refusal) throw new ForbiddenError(refusal);
    },
    onRejected: (protocol: string, err: unknown, conn: { remotePeer: { toString(): string } }) => {
      rejected.inc({ protocol });
      logger.warn("rejected", { protocol, peer: conn.remotePeer.toString(), error: (err as Error).message ?? String(err) });
    },
  };
  const streamOpts = { maxInboundStreams: inboundStreamsPerProtocolMax };
  await node.handle(PROTOCOL_JOIN, serve(PROTOCOL_JOIN, joinHandler(ctx), hooks), streamOpts);
  await node.handle(PROTOCOL_RENEW, serve(PROTOCOL_RENEW, renewHandler(ctx), hooks), streamOpts);
  await node.handle(PROTOCOL_HEARTBEAT, serve(PROTOCOL_HEARTBEAT, heartbeatHandler(ctx), hooks), streamOpts);

  const stopping = new AbortController();
  if (cfg.bootstrap.length > 0) {
    await connectBootstrap(node, cfg.bootstrap, { signal: stopping.signal });
  }
  // Provide in the background, forever: a lone hub has no DHT peers yet, and
  // records expire; agents retry their lookups meanwhile.
  const providing = (async () => {
    while (!stopping.signal.aborted) {
      try {
        await provideHub(node, ca.fingerprint, AbortSignal.any([stopping.signal, AbortSignal.timeout(10_000)]));
        logger.debug("provided federation record");
        await sleep(reprovideIntervalMs, stopping.signal);
      } catch {
        await sleep(1000, stopping.signal).catch(() => {});
      }
    }
  })();

  const { host, port } = parseHostPort(cfg.api, "api");
  const limiter = new TokenBucketLimiter({ ratePerSecond: cfg.apiRateLimit.perSecond, burst: cfg.apiRateLimit.burst, clock });
  const app = createApiApp({
    registry, metrics, clock, heartbeatIntervalMs: cfg.heartbeatIntervalMs,
    governance: governance({ policy: governancePolicy, hubOrg: cfg.org }),
    rateLimit: rateLimit({ limiter, keyOf: (c) => (c.var.identity ? `cert:${c.var.identity.serial}` : `addr:${c.env?.incoming?.socket?.remoteAddress ?? "?"}`) }),
  });
  app.route("/v1/audit", auditRoutes({ log: audit }) as never);
  app.route("/v1/clusters", desiredRoutes({ view: desired, clock, knownCluster: (id) => registry.getByCluster(id) !== undefined }) as never);
  const peerId = peerIdOf(key);
  const stopServices = await startServices(hubServices(fedlog), {
    cfg, hubPeerId: peerId, node, registry, ca, catalog, app, audit, metrics, logger, clock,
  });
  const api = await startApiServer({
    host, port, app,
    caCertPem: ca.certPem,
    certPem: hubCertPem,
    keyPem: readFileSync(paths.hubKey, "utf8"),
  });

  const multiaddrs = node.getMultiaddrs().map((m) => m.toString());
  writeFileAtomic(join(cfg.dataDir, RUN_FILE), JSON.stringify({ peerId, multiaddrs, api: api.url, pid: process.pid }, null, 2) + "\n");
  logger.info("hub ready", { peerId, api: api.url, caFingerprint: ca.fingerprint, multiaddrs: multiaddrs.join(",") });

  return {
    peerId, multiaddrs, api: api.url,
    async stop() {
      stopping.abort(new Error("stopping"));
      rmSync(join(cfg.dataDir, RUN_FILE), { force: true });
      await Promise.race([
        Promise.allSettled([api.close(), node.stop(), providing]),
        sleep(3000),
      ]);
      await stopServices();
      desired.close();
      audit.close();
      registry.close();
    },
  };
}
