/**
 * Task state through the federation log (consensus enabled): the ledger
 * writes commands (hub/fedlog/task-commands.ts) and every hub applies them
 * into its own DIR/tasks.db with the command's time, so all hubs hold the
 * same rows. The writer decides from its store (the leader's scheduler, the
 * hub that took a POST or an agent's push); the applier re-checks the same
 * guards (state = 'assigned', high-water mark...), so re-applying a command
 * after a crash, or applying one that lost a race, changes nothing.
 */
import { createHash, randomBytes } from "node:crypto";
import { decodeCbor, encodeCbor } from "../../plugins/sdk/codec.ts";
import { GreyError } from "../../plugins/sdk/errors.ts";
import type { OutboxEntry } from "../../plugins/sdk/wire-tasks.ts";
import { encodeCommand, fedlogCommandBytesMax, type FedlogCommand } from "../fedlog/commands.ts";
import type { FedlogWrites } from "../fedlog/service.ts";
import { assignmentsPerCommandMax, outboxCommandBodyBytesMax } from "../fedlog/task-commands.ts";
import { completion } from "./completion.ts";
import type { TaskLedger } from "./ledger.ts";
import { applyOutbox, type ApplyOutcome } from "./outbox.ts";
import type { TaskPlan } from "./spec.ts";
import type { CrossOrgAdmission, StoredPlan, TaskStore } from "./store.ts";

/** A submission that cannot travel through the federation log in one command. */
export class TaskTooLargeForLogError extends GreyError {
  constructor(bytes: number) {
    super("ERR_MESSAGE_TOO_LARGE", `task of ${bytes} bytes (partitions and plan) exceeds the federation log's ${fedlogCommandBytesMax}-byte command limit: submit fewer or smaller partitions`);
  }
}

