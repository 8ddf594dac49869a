/**
 * Hub services: the parts of a running hub beyond join/heartbeat (agreements,
 * audit, tasks, consensus...). Each is started in order with the shared
 * context after the node and registry exist and before the API listens (so
 * it can mount routes), and stopped in reverse order.
 */
import type { Hono } from "hono";
import type { Catalog } from "../plugins/host/catalog.ts";
import type { MeshNode } from "../plugins/mesh-libp2p/node.ts";
import type { Clock, Logger } from "../plugins/sdk/plugin.ts";
import type { Env } from "./api/types.ts";
import type { AuditLog } from "./audit/index.ts";
import type { Ca } from "./ca/ca.ts";
import type { HubConfig } from "./config.ts";
import type { Metrics } from "./metrics.ts";
import type { Registry } from "./registry/index.ts";

export interface HubServiceContext {
  cfg: HubConfig;
  hubPeerId: string;
  node: MeshNode;
  registry: Registry;
  ca: Ca;
  catalog: Catalog;
  /** The API app: mount routes in start(); the server starts after every service. */
  app: Hono<Env>;
  audit: AuditLog;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
}

export interface HubService {
  readonly name: string;
  start(ctx: HubServiceContext): Promise<void>;
  stop(): Promise<void>;
}

export { startServices } from "../plugins/host/services.ts";
