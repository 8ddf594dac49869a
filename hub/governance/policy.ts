/**
 * Governance: which operations each trust boundary may perform, and who may
 * talk to this hub at all. Boundaries as in the seed:
 *   same-cluster  — internal PKI (a member acting on its own cluster)
 *   same-org      — same organisation, another cluster (or the hub's operators)
 *   different-org — full attestation + this policy
 * Admins of the hub's own organisation (its operators) may do everything.
 *
 * File (YAML or JSON):
 *   boundaries:
 *     same-org:      ["*"]
 *     different-org: [clusters.read, tasks.submit, tasks.read]
 *   allow:
 *     orgs: ["*"]          # organisations whose members/admins may call the API and protocols
 *     peers: []            # peer ids allowed regardless of org (e.g. partner hubs)
 */
import { readFileSync, statSync } from "node:fs";
import { z } from "zod";
import { parseConfigText } from "../../plugins/host/config-file.ts";
import { ConfigError } from "../../plugins/sdk/errors.ts";
import type { FederationIdentity } from "../../plugins/sdk/identity.ts";

/** Every operation a caller can be granted. */
export const OPERATIONS = [
  "clusters.read", "metrics.read", "agreements.read", "agreements.apply", "audit.read",
  "tasks.submit", "tasks.read", "peer.connect", "desired.write",
] as const;
export type Operation = (typeof OPERATIONS)[number];
export const BOUNDARIES = ["same-cluster", "same-org", "different-org"] as const;
export type Boundary = (typeof BOUNDARIES)[number];

/** Largest governance file read. Larger: refused at start. */
export const governanceFileBytesMax = 256 * 1024;

const Grant = z.union([z.literal("*"), z.enum(OPERATIONS)]);
const Shape = z.strictObject({
  boundaries: z.strictObject({
    "same-cluster": z.array(Grant).max(64).optional(),
    "same-org": z.array(Grant).max(64).optional(),
    "different-org": z.array(Grant).max(64).optional(),
  }),
  allow: z.strictObject({
    orgs: z.array(z.string().regex(/^(\*|[a-z0-9][a-z0-9-]{0,62})$/, "an org id or \"*\"")).max(1024).default(["*"]),
    peers: z.array(z.string().min(1).max(128)).max(1024).default([]),
  }).default({ orgs: ["*"], peers: [] }),
});

export interface GovernancePolicy {
  grants: Record<Boundary, ReadonlySet<Operation>>;
  allowOrgs: "*" | ReadonlySet<string>;
  allowPeers: ReadonlySet<string>;
}

const expand = (g: readonly (Operation | "*")[] | undefined): Set<Operation> => new Set(g?.includes("*") ? OPERATIONS : ((g ?? []) as Operation[]));

/**
 * The default when no file is given: everything inside the organisation;
 * other organisations may read cluster health (to re-route) and open peer
 * sessions, nothing else.
 */
export const DEFAULT_GOVERNANCE: GovernancePolicy = {
  grants: {
    "same-cluster": expand(["*"]),
    "same-org": expand(["*"]),
    "different-org": expand(["clusters.read", "peer.connect"]),
  },
  allowOrgs: "*",
  allowPeers: new Set(),
};

export function parseGovernance(text: string, file: string): GovernancePolicy {
  const { data, finish } = parseConfigText(text, file, Shape, "ERR_GOVERNANCE_POLICY");
  finish();
  return {
    grants: {
      "same-cluster": expand(data.boundaries["same-cluster"] ?? data.boundaries["same-org"] ?? ["*"]),
      "same-org": expand(data.boundaries["same-org"] ?? ["*"]),
      "different-org": expand(data.boundaries["different-org"] ?? []),
    },
    allowOrgs: data.allow.orgs.includes("*") ? "*" : new Set(data.allow.orgs),
    allowPeers: new Set(data.allow.peers),
  };
}

export function loadGovernance(file: string): GovernancePolicy {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (err) {
    throw new ConfigError([`governance policy ${file}: ${(err as Error).message}`]);
  }
  if (size > governanceFileBytesMax) throw new ConfigError([`governance policy ${file}: larger than ${governanceFileBytesMax} bytes`]);
  return parseGovernance(readFileSync(file, "utf8"), file);
}

export type Decision = { ok: true; boundary: Boundary } | { ok: false; boundary: Boundary | null; reason: string };

/**
 * May `caller` perform `op` on this hub (org `hubOrg`)? `targetCluster`
 * names the cluster the operation acts on, when there is one.
 */
export function decide(policy: GovernancePolicy, hubOrg: string, caller: Pick<FederationIdentity, "role" | "org" | "cluster" | "peerId">, op: Operation, targetCluster?: string): Decision {
  const refusal = allowListRefusal(policy, hubOrg, caller);
  if (refusal) return { ok: false, boundary: null, reason: refusal };
  if (caller.role === "admin" && caller.org === hubOrg) return { ok: true, boundary: "same-org" };
  const boundary: Boundary =
    caller.org !== hubOrg ? "different-org" : targetCluster !== undefined && caller.cluster === targetCluster ? "same-cluster" : "same-org";
  if (policy.grants[boundary].has(op)) return { ok: true, boundary };
  return { ok: false, boundary, reason: `${boundary} callers may not ${op} (governance policy)` };
}

/** Why the caller may not talk to this hub at all (org/peer allow-lists), or undefined when it may. */
export function allowListRefusal(policy: GovernancePolicy, hubOrg: string, caller: { org: string; peerId?: string }): string | undefined {
  if (caller.org === hubOrg || policy.allowOrgs === "*" || policy.allowOrgs.has(caller.org)) return undefined;
  if (caller.peerId !== undefined && policy.allowPeers.has(caller.peerId)) return undefined;
  return `organisation ${caller.org} is not on this hub's allow-list`;
}

/** May members `a` and `b` learn about each other and open a direct session? */
export function peersMayConnect(policy: GovernancePolicy, a: { org: string; peerId?: string }, b: { org: string; peerId?: string }): boolean {
  const allowed = (m: { org: string; peerId?: string }) =>
    policy.allowOrgs === "*" || policy.allowOrgs.has(m.org) || (m.peerId !== undefined && policy.allowPeers.has(m.peerId));
  if (!allowed(a) || !allowed(b)) return false;
  return a.org === b.org ? policy.grants["same-org"].has("peer.connect") : policy.grants["different-org"].has("peer.connect");
}
