/**
 * When a running task is complete, and with what outcome: a pure function of
 * its stored subtasks and plan, so the scheduler (one hub) and every hub
 * applying a replicated `task-finished` / `task-reducer-added` compute the
 * same result bytes without carrying them through the federation log.
 */
import { aggregate, reducerInput } from "./spec.ts";
import type { StoredPlan, SubtaskRow } from "./store.ts";

export type Completion =
  | { kind: "wait" }
  | { kind: "reduce"; input: Uint8Array }
  | { kind: "finish"; outcome: { result?: Uint8Array; error?: string }; event: "completed" | "failed" };

export function completion(plan: StoredPlan, subs: readonly SubtaskRow[]): Completion {
  const failed = subs.find((s) => s.state === "failed");
  if (failed) return { kind: "finish", outcome: { error: `subtask ${failed.id} failed: ${failed.error}` }, event: "failed" };
  if (subs.some((s) => s.state !== "done")) return { kind: "wait" };
  const maps = subs.filter((s) => s.kind === "map").map((s) => s.output ?? new Uint8Array());
  const reduce = subs.find((s) => s.kind === "reduce");
  try {
    if (plan.aggregate.kind === "reducer") {
      if (!reduce) return { kind: "reduce", input: reducerInput(maps) };
      return { kind: "finish", outcome: { result: reduce.output ?? new Uint8Array() }, event: "completed" };
    }
    return { kind: "finish", outcome: { result: aggregate(plan.aggregate.kind, maps, plan.aggregate.separator) }, event: "completed" };
  } catch (err) {
    return { kind: "finish", outcome: { error: (err as Error).message }, event: "failed" };
  }
}
