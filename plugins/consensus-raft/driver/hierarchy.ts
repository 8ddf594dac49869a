/**
 * Hierarchical consensus: groups compose cluster → region → global. Each
 * level is an ordinary Raft group; the members of a parent group are the
 * current leaders of its child groups (a region group of cluster leaders, a
 * global group of region leaders). Hub-and-spoke, full mesh and hierarchy
 * are configurations of the same code: a topology is only the list of
 * groups and which member of which child sits in each parent.
 */
import type { NodeId } from "../core/index.ts";

export type Scope = "cluster" | "region" | "global";

export interface GroupSpec {
  name: string;
  scope: Scope;
  /** Members (process ids at this level). */
  members: NodeId[];
  /** For region/global groups: the child groups whose leaders sit here, member i ↔ child i. */
  children?: string[];
}

export interface Site {
  id: NodeId;
  region: string;
  cluster: string;
}

/**
 * Topologies over the same sites:
 * - "hierarchical": one group per cluster, one per region (a seat per cluster), one global (a seat per region);
 * - "full-mesh": one global group of every site;
 * - "hub-and-spoke": one global group of the hub sites only (`hubs`), spokes are clients.
 */
export function topology(kind: "hierarchical" | "full-mesh" | "hub-and-spoke", sites: Site[], hubs: NodeId[] = []): GroupSpec[] {
  if (kind === "full-mesh") return [{ name: "global", scope: "global", members: sites.map((s) => s.id) }];
  if (kind === "hub-and-spoke") return [{ name: "global", scope: "global", members: [...hubs] }];
  const groups: GroupSpec[] = [];
  const regions = new Map<string, Set<string>>();
  for (const s of sites) {
    const cluster = `cluster:${s.region}/${s.cluster}`;
    let g = groups.find((x) => x.name === cluster);
    if (!g) groups.push((g = { name: cluster, scope: "cluster", members: [] }));
    g.members.push(s.id);
    (regions.get(s.region) ?? regions.set(s.region, new Set()).get(s.region)!).add(cluster);
  }
  const regionNames: string[] = [];
  for (const [region, clusters] of regions) {
    const name = `region:${region}`;
    regionNames.push(name);
    groups.push({ name, scope: "region", members: [...clusters].map((_, i) => seatId(name, i)), children: [...clusters] });
  }
  groups.push({ name: "global", scope: "global", members: regionNames.map((_, i) => seatId("global", i)), children: regionNames });
  return groups;
}

/** Seats of parent groups are ids of their own (a member process holds a seat while it leads its child group). */
function seatId(group: string, i: number): NodeId {
  let h = 0;
  for (const ch of group) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return 1_000_000 + (h % 100_000) * 100 + i + 1;
}
