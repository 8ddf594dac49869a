/**
 * Hybrid logical clocks (Kulkarni et al., 2014): timestamps that follow
 * physical time closely, never go backwards, and order causally related
 * events across nodes whose clocks disagree. Ties between nodes break on the
 * node id, so every timestamp is unique and the order is total — which is
 * what makes last-writer-wins merges deterministic on every replica.
 */
import { GreyError } from "../../sdk/errors.ts";
import type { Clock } from "../../sdk/plugin.ts";

/** A remote timestamp further ahead of our physical clock than this is refused (ClockSkewError), not adopted. */
export const hlcMaxDriftMs = 60_000;
/** Logical counter bound within one millisecond; beyond it the clock waits for physical time (ClockSkewError). */
export const hlcLogicalMax = 0xffff;

export interface Hlc {
  readonly wall: number;
  readonly logical: number;
  readonly node: string;
}

export class ClockSkewError extends GreyError {
  constructor(message: string) {
    super("ERR_CLOCK_SKEW", message);
  }
}

export function compareHlc(a: Hlc, b: Hlc): number {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

export const hlcZero: Hlc = { wall: 0, logical: 0, node: "" };

export class HybridClock {
  private last: Hlc;
  constructor(readonly node: string, private readonly clock: Clock, private readonly maxDriftMs = hlcMaxDriftMs) {
    this.last = { wall: 0, logical: 0, node };
  }

  /** Timestamp for a local event. */
  now(): Hlc {
    const pt = this.clock.now();
    const wall = Math.max(pt, this.last.wall);
    const logical = wall === this.last.wall ? this.last.logical + 1 : 0;
    return this.set(wall, logical);
  }

  /** Merge a remote timestamp (message receipt); returns the timestamp of the receive event. */
  receive(remote: Hlc): Hlc {
    const pt = this.clock.now();
    if (remote.wall - pt > this.maxDriftMs) {
      throw new ClockSkewError(`remote clock of ${remote.node} is ${remote.wall - pt} ms ahead (limit ${this.maxDriftMs} ms)`);
    }
    const wall = Math.max(pt, this.last.wall, remote.wall);
    let logical: number;
    if (wall === this.last.wall && wall === remote.wall) logical = Math.max(this.last.logical, remote.logical) + 1;
    else if (wall === this.last.wall) logical = this.last.logical + 1;
    else if (wall === remote.wall) logical = remote.logical + 1;
    else logical = 0;
    return this.set(wall, logical);
  }

  private set(wall: number, logical: number): Hlc {
    if (logical > hlcLogicalMax) throw new ClockSkewError(`hybrid clock logical counter overflow at ${wall}`);
    this.last = { wall, logical, node: this.node };
    return this.last;
  }
}
