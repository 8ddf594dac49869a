/**
 * Seats of a parent group (hierarchy.ts): the voters of a region or global
 * group are the current leaders of its child groups. A seat is never a shared
 * id moved between hubs (its term, vote and log would have to move with it);
 * each hub keeps its own member id and the parent's membership follows the
 * children's leadership through ordinary conf changes, one at a time:
 *
 *   child leader L (term t) ──claim {child, L, t, hubs}──▶ parent log (forwarded to the parent leader)
 *   parent leader: L learner → caught up → L voter → old holder removed (→ learner again as an observer)
 *
 * Claims are ordered by the child's term (Raft elects at most one leader per
 * term), so a stale leader's late claim never wins. Everything is
 * level-triggered — the claimer compares the parent's seat record with the
 * child's leadership, the reconciler compares the parent's membership with the
 * claims — so a restart or a lost reply just runs the next step again.
 * Between "new holder voter" and "old holder removed" a child has two voters
 * for one conf change; nothing else may interleave with a hand-off.
 */
import type { LeaderInfo, Membership, MembershipChange } from "../../sdk/consensus.ts";
import type { Logger } from "../../sdk/plugin.ts";
import type { NodeId } from "../core/index.ts";

/** A child group's claim on its parent seat, as recorded in the parent log. */
export interface SeatClaim {
  /** The child group (e.g. "region:eu"). */
  child: string;
  /** The child's leader when it claimed. */
  member: NodeId;
  /** That leader's term in the child group: claims are ordered by it. */
  childTerm: number;
  /** Every hub of the child group (observers of the parent when enabled). */
  hubs: NodeId[];
}

/** The state machine rule: does `next` replace the recorded claim? (Deterministic on every replica.) */
export function claimWins(current: SeatClaim | undefined, next: SeatClaim): boolean {
  if (!current) return true;
  if (next.childTerm !== current.childTerm) return next.childTerm > current.childTerm;
  return next.member === current.member && next.hubs.join(",") !== current.hubs.join(",");
}

export type SeatAction =
  | { kind: "addLearner" | "addVoter" | "remove"; member: NodeId; why: string }
  | { kind: "transfer"; to: NodeId; why: string };

export interface SeatPlanInput {
  self: NodeId;
  conf: Membership;
  claims: readonly SeatClaim[];
  /** Leader's view of a member's log (learner catch-up). */
  match(member: NodeId): number;
  commit: number;
  /** Child hubs that hold no seat follow the parent log as learners (they serve its state). */
  observers: boolean;
}

/** The next single conf change that moves the parent towards "voters = claimed child leaders". Undefined: nothing to do (or waiting for catch-up). */
export function planSeatChange(p: SeatPlanInput): SeatAction | undefined {
  const voters = new Set(p.conf.voters);
  const learners = new Set(p.conf.learners);
  const childOf = new Map<NodeId, string>();
  for (const c of p.claims) for (const h of [...c.hubs, c.member]) childOf.set(h, c.child);
  const holders = new Set(p.claims.map((c) => c.member));
  // 1. finish hand-offs: a child whose holder votes keeps no other voter
  for (const c of p.claims) {
    if (!voters.has(c.member)) continue;
    for (const v of p.conf.voters) {
      if (v === c.member || childOf.get(v) !== c.child || holders.has(v)) continue;
      if (v === p.self) return { kind: "transfer", to: c.member, why: `hand ${c.child}'s seat over: the leader steps aside first` };
      return { kind: "remove", member: v, why: `${c.child} is led by ${c.member} now` };
    }
  }
  // 2. seat the claimed leaders: learner, then voter once caught up
  for (const c of p.claims) {
    if (voters.has(c.member)) continue;
    if (!learners.has(c.member)) return { kind: "addLearner", member: c.member, why: `${c.child}'s new leader catches up` };
    if (p.match(c.member) >= p.commit) return { kind: "addVoter", member: c.member, why: `${c.child}'s new leader takes its seat` };
  }
  // 3. observers: every other hub of a child follows the log
  if (p.observers) {
    for (const c of p.claims) for (const h of c.hubs) {
      if (!voters.has(h) && !learners.has(h) && !holders.has(h)) return { kind: "addLearner", member: h, why: `observer of ${c.child}` };
    }
  }
  return undefined;
}

/** The parent group as the seat keeper sees it from this hub. */
export interface SeatParent {
  leader(): LeaderInfo | undefined;
  membership(): Membership;
  progress(): ReadonlyMap<NodeId, { match: number }> | undefined;
  status(): { commit: number };
  changeMembership(change: MembershipChange): Promise<void>;
  transferLeadership(to: NodeId): Promise<void>;
  /** Claims recorded in the parent log. */
  claims(): SeatClaim[];
  /** Write a claim through the parent log (from any hub; forwarded to the parent leader). */
  claim(c: SeatClaim): Promise<void>;
  /** Before a hub is added: make sure every parent member can reach it (e.g. its address in the parent log). */
  prepare?(member: NodeId): Promise<void>;
}

/** The child group this hub belongs to. */
export interface SeatChild {
  readonly name: string;
  leader(): LeaderInfo | undefined;
  status(): { term: number };
  /** Every hub of the child group (voters and learners). */
  hubs(): NodeId[];
}

export interface SeatKeeperOptions {
  self: NodeId;
  everyMs: number;
  observers?: boolean;
  logger?: Logger;
  /** Every conf change made (tests, metrics). */
  onChange?: (a: SeatAction) => void;
}

/**
 * Runs on every hub of a child group: while it leads the child, it claims the
 * parent seat; while it leads the parent, it reconciles the parent's
 * membership with the claims (one step per round). Returns a stop function.
 */
export function keepSeats(child: SeatChild, parent: SeatParent, o: SeatKeeperOptions): () => void {
  let busy = false;
  const round = async () => {
    const cl = child.leader();
    if (cl?.self) {
      const term = child.status().term;
      const hubs = [...child.hubs()].sort((a, b) => a - b);
      const mine: SeatClaim = { child: child.name, member: o.self, childTerm: term, hubs };
      const current = parent.claims().find((c) => c.child === child.name);
      if (claimWins(current, mine)) {
        await parent.claim(mine);
        o.logger?.info("parent seat claimed", { child: child.name, term });
      }
    }
    if (!parent.leader()?.self) return;
    const progress = parent.progress();
    const a = planSeatChange({
      self: o.self, conf: parent.membership(), claims: parent.claims(), commit: parent.status().commit,
      match: (m) => progress?.get(m)?.match ?? 0, observers: o.observers ?? true,
    });
    if (!a) return;
    o.logger?.info("parent seat change", { ...a });
    if (a.kind === "transfer") await parent.transferLeadership(a.to);
    else {
      if (a.kind === "addLearner") await parent.prepare?.(a.member);
      await parent.changeMembership({ kind: a.kind, member: a.member });
    }
    o.onChange?.(a);
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    round().catch((err) => o.logger?.debug("seat round failed (next round retries)", { error: (err as Error).message })).finally(() => (busy = false));
  }, o.everyMs);
  return () => clearInterval(timer);
}
