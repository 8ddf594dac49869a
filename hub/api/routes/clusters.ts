/** GET /v1/clusters, /v1/clusters/healthy, /v1/clusters/:id */
import { Hono, type Context } from "hono";
import { MalformedInputError, NotFoundError } from "../../../plugins/sdk/errors.ts";
import { apiPageSizeMax } from "../../../plugins/sdk/limits.ts";
import { IdSchema } from "../../../plugins/sdk/wire.ts";
import { memberState, type Member, type Page } from "../../registry/index.ts";
import type { ApiDeps, Env } from "../types.ts";

export type ClusterView = {
  clusterId: string;
  org: string;
  region: string;
  peerId: string;
  multiaddrs: string[];
  state: "healthy" | "suspect" | "offline" | "revoked";
  lastHeartbeat: string | null;
  lastSeen: string;
  joinedAt: string;
  certNotAfter: string;
  attestation: { format: string; ok: boolean; failed?: string; claims: Record<string, string | number | boolean>; boundary?: string; verifiedAt?: string; expiresAt?: string };
  /** Present when the member lost its membership (failed re-attestation). */
  revocation?: { at: string; reason: string };
};

export function clusterView(m: Member, now: Date, heartbeatIntervalMs: number): ClusterView {
  const attestation: ClusterView["attestation"] = { format: m.attestation.format, ok: m.attestation.ok, claims: m.attestation.claims };
  if (m.attestation.failed !== undefined) attestation.failed = m.attestation.failed;
  for (const k of ["boundary", "verifiedAt", "expiresAt"] as const) if (m.attestation[k] !== undefined) attestation[k] = m.attestation[k];
  const view: ClusterView = {
    clusterId: m.clusterId,
    org: m.org,
    region: m.region,
    peerId: m.peerId,
    multiaddrs: m.multiaddrs,
    state: m.revoked ? "revoked" : memberState(m.lastSeen, now, heartbeatIntervalMs),
    lastHeartbeat: m.lastHeartbeat?.toISOString() ?? null,
    lastSeen: m.lastSeen.toISOString(),
    joinedAt: m.joinedAt.toISOString(),
    certNotAfter: m.certNotAfter.toISOString(),
    attestation,
  };
  if (m.revoked) view.revocation = { at: m.revoked.at.toISOString(), reason: m.revoked.reason };
  return view;
}

/** ?limit= (1..apiPageSizeMax, larger is capped) and ?after= (a cluster id). */
function paging(c: Context): { limit?: number; after?: string } {
  const limit = c.req.query("limit");
  const after = c.req.query("after");
  const out: { limit?: number; after?: string } = {};
  if (limit !== undefined) {
    if (!/^\d{1,9}$/.test(limit) || Number(limit) < 1) throw new MalformedInputError(`limit must be an integer from 1 (at most ${apiPageSizeMax} are returned)`);
    out.limit = Number(limit);
  }
  if (after !== undefined) {
    if (!IdSchema.safeParse(after).success) throw new MalformedInputError("after must be a cluster id");
    out.after = after;
  }
  return out;
}

export function clusterRoutes(deps: ApiDeps) {
  const now = () => new Date(deps.clock.now());
  const pageBody = (page: Page<Member>, at: Date) => {
    const body: { items: ClusterView[]; next?: string } = { items: page.items.map((m) => clusterView(m, at, deps.heartbeatIntervalMs)) };
    if (page.next !== undefined) body.next = page.next;
    return body;
  };

  return new Hono<Env>()
    .get("/", (c) => c.json(pageBody(deps.registry.list(paging(c)), now())))
    .get("/healthy", (c) => {
      const at = now();
      return c.json(pageBody(deps.registry.healthy(at, paging(c)), at));
    })
    .get("/:id", (c) => {
      const id = c.req.param("id");
      const m = IdSchema.safeParse(id).success ? deps.registry.getByCluster(id) : undefined;
      if (!m) throw new NotFoundError(`no cluster ${JSON.stringify(id.slice(0, 64))}`);
      return c.json(clusterView(m, now(), deps.heartbeatIntervalMs));
    });
}
