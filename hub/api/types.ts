import type { MiddlewareHandler } from "hono";
import type { HttpBindings } from "@hono/node-server";
import type { FederationIdentity } from "../../plugins/sdk/identity.ts";
import type { Clock } from "../../plugins/sdk/plugin.ts";
import type { Metrics } from "../metrics.ts";
import type { Registry } from "../registry/index.ts";

/**
 * What the TLS server learned about the peer of a request: a verified
 * identity, a refused certificate (with the reason), or nothing presented.
 */
export type PeerAuth = { identity: FederationIdentity } | { refused: string } | { none: true };

export type Env = {
  Bindings: Partial<HttpBindings> & { peer?: PeerAuth };
  Variables: { identity: FederationIdentity };
};

/** The registry calls the API makes (read-only). */
export type ApiRegistry = Pick<Registry, "list" | "healthy" | "getByCluster" | "countByState" | "counters">;

export type ApiDeps = {
  registry: ApiRegistry;
  metrics: Metrics;
  clock: Clock;
  heartbeatIntervalMs: number;
  /** Per-client rate limit, applied after identification (key: certificate serial, else remote address). */
  rateLimit?: MiddlewareHandler<Env>;
  /** Governance (operations per trust boundary), applied after identification. */
  governance?: MiddlewareHandler<Env>;
};
