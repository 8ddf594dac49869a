/** Counts requests by matched route pattern (bounded cardinality) and status. */
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { Metrics } from "../../../metrics.ts";

export function requestMetrics(metrics: Metrics): MiddlewareHandler {
  const requests = metrics.counter("grey_api_requests_total", "HTTP API requests by route pattern and status.", ["route", "status"]);

  return async function requestMetrics(c, next) {
    await next();
    const route = routePath(c, -1);
    requests.inc({ route: route === "*" || route === "/*" ? "unmatched" : route, status: String(c.res.status) });
  };
}
