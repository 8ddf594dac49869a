/**
 * PUT /v1/clusters/:id/desired/:key   {"value": "..."} -> 200 the entry now held (governance op "desired.write")
 * GET /v1/clusters/:id/desired        {items: [{key, value, at, source, origin, version}]}; ?changes=1 adds every change received
 *
 * A PUT is timestamped by this hub (hybrid: bumped past the entry it replaces)
 * and merged with the rule of rule.ts, like an agent's local change; the
 * cluster's agents receive it with their next heartbeat ack.
 */
import { Hono } from "hono";
import { MalformedInputError, NotFoundError } from "../../plugins/sdk/errors.ts";
import { IdSchema } from "../../plugins/sdk/wire.ts";
import type { Env } from "../api/types.ts";
import type { DesiredView } from "./store.ts";

export interface DesiredRoutesDeps {
  view: DesiredView;
  /** Is this a known cluster (a PUT to an unknown one is 404)? */
  knownCluster(id: string): boolean;
  clock: { now(): number };
}

const iso = (ms: number) => new Date(ms).toISOString();

function clusterParam(id: string): string {
  if (!IdSchema.safeParse(id).success) throw new MalformedInputError("cluster id: lowercase letters, digits and '-', at most 63");
  return id;
}

export function desiredRoutes(deps: DesiredRoutesDeps) {
  return new Hono<Env>()
    .put("/:id/desired/:key{.+}", async (c) => {
      const cluster = clusterParam(c.req.param("id"));
      if (!deps.knownCluster(cluster)) throw new NotFoundError(`no cluster ${JSON.stringify(cluster)}`);
      let body: unknown;
      try {
        body = await c.req.json();
      } catch {
        throw new MalformedInputError("body is not JSON");
      }
      const value = (body as { value?: unknown } | null)?.value;
      if (typeof value !== "string") throw new MalformedInputError('body must be {"value": "<string>"}');
      const who = c.var.identity ? `api:${c.var.identity.name ?? c.var.identity.cluster ?? c.var.identity.org}` : "api:client";
      const row = deps.view.put(cluster, c.req.param("key"), value, deps.clock.now(), who);
      return c.json({ cluster, ...row, atIso: iso(row.at) });
    })
    .get("/:id/desired", (c) => {
      const cluster = clusterParam(c.req.param("id"));
      const items = deps.view.list(cluster).map((r) => ({ ...r, atIso: iso(r.at) }));
      return c.json({ cluster, items, ...(c.req.query("changes") ? { changes: deps.view.changes(cluster) } : {}) });
    });
}
