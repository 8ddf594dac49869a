/**
 * The connector-health service on a running node: probes the connectors the node's config lists
 * (hub.json / agent.json `connectors`) and its verified peers with libp2p ping over the federation
 * mesh (every node runs the ping service). Hub and agent service hooks wrap this (hub/runtime.ts
 * hubServices, agent/services.ts agentServices).
 */
import { peerIdFromString } from "@libp2p/peer-id";
import type { MeshNode } from "../mesh-libp2p/node.ts";
import { peerBytes } from "../mesh-libp2p/rpc.ts";
import type { Connector } from "../sdk/connector.ts";
import type { Clock, Logger } from "../sdk/plugin.ts";
import { connectorHealth, probeIntervalMsDefault, probeTimeoutMsDefault, type MetricsSink, type PeerTarget } from "./index.ts";

export interface MeshHealthContext {
  node: Pick<MeshNode, "services">;
  /** The connectors to probe (the configured ones only: a default connector has no endpoint worth watching). */
  connectors(): readonly Connector[];
  /** Peer ids to probe. */
  peers(): readonly string[];
  metrics: MetricsSink;
  logger: Logger;
  clock: Clock;
}

export interface MeshHealthInit {
  intervalMs?: number;
  timeoutMs?: number;
}

/** A metrics sink that keeps nothing (the agent has no /metrics: its figures go to status.json). */
export const discardMetrics: MetricsSink = {
  gauge: () => ({ set() {} }),
  counter: () => ({ inc() {} }),
};

export function pingTarget(node: Pick<MeshNode, "services">, peer: string): PeerTarget {
  return {
    peer,
    async ping({ signal }) {
      await node.services.ping.ping(peerIdFromString(peer), { signal });
    },
    /** Framed protocol traffic with this peer (plugins/mesh-libp2p/rpc.ts per-peer table). */
    bytes: () => peerBytes.get(peer) ?? { sent: 0, received: 0 },
  };
}

/** Build and start the service; `stop()` ends the schedule. */
export async function startMeshHealth(ctx: MeshHealthContext, init: MeshHealthInit = {}) {
  const svc = connectorHealth({ intervalMs: init.intervalMs ?? probeIntervalMsDefault, timeoutMs: init.timeoutMs ?? probeTimeoutMsDefault })({
    logger: ctx.logger, clock: ctx.clock, metrics: ctx.metrics,
    connectors: ctx.connectors,
    peers: () => ctx.peers().map((p) => pingTarget(ctx.node, p)),
  });
  await svc.start();
  return svc;
}

/** The health figures each node reports: per-peer up and RTT quantiles, per-platform up. */
export const HealthSettingsDefaults = { intervalMs: probeIntervalMsDefault, timeoutMs: probeTimeoutMsDefault };

/** A start/stop service (hub or agent hook) running startMeshHealth with what `bind` takes from the hook's context. */
export function meshHealthService<C>(bind: (ctx: C) => MeshHealthContext & { init?: MeshHealthInit }) {
  let svc: Awaited<ReturnType<typeof startMeshHealth>> | undefined;
  return {
    name: "connector-health",
    async start(ctx: C) {
      const b = bind(ctx);
      svc = await startMeshHealth(b, b.init);
    },
    async stop() {
      await svc?.stop();
    },
    /** Last figures (undefined before start). */
    snapshot: () => svc?.snapshot(),
  };
}
