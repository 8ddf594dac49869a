/**
 * Which Raft groups a hub runs, and which group owns which command.
 *
 * - level "flat": one group, the federation log ("federation"; raft.db, fedlog.db) — every command.
 *   Full mesh and hub-and-spoke are this level with different `peers`.
 * - level "region": one group "region:R" (raft-region-R.db, fedlog-region-R.db) — every command.
 * - level "global": the region group plus "global" (raft-global.db, fedlog-global.db), whose voters
 *   are the region leaders (seats.ts). Cluster membership and attestation (member-*) stay in the
 *   region log; agreements, task assignments and seat claims go to the global log; hub-* commands
 *   are per group (each log knows its own hubs). Heartbeat last-seen is not a log at all (CRDT gossip).
 */
import { DEFAULT_RAFT_GROUP } from "../../plugins/consensus-raft/driver/wire.ts";
import type { FedlogCommand } from "./commands.ts";
import { FEDLOG_DB, RAFT_DB } from "./constants.ts";

export type ConsensusLevel = "flat" | "region" | "global";

export interface GroupPlan {
  group: string;
  raftFile: string;
  fedlogFile: string;
  /** Owns cluster membership (member-* into the registry). */
  members: boolean;
}

const files = (group: string) => {
  const slug = group.replace(/[^a-z0-9-]/g, "-");
  return { raftFile: `raft-${slug}.db`, fedlogFile: `fedlog-${slug}.db` };
};

export function groupPlans(level: ConsensusLevel, region: string | undefined): { home: GroupPlan; global?: GroupPlan } {
  if (level === "flat") return { home: { group: DEFAULT_RAFT_GROUP, raftFile: RAFT_DB, fedlogFile: FEDLOG_DB, members: true } };
  const r = `region:${region}`;
  const home = { group: r, ...files(r), members: true };
  return level === "region" ? { home } : { home, global: { group: "global", ...files("global"), members: false } };
}

/** Commands the global log owns when there is one. */
const GLOBAL: ReadonlySet<FedlogCommand["type"]> = new Set(["agreement-applied", "task-assigned", "seat-claimed"]);

export function ownsGlobally(type: FedlogCommand["type"]): boolean {
  return GLOBAL.has(type);
}

/** API writes under these paths change global state: a follower sends them to the global leader. */
export function isGlobalRoute(path: string): boolean {
  return path === "/v1/agreements" || path.startsWith("/v1/agreements/");
}
