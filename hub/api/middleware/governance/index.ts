/**
 * Governance middleware: maps each request to an operation and asks the
 * governance policy whether the caller's trust boundary may perform it.
 * Refusals are 403 with the reason; requests with no mapped operation pass
 * (public routes, or routes that check for themselves).
 */
import type { Context, MiddlewareHandler } from "hono";
import { decide, type GovernancePolicy, type Operation } from "../../../governance/policy.ts";
import type { Env } from "../../types.ts";

export interface GovernanceOptions {
  policy: GovernancePolicy;
  hubOrg: string;
  /** The operation a request performs, and the cluster it targets if any; undefined: not governed. */
  operationOf?: (c: Context<Env>) => { op: Operation; cluster?: string } | undefined;
}

export function defaultOperationOf(c: Context<Env>): { op: Operation; cluster?: string } | undefined {
  const path = c.req.path;
  const write = c.req.method !== "GET" && c.req.method !== "HEAD";
  const cluster = /^\/v1\/clusters\/([^/]+)$/.exec(path)?.[1];
  const desiredOf = /^\/v1\/clusters\/([^/]+)\/desired(?:\/|$)/.exec(path)?.[1];
  if (desiredOf) return { op: write ? "desired.write" : "clusters.read", cluster: desiredOf };
  if (path.startsWith("/v1/clusters")) return cluster && cluster !== "healthy" ? { op: "clusters.read", cluster } : { op: "clusters.read" };
  if (path === "/metrics") return { op: "metrics.read" };
  if (path.startsWith("/v1/agreements")) return { op: write ? "agreements.apply" : "agreements.read" };
  if (path.startsWith("/v1/audit")) return { op: "audit.read" };
  if (path.startsWith("/v1/tasks")) return { op: write ? "tasks.submit" : "tasks.read" };
  return undefined;
}

export function governance(options: GovernanceOptions): MiddlewareHandler<Env> {
  const { policy, hubOrg } = options;
  if (!policy || !hubOrg) throw new Error("governance: policy and hubOrg are required");
  const operationOf = options.operationOf ?? defaultOperationOf;
  return async function governance(c, next) {
    const identity = c.var.identity;
    const target = operationOf(c);
    if (!identity || !target) return next();
    const d = decide(policy, hubOrg, identity, target.op, target.cluster);
    if (d.ok) return next();
    return c.json({ error: { code: "ERR_FORBIDDEN", message: d.reason } }, 403);
  };
}
