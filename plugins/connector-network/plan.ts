/**
 * Network setup as a connector step: which networks (AWS VPCs, Azure VNets, GCP VPC networks,
 * on-prem sites) to join, how (same platform and account domain: native peering; across
 * platforms or to on-prem: a site-to-site VPN), and the routes each side's route tables need.
 * `planPeering` is pure and reports every problem at once (overlapping CIDRs on a link, or two
 * destinations of one network that overlap, which would make its routing ambiguous).
 * `applyPlan` (apply.ts) carries a valid plan out through an injectable cloud client.
 */
import { MalformedInputError } from "../sdk/errors.ts";
import { overlaps, parseCidr, type Cidr } from "./cidr.ts";

export type Platform = "aws" | "gcp" | "azure" | "onprem";

export interface NetworkSpec {
  /** Unique name, e.g. "aws:eu-west-1:vpc-0a1b". */
  id: string;
  platform: Platform;
  /** IPv4 and/or IPv6 blocks. */
  cidrs: readonly string[];
  /** Route tables to program (AWS route tables, Azure route tables, GCP: the network itself). */
  routeTables: readonly string[];
}

export interface PeeringRequest {
  networks: readonly NetworkSpec[];
  /** Pairs of network ids; "full-mesh" joins every pair. */
  links: readonly (readonly [string, string])[] | "full-mesh";
}

export type LinkKind = "peering" | "vpn";
export interface PlannedLink { id: string; a: string; b: string; kind: LinkKind }
export interface PlannedRoute { network: string; routeTable: string; destination: string; via: string }
export interface PlanProblem { path: string; message: string }

export interface PeeringPlan {
  links: PlannedLink[];
  routes: PlannedRoute[];
  problems: PlanProblem[];
}

/** Networks per request (and so links at most n(n-1)/2). */
export const networksMax = 256;
export const cidrsPerNetworkMax = 64;

export const linkId = (a: string, b: string) => (a < b ? `${a}<->${b}` : `${b}<->${a}`);
const routeKey = (r: PlannedRoute) => `${r.network}|${r.routeTable}|${r.destination}`;

export function planPeering(req: PeeringRequest): PeeringPlan {
  const problems: PlanProblem[] = [];
  if (req.networks.length > networksMax) problems.push({ path: "networks", message: `more than ${networksMax} networks` });
  const nets = new Map<string, { spec: NetworkSpec; cidrs: Cidr[] }>();
  req.networks.forEach((n, i) => {
    if (nets.has(n.id)) problems.push({ path: `networks.${i}.id`, message: `duplicate network id ${n.id}` });
    if (n.cidrs.length === 0 || n.cidrs.length > cidrsPerNetworkMax) problems.push({ path: `networks.${i}.cidrs`, message: `needs 1..${cidrsPerNetworkMax} CIDR blocks` });
    if (n.routeTables.length === 0) problems.push({ path: `networks.${i}.routeTables`, message: "needs at least one route table" });
    const cidrs: Cidr[] = [];
    n.cidrs.forEach((c, j) => {
      try {
        cidrs.push(parseCidr(c));
      } catch (err) {
        problems.push({ path: `networks.${i}.cidrs.${j}`, message: (err as MalformedInputError).message });
      }
    });
    for (let x = 0; x < cidrs.length; x++) for (let y = x + 1; y < cidrs.length; y++) {
      if (overlaps(cidrs[x]!, cidrs[y]!)) problems.push({ path: `networks.${i}.cidrs`, message: `${cidrs[x]!.text} overlaps ${cidrs[y]!.text} within ${n.id}` });
    }
    nets.set(n.id, { spec: n, cidrs });
  });

  const ids = [...nets.keys()];
  const pairs = req.links === "full-mesh"
    ? ids.flatMap((a, i) => ids.slice(i + 1).map((b) => [a, b] as const))
    : req.links;
  const links = new Map<string, PlannedLink>();
  pairs.forEach(([a, b], i) => {
    const na = nets.get(a);
    const nb = nets.get(b);
    if (!na || !nb || a === b) {
      problems.push({ path: `links.${i}`, message: a === b ? `${a} linked to itself` : `unknown network ${!na ? a : b}` });
      return;
    }
    for (const ca of na.cidrs) for (const cb of nb.cidrs) {
      if (overlaps(ca, cb)) problems.push({ path: `links.${i}`, message: `${a} ${ca.text} overlaps ${b} ${cb.text}: traffic between them cannot be routed` });
    }
    const kind: LinkKind = na.spec.platform === nb.spec.platform && na.spec.platform !== "onprem" ? "peering" : "vpn";
    const id = linkId(a, b);
    links.set(id, { id, a: a < b ? a : b, b: a < b ? b : a, kind });
  });

  // Each network's destinations (its peers' blocks) must not overlap one another.
  const routes = new Map<string, PlannedRoute>();
  for (const [id, n] of nets) {
    const dests: { cidr: Cidr; via: PlannedLink; peer: string }[] = [];
    for (const l of links.values()) {
      if (l.a !== id && l.b !== id) continue;
      const peer = l.a === id ? l.b : l.a;
      for (const c of nets.get(peer)!.cidrs) dests.push({ cidr: c, via: l, peer });
    }
    for (let x = 0; x < dests.length; x++) for (let y = x + 1; y < dests.length; y++) {
      const [d1, d2] = [dests[x]!, dests[y]!];
      if (d1.peer !== d2.peer && overlaps(d1.cidr, d2.cidr)) problems.push({ path: `networks.${id}`, message: `${id} would route ${d1.cidr.text} to ${d1.peer} and ${d2.cidr.text} to ${d2.peer}: ambiguous` });
    }
    for (const rt of n.spec.routeTables) for (const d of dests) {
      const r = { network: id, routeTable: rt, destination: d.cidr.text, via: d.via.id };
      routes.set(routeKey(r), r);
    }
  }
  const sorted = <T>(xs: Iterable<T>, key: (x: T) => string) => [...xs].sort((p, q) => (key(p) < key(q) ? -1 : key(p) > key(q) ? 1 : 0));
  return { links: sorted(links.values(), (l) => l.id), routes: sorted(routes.values(), routeKey), problems };
}

export { routeKey };
