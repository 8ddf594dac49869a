/**
 * Carry out a peering plan through an injectable cloud client. Idempotent: links and routes that
 * already exist are left alone, so applying twice changes nothing the second time. On a failed
 * step, everything this run created is removed again (newest first) and PeeringApplyError names
 * the step; what existed before is never touched.
 */
import { GreyError } from "../sdk/errors.ts";
import { routeKey, type PeeringPlan, type PlannedLink, type PlannedRoute } from "./plan.ts";

export interface CloudNetworkClient {
  listLinks(options?: { signal?: AbortSignal }): Promise<string[]>;
  createLink(link: PlannedLink, options?: { signal?: AbortSignal }): Promise<void>;
  deleteLink(linkId: string, options?: { signal?: AbortSignal }): Promise<void>;
  listRoutes(network: string, routeTable: string, options?: { signal?: AbortSignal }): Promise<{ destination: string; via: string }[]>;
  createRoute(route: PlannedRoute, options?: { signal?: AbortSignal }): Promise<void>;
  deleteRoute(route: PlannedRoute, options?: { signal?: AbortSignal }): Promise<void>;
}

export class PeeringPlanError extends GreyError {
  constructor(readonly problems: readonly { path: string; message: string }[]) {
    super("ERR_PEERING_PLAN", problems.map((p) => `${p.path}: ${p.message}`).join("\n"));
  }
}

export class PeeringApplyError extends GreyError {
  constructor(readonly step: string, readonly rolledBack: number, readonly rollbackFailures: number, options?: { cause?: unknown }) {
    super("ERR_PEERING_APPLY", `${step} failed (${(options?.cause as Error | undefined)?.message ?? "error"}); rolled back ${rolledBack} step(s)${rollbackFailures ? `, ${rollbackFailures} rollback step(s) failed` : ""}`, options);
  }
}

export interface ApplyResult { createdLinks: string[]; createdRoutes: string[] }

export async function applyPlan(plan: PeeringPlan, client: CloudNetworkClient, options: { signal?: AbortSignal } = {}): Promise<ApplyResult> {
  if (plan.problems.length) throw new PeeringPlanError(plan.problems);
  const undo: { what: string; run: () => Promise<void> }[] = [];
  const result: ApplyResult = { createdLinks: [], createdRoutes: [] };
  let step = "list links";
  try {
    const have = new Set(await client.listLinks(options));
    for (const l of plan.links) {
      if (have.has(l.id)) continue;
      step = `create ${l.kind} ${l.id}`;
      await client.createLink(l, options);
      undo.push({ what: step, run: () => client.deleteLink(l.id, options) });
      result.createdLinks.push(l.id);
    }
    const tables = new Map<string, Set<string>>();
    for (const r of plan.routes) {
      const t = `${r.network}|${r.routeTable}`;
      if (!tables.has(t)) {
        step = `list routes of ${r.network} ${r.routeTable}`;
        tables.set(t, new Set((await client.listRoutes(r.network, r.routeTable, options)).map((x) => `${x.destination}|${x.via}`)));
      }
      if (tables.get(t)!.has(`${r.destination}|${r.via}`)) continue;
      step = `create route ${routeKey(r)} via ${r.via}`;
      await client.createRoute(r, options);
      undo.push({ what: step, run: () => client.deleteRoute(r, options) });
      result.createdRoutes.push(routeKey(r));
    }
    return result;
  } catch (err) {
    let failures = 0;
    for (const u of undo.reverse()) await u.run().catch(() => failures++);
    throw new PeeringApplyError(step, undo.length, failures, { cause: err });
  }
}
