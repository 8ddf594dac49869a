/**
 * Every change the task pipeline makes to task state goes through a ledger:
 * the local one writes DIR/tasks.db directly (no consensus); the replicated
 * one (replicated.ts) writes federation log commands that every hub applies
 * into its own tasks.db. The scheduler decides from its store, the ledger
 * records the decision.
 */
import type { OutboxEntry } from "../../plugins/sdk/wire-tasks.ts";
import { OutboxReceiver, type ApplyOutcome } from "./outbox.ts";
import type { TaskPlan } from "./spec.ts";
import type { CrossOrgAdmission, SubtaskRow, TaskStore } from "./store.ts";

export interface Assignment {
  id: string;
  clusterId: string;
  peerId: string;
  crossOrg?: CrossOrgAdmission;
}

type Maybe<T> = T | Promise<T>;

export interface TaskLedger {
  submit(id: string, plan: TaskPlan, origin: string, consumer?: string): Maybe<void>;
  /** Assignments of one scheduler tick, recorded before any is delivered. */
  assign(list: Assignment[]): Maybe<void>;
  /** Delivery refused or failed: pending again, the attempt not counted. */
  undo(row: SubtaskRow, why: string): Maybe<void>;
  /** Failover: pending again, or failed after `maxAttempts`. */
  release(row: SubtaskRow, maxAttempts: number, why: string): Maybe<"pending" | "failed" | "unchanged">;
  preempt(row: SubtaskRow, why: string): Maybe<boolean>;
  refuse(row: SubtaskRow, reason: string): Maybe<void>;
  /** Record why a pending subtask waits; true when the reason changed. */
  hold(row: SubtaskRow, reason: string): Maybe<boolean>;
  addReducer(taskId: string, input: Uint8Array): Maybe<void>;
  finish(taskId: string, outcome: { result?: Uint8Array; error?: string }): Maybe<void>;
  /** An agent's outbox push (exactly once by the agent's high-water mark). */
  outbox(peerId: string, clusterId: string, entries: OutboxEntry[]): Promise<ApplyOutcome>;
}

export function localLedger(store: TaskStore): TaskLedger {
  const receiver = new OutboxReceiver(store);
  return {
    submit: (id, plan, origin, consumer) => store.createTask(id, plan, origin, consumer),
    assign: (list) => store.tx(() => {
      for (const a of list) store.markAssigned(a.id, a.clusterId, a.peerId, a.crossOrg);
    }),
    undo: (row, why) => store.undoAssign(row.id, why),
    release: (row, maxAttempts, why) => store.release(row.id, maxAttempts, why),
    preempt: (row, why) => store.preempt(row.id, why),
    refuse: (row, reason) => store.refuse(row.id, reason),
    hold: (row, reason) => store.hold(row.id, reason),
    addReducer: (taskId, input) => store.addSubtask(`${taskId}.r`, taskId, 0, "reduce", input),
    finish: (taskId, outcome) => store.finishTask(taskId, outcome),
    outbox: (peerId, clusterId, entries) => receiver.apply(peerId, clusterId, entries),
  };
}
