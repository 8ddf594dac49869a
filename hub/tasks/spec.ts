/**
 * Task submissions: the JSON shape clients POST (user-facing), resolved into
 * a validated TaskPlan (partitions as bytes, placement, aggregation) that
 * reports every problem at once with its path. Partitioning and aggregation
 * are pure and shared by the hub and by agents acting as primary.
 *
 * Aggregation:
 *  - concat: outputs joined in partition order (optional `separator`).
 *  - sum: every output is a JSON number or array of numbers; the result is their total.
 *  - reducer: a WebAssembly module run as one more subtask on a healthy
 *    cluster; its input is a JSON array of the partition outputs (UTF-8 text).
 */
import { z } from "zod";
import { MalformedInputError } from "../../plugins/sdk/errors.ts";
import { subtaskInputBytesMax, subtaskOutputBytesMax, subtasksPerAssignMax, taskModuleBytesMax } from "../../plugins/sdk/wire-tasks.ts";

/** Partitions per task. More: refused at submission. */
export const partitionsPerTaskMax = 1_000;
export const maxAttemptsDefault = 4;
export const limitsDefault = { timeMs: 10_000, memoryBytes: 64 << 20, outputBytes: subtaskOutputBytesMax };

const b64 = z.string().max(Math.ceil((taskModuleBytesMax * 4) / 3) + 8).regex(/^[A-Za-z0-9+/]*={0,2}$/, "must be base64");
const idList = z.array(z.string().min(1).max(63)).max(64);

export const TaskSubmission = z.object({
  name: z.string().max(128).optional(),
  executor: z.literal("wasm").default("wasm"),
  module: b64,
  input: z.string().max(subtaskInputBytesMax).optional(),
  inputBase64: b64.optional(),
  partitions: z.array(z.union([
    z.object({ input: z.string().max(subtaskInputBytesMax) }),
    z.object({ inputBase64: z.string().max(Math.ceil((subtaskInputBytesMax * 4) / 3) + 8) }),
  ])).min(1).max(partitionsPerTaskMax).optional(),
  split: z.object({ items: z.array(z.unknown()).min(1).max(100_000), ways: z.number().int().min(1).max(partitionsPerTaskMax) }).optional(),
  placement: z.object({
    regions: idList.optional(),
    orgs: idList.optional(),
    clusters: idList.optional(),
    /** Matched against each member's labels (today: `org`, `region`, `cluster`). */
    labels: z.record(z.string().max(63), z.string().max(63)).optional(),
  }).default({}),
  aggregate: z.object({
    kind: z.enum(["concat", "sum", "reducer"]).default("concat"),
    separator: z.string().max(64).optional(),
    module: b64.optional(),
  }).default({ kind: "concat" }),
  limits: z.object({
    timeMs: z.number().int().positive().max(600_000).optional(),
    memoryBytes: z.number().int().positive().max(1 << 30).optional(),
    outputBytes: z.number().int().positive().max(subtaskOutputBytesMax).optional(),
  }).default({}),
  maxAttempts: z.number().int().min(1).max(20).default(maxAttemptsDefault),
  agreementId: z.string().min(1).max(128).optional(),
});
export type TaskSubmission = z.input<typeof TaskSubmission>;

export interface Placement {
  regions?: string[];
  orgs?: string[];
  clusters?: string[];
  labels?: Record<string, string>;
}

export interface TaskPlan {
  name?: string;
  module: Uint8Array;
  partitions: Uint8Array[];
  placement: Placement;
  aggregate: { kind: "concat" | "sum" | "reducer"; separator?: string; module?: Uint8Array };
  limits: { timeMs: number; memoryBytes: number; outputBytes: number };
  maxAttempts: number;
  agreementId?: string;
}

const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));
const utf8 = (s: string) => new TextEncoder().encode(s);

/** Split `items` into `ways` contiguous chunks (sizes differ by at most one); empty chunks are dropped. */
export function splitItems(items: unknown[], ways: number): unknown[][] {
  const n = Math.min(ways, items.length);
  const out: unknown[][] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const size = Math.floor(items.length / n) + (i < items.length % n ? 1 : 0);
    out.push(items.slice(at, at + size));
    at += size;
  }
  return out;
}

