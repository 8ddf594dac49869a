/**
 * The hub's HTTP API (served over mTLS by server.ts):
 *   GET /v1/health            no client certificate needed
 *   GET /v1/clusters          ?limit=&after=  paged by cluster id
 *   GET /v1/clusters/healthy  ?limit=&after=
 *   GET /v1/clusters/:id
 *   GET /metrics              Prometheus text
 * Errors are JSON `{ error: { code, message } }`.
 */
import { Hono } from "hono";
import { apiBodyBytesMax } from "../../plugins/sdk/limits.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics.ts";
import { errorResponse, jsonError } from "./errors.ts";
import { bodyLimit } from "./middleware/body-limit/index.ts";
import { clientIdentity } from "./middleware/client-identity/index.ts";
import { requestMetrics } from "./middleware/request-metrics/index.ts";
import { clusterRoutes } from "./routes/clusters.ts";
import type { ApiDeps, Env } from "./types.ts";

export const HEALTH_PATH = "/v1/health";

export function createApiApp(deps: ApiDeps): Hono<Env> {
  if (!(deps.heartbeatIntervalMs > 0)) throw new Error(`createApiApp: heartbeatIntervalMs must be positive`);
  const { metrics, registry } = deps;
  const members = metrics.gauge("grey_members", "Federation members by state.", ["state"]);
  const joins = metrics.counter("grey_joins_total", "Member joins recorded.");
  const heartbeats = metrics.counter("grey_heartbeats_total", "Member heartbeats recorded.");
  metrics.collect(() => {
    for (const [state, n] of Object.entries(registry.countByState(new Date(deps.clock.now())))) members.set({ state }, n);
    const counters = registry.counters();
    joins.set({}, counters.joins);
    heartbeats.set({}, counters.heartbeats);
  });

  const app = new Hono<Env>();
  app.use("*", requestMetrics(metrics));
  app.use("*", clientIdentity({ publicPaths: [HEALTH_PATH] }));
  if (deps.rateLimit) app.use("*", deps.rateLimit);
  if (deps.governance) app.use("*", deps.governance);
  app.use("*", bodyLimit({ maxBytes: apiBodyBytesMax }));

  app.get(HEALTH_PATH, (c) => c.json({ status: "ok" }));
  app.route("/v1/clusters", clusterRoutes(deps));
  app.get("/metrics", (c) => c.body(metrics.render(), 200, { "content-type": PROMETHEUS_CONTENT_TYPE }));

  app.notFound((c) => jsonError(c, 404, "ERR_NOT_FOUND", `no route ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => errorResponse(c, err));
  return app;
}
