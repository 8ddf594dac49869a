/**
 * Rotating leadership: on a schedule, the current leader hands over to the
 * next voter (in id order, wrapping) with transferLeader, so no hub leads
 * the federation for long and a slow or suspect leader is cycled out. A
 * transfer costs at most one election: the target is caught up first and
 * campaigns at once (TimeoutNow); proposals are refused only meanwhile.
 * Only the leader acts; followers keep the timer but do nothing.
 */
import type { ConsensusGroup } from "../../sdk/consensus.ts";
import type { Logger } from "../../sdk/plugin.ts";

export interface RotationOptions {
  everyMs: number;
  logger?: Logger;
  /** Called after each successful hand-over (tests, metrics). */
  onRotated?: (from: number, to: number) => void;
}

/** The voter after `current` in id order (wrapping). */
export function nextLeader(voters: readonly number[], current: number): number | undefined {
  const sorted = [...voters].sort((a, b) => a - b);
  if (sorted.length < 2) return undefined;
  return sorted.find((v) => v > current) ?? sorted[0];
}

/** Starts rotating; returns a function that stops it. */
export function rotateLeadership(group: ConsensusGroup, opts: RotationOptions): () => void {
  let busy = false;
  const timer = setInterval(async () => {
    const l = group.leader();
    if (busy || !l?.self) return;
    const to = nextLeader(group.membership().voters, l.id);
    if (to === undefined) return;
    busy = true;
    try {
      await group.transferLeadership(to);
      opts.onRotated?.(l.id, to);
      opts.logger?.info("leadership rotated", { from: l.id, to });
    } catch (err) {
      opts.logger?.warn("leadership rotation failed", { to, error: (err as Error).message });
    } finally {
      busy = false;
    }
  }, opts.everyMs);
  return () => clearInterval(timer);
}