/** Parse and resolve a submission; every problem is reported at once. */
export function planTask(body: unknown): TaskPlan {
  const r = TaskSubmission.safeParse(body);
  if (!r.success) throw new MalformedInputError(r.error.issues.slice(0, 10).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; "));
  const s = r.data;
  const problems: string[] = [];
  const module = fromB64(s.module);
  if (module.byteLength === 0) problems.push("module: empty");
  if (module.byteLength > taskModuleBytesMax) problems.push(`module: ${module.byteLength} bytes exceeds ${taskModuleBytesMax}`);
  const ways = [s.partitions, s.split, s.input ?? s.inputBase64].filter((x) => x !== undefined).length;
  if (ways > 1) problems.push("give exactly one of partitions, split, input/inputBase64");
  let partitions: Uint8Array[];
  if (s.partitions) partitions = s.partitions.map((p) => ("input" in p ? utf8(p.input) : fromB64(p.inputBase64)));
  else if (s.split) partitions = splitItems(s.split.items, s.split.ways).map((chunk) => utf8(JSON.stringify(chunk)));
  else partitions = [s.inputBase64 !== undefined ? fromB64(s.inputBase64) : utf8(s.input ?? "")];
  partitions.forEach((p, i) => {
    if (p.byteLength > subtaskInputBytesMax) problems.push(`partitions.${i}: ${p.byteLength} bytes exceeds ${subtaskInputBytesMax}`);
  });
  // One subtask (module + input + framing) must fit in one sealed wire frame.
  if (module.byteLength + Math.max(0, ...partitions.map((p) => p.byteLength)) > 40 * 1024) problems.push("module + largest partition exceed 40 KiB (one wire frame)");
  const reducer = s.aggregate.module !== undefined ? fromB64(s.aggregate.module) : undefined;
  if (s.aggregate.kind === "reducer" && !reducer?.byteLength) problems.push("aggregate.module: required for kind reducer");
  if (reducer && reducer.byteLength > taskModuleBytesMax) problems.push(`aggregate.module: exceeds ${taskModuleBytesMax} bytes`);
  if (problems.length) throw new MalformedInputError(problems.join("; "));
  void subtasksPerAssignMax;
  return {
    ...(s.name ? { name: s.name } : {}),
    module,
    partitions,
    placement: s.placement,
    aggregate: { kind: s.aggregate.kind, ...(s.aggregate.separator !== undefined ? { separator: s.aggregate.separator } : {}), ...(reducer ? { module: reducer } : {}) },
    limits: { ...limitsDefault, ...s.limits },
    maxAttempts: s.maxAttempts,
    ...(s.agreementId ? { agreementId: s.agreementId } : {}),
  };
}

/** Does a member satisfy a placement? */
export function placementAllows(p: Placement, m: { org: string; region: string; clusterId: string }): boolean {
  if (p.regions?.length && !p.regions.includes(m.region)) return false;
  if (p.orgs?.length && !p.orgs.includes(m.org)) return false;
  if (p.clusters?.length && !p.clusters.includes(m.clusterId)) return false;
  const labels: Record<string, string> = { org: m.org, region: m.region, cluster: m.clusterId };
  for (const [k, v] of Object.entries(p.labels ?? {})) if (labels[k] !== v) return false;
  return true;
}

/** Aggregate partition outputs (concat or sum). Throws MalformedInputError when sum meets a non-number. */
export function aggregate(kind: "concat" | "sum", outputs: Uint8Array[], separator = ""): Uint8Array {
  if (kind === "concat") {
    const sep = utf8(separator);
    const total = outputs.reduce((n, o) => n + o.byteLength, 0) + sep.byteLength * Math.max(0, outputs.length - 1);
    const out = new Uint8Array(total);
    let at = 0;
    outputs.forEach((o, i) => {
      if (i > 0) {
        out.set(sep, at);
        at += sep.byteLength;
      }
      out.set(o, at);
      at += o.byteLength;
    });
    return out;
  }
  let total = 0;
  outputs.forEach((o, i) => {
    let v: unknown;
    try {
      v = JSON.parse(new TextDecoder().decode(o));
    } catch {
      throw new MalformedInputError(`sum: output of partition ${i} is not JSON`);
    }
    const nums = Array.isArray(v) ? v : [v];
    for (const n of nums) {
      if (typeof n !== "number" || !Number.isFinite(n)) throw new MalformedInputError(`sum: output of partition ${i} holds a non-number`);
      total += n;
    }
  });
  return utf8(JSON.stringify(total));
}

/** The reducer's input: a JSON array of the partition outputs as UTF-8 text. */
export function reducerInput(outputs: Uint8Array[]): Uint8Array {
  return utf8(JSON.stringify(outputs.map((o) => new TextDecoder().decode(o))));
}
