/**
 * Receiving an agent's outbox: entries at or below the agent's high-water mark
 * were applied before and are skipped (the agent resends until acknowledged:
 * at-least-once there + idempotent here = exactly once). Results, records and
 * the new mark commit in one tasks.db transaction. Usage goes to the usage
 * meter afterwards (idempotent by record id, so a crash in between only
 * means the resend records it) under the agreement the hub knows the subtask
 * ran under (`meteredUsage`), whatever the agent claims. The hub's signed audit log mirrors agent audit
 * records after commit (at most once there; tasks.db holds each exactly once).
 */
import { decodeCbor } from "../../plugins/sdk/codec.ts";
import { AuditBody, DesiredChangeBody, SubtaskResult, UsageBody, type OutboxEntry } from "../../plugins/sdk/wire-tasks.ts";
import { agreementId } from "../agreements/store.ts";
import type { UsageRecord } from "../billing/meter.ts";
import { DesiredView } from "../desired/store.ts";
import type { TaskStore } from "./store.ts";

export interface ApplyOutcome {
  highWater: number;
  applied: number;
  skipped: number;
  usage: UsageRecord[];
  audits: { subject: string; details: Record<string, unknown>; event: string }[];
  results: { applied: number; duplicate: number; unknown: number };
}

/** Pushes (from any agents) committed in one tasks.db transaction: one fsync for all that arrived while the previous commit ran. */
export const pushesPerCommitMax = 64;

/**
 * Group commit of outbox pushes: each push applies in its own savepoint (a
 * bad one fails alone) inside one transaction per flush; every caller's
 * promise settles only after that transaction committed, so an agent is
 * acknowledged only for what is on disk.
 */
export class OutboxReceiver {
  readonly #queue: { peerId: string; clusterId: string; entries: OutboxEntry[]; settle: (r: ApplyOutcome | Error) => void }[] = [];
  #scheduled = false;
  readonly stats = { commits: 0, pushes: 0 };
  constructor(private readonly store: TaskStore, private readonly pushesMax = pushesPerCommitMax) {}

  apply(peerId: string, clusterId: string, entries: OutboxEntry[]): Promise<ApplyOutcome> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ peerId, clusterId, entries, settle: (r) => (r instanceof Error ? reject(r) : resolve(r)) });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush()); // after pending I/O: pushes that arrived meanwhile join this commit
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    while (this.#queue.length) {
      const batch = this.#queue.splice(0, this.pushesMax);
      let outcomes: (ApplyOutcome | Error)[];
      try {
        outcomes = this.store.tx(() => batch.map((p) => {
          try {
            return applyOutbox(this.store, p.peerId, p.clusterId, p.entries);
          } catch (err) {
            return err as Error;
          }
        }));
        this.stats.commits++;
        this.stats.pushes += batch.length;
      } catch (err) {
        outcomes = batch.map(() => err as Error);
      }
      batch.forEach((p, i) => p.settle(outcomes[i]!));
    }
  }
}

/** Failure reasons worth another attempt on another cluster. */
export const retryableReasons = new Set(["aborted", "disabled"]);

export function applyOutbox(store: TaskStore, peerId: string, clusterId: string, entries: OutboxEntry[]): ApplyOutcome {
  const out: ApplyOutcome = { highWater: 0, applied: 0, skipped: 0, usage: [], audits: [], results: { applied: 0, duplicate: 0, unknown: 0 } };
  store.tx(() => {
    let hw = store.highWater(peerId);
    for (const e of [...entries].sort((a, b) => a.seq - b.seq)) {
      if (e.seq <= hw) {
        out.skipped++;
        continue;
      }
      const body = decodeCbor(e.body, 1 << 20);
      if (e.kind === "result") {
        const r = SubtaskResult.safeParse(body);
        if (r.success) {
          const what = store.applyResult(r.data, clusterId, (reason) => retryableReasons.has(reason), (taskId) => {
            const t = store.task(taskId);
            return t ? store.plan(t).maxAttempts : 1;
          });
          if (what === "applied" || what === "retry") out.results.applied++;
          else out.results[what]++;
        }
      } else if (e.kind === "usage") {
        const u = UsageBody.safeParse(body);
        if (u.success) out.usage.push(u.data);
      } else if (e.kind === "audit") {
        const a = AuditBody.safeParse(body);
        if (a.success) out.audits.push({ subject: a.data.subject, details: a.data.details, event: a.data.event });
      } else if (e.kind === "desired-change") {
        // merged into the cluster's desired state in this same transaction (hub/desired: last writer wins, hub wins ties)
        const d = DesiredChangeBody.safeParse(body);
        if (d.success) DesiredView.of(store.db).applyAgentChange(peerId, clusterId, d.data);
      }
      store.recordAgentRecord(peerId, e.seq, e.kind, e.at, e.body);
      hw = e.seq;
      out.applied++;
    }
    store.setHighWater(peerId, hw);
    out.highWater = hw;
  });
  return out;
}

/**
 * The usage record to meter for an agent's usage report, or undefined when
 * it is not billable. A subtask that ran on a cluster of another org than the
 * task's consumer is metered under the agreement provider -> consumer (the one
 * the scheduler admitted it under: the pair decides it, the agent's claim does
 * not); same-org work only under an agreement the task named. Deterministic,
 * so a replayed report yields the same record (the meter counts it once).
 */
export function meteredUsage(store: TaskStore, usage: UsageRecord, providerOrg: string, hubOrg: string): UsageRecord | undefined {
  const sub = store.subtask(usage.subtaskId);
  const task = sub && store.task(sub.task_id);
  if (!task) return undefined;
  const consumer = task.consumer ?? hubOrg;
  const under = providerOrg !== consumer ? agreementId(providerOrg, consumer) : store.plan(task).agreementId;
  return under ? { ...usage, agreementId: under } : undefined;
}
