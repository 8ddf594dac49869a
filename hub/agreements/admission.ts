/**
 * Admission and placement policy for work a consumer runs on a provider under
 * an agreement. Pure: no I/O, no clock; the caller owns the running set.
 *
 * Rules, in the order they are checked (first failure refuses, with a reason):
 *  1. The request asks for something (non-negative integers, not all zero).
 *  2. Every resource asked for is covered by the agreement.
 *  3. The agreement's running usage plus the request stays within
 *     limit * max_burst for every resource. Going above the limit (but within
 *     the burst ceiling) is admitted as `burst: true`.
 *  4. If the provider's free capacity holds the request, it is admitted.
 *  5. Otherwise running subtasks are preempted, only if each is `preemptible`
 *     and has strictly lower priority than the request: lowest priority first,
 *     then most recently started first. Only subtasks that free a still-short
 *     resource are chosen. If they cannot free enough, nothing is preempted and
 *     the request is refused.
 * A request's priority is the lowest priority among the resources it asks for.
 * Preempted subtasks are returned to the caller, which requeues them.
 */
import type { Agreement } from "./store.ts";
import { PRIORITIES, type Priority } from "./parse.ts";
import { formatBytes, formatMilliCores, formatPermille } from "./units.ts";

export type Demand = { cpuMilliCores: number; memoryBytes: number };

export type RunningSubtask = {
  subtaskId: string;
  agreementId: string;
  demand: Demand;
  priority: Priority;
  /** May be preempted: its agreement allows preemption, or it was admitted as burst. */
  preemptible: boolean;
  /** Larger = started later. Ties broken by subtaskId. */
  startedSeq: number;
};

export type ProviderUsage = {
  /** What the provider offers to the federation in total. */
  capacity: Demand;
  running: readonly RunningSubtask[];
};

export type AdmitRequest = { subtaskId: string; demand: Demand };

export type Admission =
  | { ok: true; priority: Priority; burst: boolean; preempt: RunningSubtask[] }
  | { ok: false; reason: string };

type ResourceKey = keyof Demand;
const RESOURCE_KEYS: readonly ResourceKey[] = ["cpuMilliCores", "memoryBytes"];
const RESOURCE_NAME: Record<ResourceKey, string> = { cpuMilliCores: "cpu", memoryBytes: "memory" };
const FORMAT: Record<ResourceKey, (n: number) => string> = { cpuMilliCores: formatMilliCores, memoryBytes: formatBytes };

export function priorityRank(p: Priority): number {
  return PRIORITIES.indexOf(p);
}

function terms(agreement: Agreement, key: ResourceKey): { limit: number; priority: Priority } | undefined {
  if (key === "cpuMilliCores") {
    const cpu = agreement.resources.cpu;
    return cpu && { limit: cpu.limitMilliCores, priority: cpu.priority };
  }
  const memory = agreement.resources.memory;
  return memory && { limit: memory.limitBytes, priority: memory.priority };
}

/** floor(limit * permille / 1000), exactly. */
export function burstCeiling(limit: number, permille: number): number {
  return Number((BigInt(limit) * BigInt(permille)) / 1000n);
}

function sum(running: readonly RunningSubtask[], key: ResourceKey, filter: (r: RunningSubtask) => boolean = () => true): number {
  let total = 0;
  for (const r of running) if (filter(r)) total += r.demand[key];
  return total;
}

export function admit(agreement: Agreement, usage: ProviderUsage, request: AdmitRequest): Admission {
  const { demand } = request;
  const asked = RESOURCE_KEYS.filter((k) => demand[k] !== 0);
  for (const k of RESOURCE_KEYS) {
    if (!Number.isSafeInteger(demand[k]) || demand[k] < 0) {
      return { ok: false, reason: `subtask ${request.subtaskId}: ${RESOURCE_NAME[k]} demand must be a non-negative integer` };
    }
  }
  if (asked.length === 0) return { ok: false, reason: `subtask ${request.subtaskId} asks for no resources` };

  let priority: Priority = "high";
  let burst = false;
  for (const k of asked) {
    const t = terms(agreement, k);
    if (!t) {
      return { ok: false, reason: `agreement ${agreement.id} (${agreement.provider} -> ${agreement.consumer}) does not cover ${RESOURCE_NAME[k]}` };
    }
    if (priorityRank(t.priority) < priorityRank(priority)) priority = t.priority;
    const used = sum(usage.running, k, (r) => r.agreementId === agreement.id);
    const ceiling = burstCeiling(t.limit, agreement.scheduling.maxBurstPermille);
    if (used + demand[k] > ceiling) {
      const f = FORMAT[k];
      return {
        ok: false,
        reason:
          `${agreement.consumer} would use ${f(used + demand[k])} of ${RESOURCE_NAME[k]} from ${agreement.provider}, ` +
          `above its limit of ${f(t.limit)} with max burst ${formatPermille(agreement.scheduling.maxBurstPermille)} (${f(ceiling)}); ` +
          `${f(used)} already in use`,
      };
    }
    if (used + demand[k] > t.limit) burst = true;
  }

  const shortBy = (running: readonly RunningSubtask[]) => {
    const short: Partial<Record<ResourceKey, number>> = {};
    for (const k of asked) {
      const missing = sum(running, k) + demand[k] - usage.capacity[k];
      if (missing > 0) short[k] = missing;
    }
    return short;
  };
  const short = shortBy(usage.running);
  if (Object.keys(short).length === 0) return { ok: true, priority, burst, preempt: [] };

  const victims = choosePreemptions(usage.running, priority, short);
  if (!victims) {
    const needs = (Object.entries(short) as [ResourceKey, number][]).map(([k, n]) => `${FORMAT[k](n)} more ${RESOURCE_NAME[k]}`).join(" and ");
    return {
      ok: false,
      reason:
        `${agreement.provider} has no room for subtask ${request.subtaskId}: it needs ${needs}, ` +
        `and not enough preemptible work of lower priority than ${priority} is running to free it`,
    };
  }
  return { ok: true, priority, burst, preempt: victims };
}

/** The subtasks to preempt so that `short` is covered, or null when no such set exists. */
function choosePreemptions(running: readonly RunningSubtask[], priority: Priority, short: Partial<Record<ResourceKey, number>>): RunningSubtask[] | null {
  const rank = priorityRank(priority);
  const candidates = running
    .filter((r) => r.preemptible && priorityRank(r.priority) < rank)
    .sort(
      (a, b) =>
        priorityRank(a.priority) - priorityRank(b.priority) ||
        b.startedSeq - a.startedSeq ||
        (a.subtaskId < b.subtaskId ? -1 : a.subtaskId > b.subtaskId ? 1 : 0),
    );
  const remaining = { ...short };
  const chosen: RunningSubtask[] = [];
  for (const c of candidates) {
    const helps = (Object.keys(remaining) as ResourceKey[]).some((k) => remaining[k]! > 0 && c.demand[k] > 0);
    if (!helps) continue;
    chosen.push(c);
    for (const k of Object.keys(remaining) as ResourceKey[]) remaining[k] = remaining[k]! - c.demand[k];
    if ((Object.values(remaining) as number[]).every((n) => n <= 0)) return chosen;
  }
  return null;
}

/** The running-set entry for a subtask `admit` accepted. */
export function runningSubtask(agreement: Agreement, request: AdmitRequest, admission: Admission & { ok: true }, startedSeq: number): RunningSubtask {
  return {
    subtaskId: request.subtaskId,
    agreementId: agreement.id,
    demand: { ...request.demand },
    priority: admission.priority,
    preemptible: agreement.scheduling.preemption || admission.burst,
    startedSeq,
  };
}
