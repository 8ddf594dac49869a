/**
 * POST /v1/tasks           submit (JSON, see spec.ts) -> 201 {id, state, subtasks}
 * GET  /v1/tasks           ?limit=&after=  paged by id
 * GET  /v1/tasks/records   per agent and kind: outbox records received (exactly-once view)
 * GET  /v1/tasks/:id       task + every subtask (cluster, state, attempts, timings, result or error)
 */
import { Hono, type Context } from "hono";
import { MalformedInputError, NotFoundError } from "../../plugins/sdk/errors.ts";
import { apiPageSizeDefault, apiPageSizeMax } from "../../plugins/sdk/limits.ts";
import type { Env } from "../api/types.ts";
import { planTask, type TaskPlan } from "./spec.ts";
import type { SubtaskRow, TaskRow, TaskStore } from "./store.ts";

export interface TaskRoutesDeps {
  store: TaskStore;
  newId(): string;
  /** Record a submission (default: into `store`; consensus: through the federation log). */
  submit?(id: string, plan: TaskPlan, origin: string, consumer?: string): void | Promise<void>;
  /** Called after a task is stored (wakes the scheduler). */
  onSubmitted(id: string): void;
}

const text = (b: Uint8Array | null) => {
  if (!b) return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(b);
  } catch {
    return undefined;
  }
};
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function subtaskView(s: SubtaskRow) {
  return {
    id: s.id,
    kind: s.kind,
    index: s.idx,
    state: s.state,
    cluster: s.cluster_id,
    attempts: s.attempts,
    clusters: JSON.parse(s.history) as string[],
    createdAt: iso(s.created_at),
    assignedAt: iso(s.assigned_at),
    startedAt: iso(s.started_at),
    finishedAt: iso(s.finished_at),
    ...(s.wall_ms !== null ? { wallMs: s.wall_ms, cpuMs: s.cpu_ms } : {}),
    ...(s.state === "done" ? { resultCluster: s.result_cluster, result: { text: text(s.output), base64: Buffer.from(s.output ?? []).toString("base64") } } : {}),
    ...(s.error ? { error: s.error } : {}),
    ...(s.duplicates ? { duplicateResults: s.duplicates } : {}),
    ...(s.agreement_id ? { agreement: s.agreement_id, provider: s.provider_org } : {}),
    ...(s.state === "pending" && s.held ? { held: s.held } : {}),
    ...(s.preemptions ? { preemptions: s.preemptions } : {}),
  };
}

export function taskView(t: TaskRow, subs?: SubtaskRow[]) {
  const counts: Record<string, number> = {};
  for (const s of subs ?? []) counts[s.state] = (counts[s.state] ?? 0) + 1;
  const held = subs?.find((s) => s.state === "pending" && s.held);
  return {
    id: t.id,
    ...(t.name ? { name: t.name } : {}),
    state: t.state,
    origin: t.origin,
    ...(t.consumer ? { consumer: t.consumer } : {}),
    createdAt: iso(t.created_at),
    finishedAt: iso(t.finished_at),
    ...(t.result ? { result: { text: text(t.result), base64: Buffer.from(t.result).toString("base64") } } : {}),
    ...(t.error ? { error: t.error } : {}),
    ...(held ? { held: `${held.id}: ${held.held}` } : {}),
    ...(subs ? { progress: counts, subtasks: subs.map(subtaskView) } : {}),
  };
}

function paging(c: Context) {
  const limit = c.req.query("limit");
  if (limit !== undefined && (!/^\d{1,9}$/.test(limit) || Number(limit) < 1)) throw new MalformedInputError("limit must be a positive integer");
  return { limit: Math.min(Number(limit ?? apiPageSizeDefault), apiPageSizeMax), after: c.req.query("after") };
}

export function taskRoutes(deps: TaskRoutesDeps) {
  const { store } = deps;
  return new Hono<Env>()
    .post("/", async (c) => {
      let body: unknown;
      try {
        body = await c.req.json();
      } catch {
        throw new MalformedInputError("body is not JSON");
      }
      const plan = planTask(body);
      const id = deps.newId();
      // The submitter's org is the consumer when a subtask is placed on another org's cluster (sharing.ts).
      const origin = `api:${c.var.identity?.name ?? c.var.identity?.cluster ?? "client"}`;
      if (deps.submit) await deps.submit(id, plan, origin, c.var.identity?.org);
      else store.createTask(id, plan, origin, c.var.identity?.org);
      deps.onSubmitted(id);
      return c.json({ id, state: "running", subtasks: plan.partitions.length }, 201);
    })
    .get("/", (c) => {
      const { limit, after } = paging(c);
      const rows = store.tasks(limit + 1, after);
      const page = rows.slice(0, limit);
      return c.json({ items: page.map((t) => taskView(t)), ...(rows.length > limit ? { next: page[page.length - 1]!.id } : {}) });
    })
    .get("/records", (c) => c.json({ items: store.recordCounts() }))
    .get("/:id", (c) => {
      const t = store.task(c.req.param("id"));
      if (!t) throw new NotFoundError(`no task ${JSON.stringify(c.req.param("id").slice(0, 96))}`);
      return c.json(taskView(t, store.subtasksOf(t.id)));
    });
}