/** A replicated command that cannot apply (its module never reached the log): refused on every hub alike. */
export class TaskCommandRefusedError extends GreyError {
  constructor(message: string) {
    super("ERR_TASK_COMMAND_REFUSED", message);
  }
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

type Writes = Pick<FedlogWrites, "write" | "onApply"> & Partial<Pick<FedlogWrites, "onSnapshot">>;
type Cmd<T extends FedlogCommand["type"]> = Extract<FedlogCommand, { type: T }>;

/** The plan as carried by `task-submitted`: no module bytes (they travel once per hash). */
type WirePlan = Omit<StoredPlan, "module" | "aggregate"> & { aggregate: Omit<StoredPlan["aggregate"], "module"> };

export function replicatedLedger(store: TaskStore, log: Writes, clock: { now(): number }): TaskLedger {
  /** Outcomes of this hub's own outbox writes, picked up by the writer once applied here. */
  const mine = new Map<string, ApplyOutcome | undefined>();
  registerAppliers(store, log, (pushId, outcome) => {
    if (mine.has(pushId)) mine.set(pushId, outcome);
  });
  const at = () => clock.now();
  const release = async (id: string, how: Cmd<"subtask-released">["how"], why: string | null, maxAttempts?: number) => {
    await log.write({ type: "subtask-released", id, how, why: why?.slice(0, 2048) ?? null, ...(maxAttempts ? { maxAttempts } : {}), at: at() });
  };
  return {
    async submit(id, plan, origin, consumer) {
      const { partitions, module, aggregate, ...rest } = plan;
      const reducer = aggregate.module;
      const wire: WirePlan = { ...rest, aggregate: { kind: aggregate.kind, ...(aggregate.separator !== undefined ? { separator: aggregate.separator } : {}) } };
      const cmd: FedlogCommand = {
        type: "task-submitted", taskId: id, origin: origin.slice(0, 256), ...(consumer ? { consumer } : {}), plan: encodeCbor(wire),
        moduleHash: sha256(module), ...(reducer ? { reducerHash: sha256(reducer) } : {}), partitions, at: at(),
      };
      const size = encodeCommand(cmd).byteLength;
      if (size > fedlogCommandBytesMax) throw new TaskTooLargeForLogError(size);
      for (const m of [module, ...(reducer ? [reducer] : [])]) {
        const hash = sha256(m);
        if (!store.module(hash)) await log.write({ type: "task-module", hash, module: m, at: at() });
      }
      await log.write(cmd);
    },
    async assign(list) {
      const now = at();
      const writes: Promise<number>[] = [];
      for (let i = 0; i < list.length; i += assignmentsPerCommandMax) {
        const assignments = list.slice(i, i + assignmentsPerCommandMax).map((a) => ({
          id: a.id, clusterId: a.clusterId, peerId: a.peerId, ...(a.crossOrg ? { crossOrg: a.crossOrg as unknown as Record<string, unknown> } : {}),
        }));
        writes.push(log.write({ type: "subtasks-assigned", assignments, at: now }));
      }
      await Promise.all(writes);
    },
    undo: (row, why) => release(row.id, "undo", why),
    async release(row, maxAttempts, why) {
      if (row.state !== "assigned") return "unchanged";
      await release(row.id, "release", why, maxAttempts);
      return store.subtask(row.id)?.state === "failed" ? "failed" : "pending";
    },
    async preempt(row, why) {
      if (row.state !== "assigned") return false;
      await release(row.id, "preempt", why);
      return true;
    },
    refuse: (row, reason) => release(row.id, "refuse", reason),
    async hold(row, reason) {
      if (row.state !== "pending" || row.held === reason) return false;
      await release(row.id, "hold", reason);
      return true;
    },
    async addReducer(taskId) {
      await log.write({ type: "task-reducer-added", taskId, at: at() });
    },
    async finish(taskId) {
      await log.write({ type: "task-finished", taskId, at: at() });
    },
    async outbox(peerId, clusterId, entries) {
      const total: ApplyOutcome = { highWater: store.highWater(peerId), applied: 0, skipped: 0, usage: [], audits: [], results: { applied: 0, duplicate: 0, unknown: 0 } };
      for (const chunk of chunks(entries)) {
        const pushId = randomBytes(12).toString("hex");
        mine.set(pushId, undefined);
        try {
          await log.write({ type: "task-outbox", pushId, peerId, clusterId, entries: chunk, at: at() });
          const o = mine.get(pushId);
          if (!o) continue;
          total.highWater = Math.max(total.highWater, o.highWater);
          total.applied += o.applied;
          total.skipped += o.skipped;
          total.usage.push(...o.usage);
          total.audits.push(...o.audits);
          for (const k of ["applied", "duplicate", "unknown"] as const) total.results[k] += o.results[k];
        } finally {
          mine.delete(pushId);
        }
      }
      total.highWater = Math.max(total.highWater, store.highWater(peerId));
      return total;
    },
  };
}

/** Entries in seq order, cut so each command's record bodies stay under outboxCommandBodyBytesMax. An empty push is one empty command (it still reports the mark). */
function chunks(entries: OutboxEntry[]): OutboxEntry[][] {
  const sorted = [...entries].sort((a, b) => a.seq - b.seq);
  const out: OutboxEntry[][] = [[]];
  let bytes = 0;
  for (const e of sorted) {
    if (out[out.length - 1]!.length > 0 && bytes + e.body.byteLength > outboxCommandBodyBytesMax) {
      out.push([]);
      bytes = 0;
    }
    out[out.length - 1]!.push(e);
    bytes += e.body.byteLength;
  }
  return out;
}

/** Apply task commands into `store`, on every hub (register before replication starts). */
export function registerAppliers(store: TaskStore, log: Pick<FedlogWrites, "onApply"> & Partial<Pick<FedlogWrites, "onSnapshot">>, onOutbox: (pushId: string, o: ApplyOutcome) => void): void {
  // the whole replicated state travels in the log's snapshots (a hub catching up after compaction gets it)
  log.onSnapshot?.("tasks", { owner: "task-submitted", export: () => store.exportSnapshot(), import: (image) => store.importSnapshot(image) });
  log.onApply("task-module", (c) => store.putModule(c.hash, c.module));
  log.onApply("task-submitted", (c) => {
    if (store.task(c.taskId)) return; // re-applied after a crash
    const module = store.module(c.moduleHash);
    const reducer = c.reducerHash ? store.module(c.reducerHash) : undefined;
    if (!module || (c.reducerHash && !reducer)) throw new TaskCommandRefusedError(`task ${c.taskId}: its module is not in the federation log`);
    const wire = decodeCbor(c.plan, c.plan.byteLength) as WirePlan;
    const plan: TaskPlan = { ...wire, module, aggregate: { ...wire.aggregate, ...(reducer ? { module: reducer } : {}) }, partitions: c.partitions };
    store.at(c.at, () => store.createTask(c.taskId, plan, c.origin, c.consumer));
  });
  log.onApply("subtasks-assigned", (c) => store.at(c.at, () => store.tx(() => {
    for (const a of c.assignments) store.markAssigned(a.id, a.clusterId, a.peerId, a.crossOrg as CrossOrgAdmission | undefined);
  })));
  log.onApply("subtask-released", (c) => store.at(c.at, () => {
    const why = c.why ?? "";
    switch (c.how) {
      case "undo": return void store.undoAssign(c.id, why);
      case "release": return void store.release(c.id, c.maxAttempts ?? 1, why);
      case "preempt": return void store.preempt(c.id, why);
      case "refuse": return void store.refuse(c.id, why);
      case "hold": return void store.hold(c.id, c.why);
    }
  }));
  const decide = (taskId: string) => {
    const t = store.task(taskId);
    return t && t.state === "running" ? completion(store.plan(t), store.subtasksOf(taskId)) : undefined;
  };
  log.onApply("task-reducer-added", (c) => {
    const d = decide(c.taskId);
    if (d?.kind === "reduce") store.at(c.at, () => store.addSubtask(`${c.taskId}.r`, c.taskId, 0, "reduce", d.input));
  });
  log.onApply("task-finished", (c) => {
    const d = decide(c.taskId);
    if (d?.kind === "finish") store.at(c.at, () => store.finishTask(c.taskId, d.outcome));
  });
  log.onApply("task-outbox", (c) => onOutbox(c.pushId, store.at(c.at, () => applyOutbox(store, c.peerId, c.clusterId, c.entries))));
}
