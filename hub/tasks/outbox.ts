/**
 * Receiving an agent's outbox: entries at or below the agent's high-water mark
 * were applied before and are skipped (the agent resends until acknowledged:
 * at-least-once there + idempotent here = exactly once). Results, records and
 * the new mark commit in one tasks.db transaction. Usage goes to the usage
 * meter afterwards (idempotent by record id, so a crash in between only
 * means the resend records it). The hub's signed audit log mirrors agent audit
 * records after commit (at most once there; tasks.db holds each exactly once).
 */
import { decodeCbor } from "../../plugins/sdk/codec.ts";
import { AuditBody, SubtaskResult, UsageBody, type OutboxEntry } from "../../plugins/sdk/wire-tasks.ts";
import type { UsageRecord } from "../billing/meter.ts";
import type { TaskStore } from "./store.ts";

export interface ApplyOutcome {
  highWater: number;
  applied: number;
  skipped: number;
  usage: UsageRecord[];
  audits: { subject: string; details: Record<string, unknown>; event: string }[];
  results: { applied: number; duplicate: number; unknown: number };
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
