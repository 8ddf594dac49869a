/** The leader's view of one peer's replication (etcd's tracker.Progress). */
import { assert } from "./assert.ts";

/**
 * probe: one append at a time until the follower's match is found;
 * replicate: pipelined appends up to the inflight window;
 * snapshot: waiting for a snapshot to be installed.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** Probe: an append is outstanding, wait for its answer or a heartbeat answer. */
  probeSent = false;
  /** Last index of each append in flight (replicate state), oldest first. */
  inflights: number[] = [];
  pendingSnapshot = 0;
  snapshotTicks = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Highest read-index sequence this peer has acknowledged in the current term. */
  readAck = 0;

  constructor(next: number, readonly inflightMax: number) {
    this.next = next;
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.length >= this.inflightMax;
      case "snapshot":
        return true;
    }
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.reset("probe");
  }

  becomeReplicate(): void {
    this.next = this.match + 1;
    this.reset("replicate");
  }

  becomeSnapshot(index: number): void {
    this.reset("snapshot");
    this.pendingSnapshot = index;
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.inflights = [];
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
  }

  /** An ack for index n arrived; returns whether match moved. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** Replicate state: entries up to `last` were sent optimistically. */
  sentEntries(last: number): void {
    assert(this.state === "replicate", "sentEntries outside replicate state");
    this.next = last + 1;
    this.inflights.push(last);
  }

  /** Acks up to `index` free their inflight slots. */
  freeInflightsTo(index: number): void {
    while (this.inflights.length > 0 && (this.inflights[0] as number) <= index) this.inflights.shift();
  }

  /**
   * A rejection of the append whose previous index was `rejected`; `hint` is
   * where the follower suggests probing. Returns false for stale rejections.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }
}
