/**
 * Agent services: the parts of a running agent beyond membership (task
 * execution, local store and outbox, ...). Started in order once the libp2p
 * node runs and the membership is loaded, stopped in reverse order.
 */
import type { PeerId } from "@libp2p/interface";
import type { Catalog } from "../plugins/host/catalog.ts";
import type { MeshNode } from "../plugins/mesh-libp2p/node.ts";
import type { NodeIdentity } from "../plugins/sdk/attestor.ts";
import type { Clock, Logger } from "../plugins/sdk/plugin.ts";
import type { Membership } from "./state.ts";
import { discardMetrics, meshHealthService } from "../plugins/connector-health/mesh.ts";
import { agentSettings, type AgentSettings } from "./catalog.ts";
import { tasksAgentService } from "./tasks/service.ts";

export interface AgentServiceContext {
  dataDir: string;
  peerId: string;
  node: MeshNode;
  catalog: Catalog;
  identity: NodeIdentity;
  /** The current membership (changes on renewal). */
  membership(): Membership;
  /** DER of the federation CA and of this node's current certificate. */
  caCertDer: Uint8Array;
  certDer(): Uint8Array;
  /** A connection to the hub (bootstrap or DHT lookup); throws when unreachable. */
  connectHub(signal?: AbortSignal): Promise<PeerId>;
  /** Subscribe to hub reachability changes (true after a successful heartbeat, false after a failure). */
  onHubReachable(fn: (reachable: boolean) => void): void;
  /** Peer ids this agent holds a verified session with (federation certificate checked). */
  verifiedPeers(): string[];
  /** Add a section to DIR/status.json, read each time the file is written. */
  reportStatus(section: string, read: () => unknown): void;
  logger: Logger;
  clock: Clock;
}

export interface AgentService {
  readonly name: string;
  start(ctx: AgentServiceContext): Promise<void>;
  stop(): Promise<void>;
}

/** Services every agent runs, in start order (settings: DIR/agent.json, loaded by cli.ts). */
export function agentServices(settings: AgentSettings = agentSettings()): AgentService[] {
  return [tasksAgentService({ pq: settings.pq }), agentHealthService(settings)];
}

/**
 * Probes agent.json's configured connectors (IMDS, metadata server, HSM...) and the verified peers
 * (libp2p ping); the figures go to status.json under `health` (peers: up, rttMs quantiles; connectors: up).
 */
function agentHealthService(settings: AgentSettings): AgentService {
  const svc = meshHealthService((ctx: AgentServiceContext) => {
    ctx.reportStatus("health", () => svc.snapshot() ?? null);
    return {
      node: ctx.node, metrics: discardMetrics, logger: ctx.logger, clock: ctx.clock, init: settings.health,
      connectors: () => ctx.catalog.connectors().filter((c) => (settings.connectors.configured as readonly string[]).includes(c.platform)),
      peers: () => ctx.verifiedPeers(),
    };
  });
  return svc;
}
