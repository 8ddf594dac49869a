/**
 * Federation log commands of the task pipeline (hub/tasks/replicated.ts
 * writes and applies them) when consensus is enabled: every hub keeps the
 * same task rows, so any hub serves GET /v1/tasks and a new leader hub
 * resumes scheduling where the old one stopped.
 *
 * Sizes: a command is at most fedlogCommandBytesMax. Modules travel once per
 * content hash (`task-module`); a submission whose partitions do not fit in
 * one command is refused at POST (ERR_MESSAGE_TOO_LARGE); outbox pushes are
 * cut into several `task-outbox` commands by `outboxCommandBodyBytesMax`.
 * Aggregates are not carried: `task-finished` makes every hub compute the
 * outcome from the replicated subtask outputs (hub/tasks/completion.ts).
 */
import { z } from "zod";
import { OUTBOX_KINDS, outboxEntriesPerPushMax, outboxPushBytesMax, subtaskInputBytesMax, taskModuleBytesMax } from "../../plugins/sdk/wire-tasks.ts";

/** Subtask assignments per `subtasks-assigned` command (a tick with more writes several). */
export const assignmentsPerCommandMax = 128;
/** Record body bytes per `task-outbox` command; a larger push is written as several commands, in seq order. */
export const outboxCommandBodyBytesMax = 40 * 1024;
/** Encoded plan (everything but modules and partitions) of a replicated submission. */
export const taskPlanBytesMax = 24 * 1024;
/** Partitions per replicated submission (hub/tasks/spec.ts partitionsPerTaskMax bounds them first). */
const partitionsMax = 1_000;

const bytes = (max: number) => z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.byteLength <= max, { message: `must be bytes, at most ${max}` });
const ms = z.number().int().min(0).max(8.64e15);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const taskId = z.string().min(1).max(96);
const subtaskId = z.string().min(1).max(128);
const clusterId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/);
const peerId = z.string().min(1).max(128);

export const TaskModuleStored = z.object({ type: z.literal("task-module"), hash: sha256, module: bytes(taskModuleBytesMax), at: ms });
export const TaskSubmitted = z.object({
  type: z.literal("task-submitted"), taskId, origin: z.string().max(256), consumer: z.string().max(128).optional(),
  /** CBOR of the stored plan without its module bytes (hub/tasks/replicated.ts). */
  plan: bytes(taskPlanBytesMax), moduleHash: sha256, reducerHash: sha256.optional(),
  partitions: z.array(bytes(subtaskInputBytesMax)).min(1).max(partitionsMax), at: ms,
});
export const SubtasksAssigned = z.object({
  type: z.literal("subtasks-assigned"),
  assignments: z.array(z.object({ id: subtaskId, clusterId, peerId, crossOrg: z.record(z.string(), z.unknown()).optional() })).min(1).max(assignmentsPerCommandMax),
  at: ms,
});
/** The scheduler takes a subtask back or parks it: undo (never delivered), release (failover), preempt, refuse, hold (reason only). */
export const SubtaskReleased = z.object({
  type: z.literal("subtask-released"), id: subtaskId, how: z.enum(["undo", "release", "preempt", "refuse", "hold"]),
  why: z.string().max(2048).nullable(), maxAttempts: z.number().int().min(1).max(1000).optional(), at: ms,
});
export const TaskReducerAdded = z.object({ type: z.literal("task-reducer-added"), taskId, at: ms });
export const TaskFinished = z.object({ type: z.literal("task-finished"), taskId, at: ms });
/** An agent's outbox push as received by any hub: applied on every hub (high-water per agent: exactly once across hubs). */
export const TaskOutbox = z.object({
  type: z.literal("task-outbox"), pushId: z.string().min(1).max(64), peerId, clusterId,
  entries: z.array(z.object({ seq: z.number().int().positive(), kind: z.enum(OUTBOX_KINDS), at: z.number().int(), body: bytes(outboxPushBytesMax) })).max(outboxEntriesPerPushMax),
  at: ms,
});

export const TASK_COMMANDS = [TaskModuleStored, TaskSubmitted, SubtasksAssigned, SubtaskReleased, TaskReducerAdded, TaskFinished, TaskOutbox] as const;
