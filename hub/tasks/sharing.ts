/**
 * Resource sharing across organisations, as the task scheduler applies it.
 *
 * The consumer is the organisation that submitted the task (the API caller's
 * certificate; the hub's own org for its admins), the provider is the org of
 * the cluster a subtask would run on. Same-org placement needs nothing.
 * Cross-org placement needs the agreement provider -> consumer and passes
 * `admit` (hub/agreements/admission.ts) against:
 *  - the provider's capacity for other orgs' work: hub.json `sharedCapacity`
 *    (`{ "org-a": { "cpu": "8 cores", "memory": "16 GiB" } }`); an org or a
 *    resource left out is unbounded, so only the agreements' limits apply;
 *  - the cross-org subtasks assigned to the provider's clusters now (tasks.db).
 *
 * A subtask's demand: one core (the wasm executor runs a subtask on one
 * thread) and its memory limit (`limits.memoryBytes`), each counted only when
 * the agreement covers that resource (an agreement over cpu alone meters cpu).
 */
import type { Agreement } from "../agreements/store.ts";
import { admit, runningSubtask, type Demand, type RunningSubtask } from "../agreements/admission.ts";
import { cpuMilliCoresMax, memoryBytesMax } from "../agreements/constants.ts";
import { parseBytes, parseCpu } from "../agreements/units.ts";
import { ConfigError } from "../../plugins/sdk/errors.ts";
import type { CrossOrgAdmission, SubtaskRow } from "./store.ts";

/** One subtask's cpu demand: one core. */
export const subtaskCpuMilliCores = 1000;
/** Capacity of a provider (or resource) not configured: unbounded. */
export const capacityUnbounded: Demand = { cpuMilliCores: Number.MAX_SAFE_INTEGER, memoryBytes: Number.MAX_SAFE_INTEGER };

export type SharedCapacityConfig = Record<string, { cpu?: string | number; memory?: string | number }>;

/** hub.json `sharedCapacity` -> per-org capacity; every problem at once, with its path. */
export function resolveSharedCapacity(cfg: SharedCapacityConfig): Map<string, Demand> {
  const out = new Map<string, Demand>();
  const problems: string[] = [];
  for (const [org, c] of Object.entries(cfg)) {
    const d = { ...capacityUnbounded };
    if (c.cpu !== undefined) {
      const p = parseCpu(c.cpu, cpuMilliCoresMax);
      if (p.ok) d.cpuMilliCores = p.value;
      else problems.push(`hub.json: sharedCapacity.${org}.cpu: ${p.message}`);
    }
    if (c.memory !== undefined) {
      const p = parseBytes(c.memory, memoryBytesMax);
      if (p.ok) d.memoryBytes = p.value;
      else problems.push(`hub.json: sharedCapacity.${org}.memory: ${p.message}`);
    }
    out.set(org, d);
  }
  if (problems.length) throw new ConfigError(problems);
  return out;
}

export function demandUnder(agreement: Agreement, limits: { memoryBytes: number }): Demand {
  return {
    cpuMilliCores: agreement.resources.cpu ? subtaskCpuMilliCores : 0,
    memoryBytes: agreement.resources.memory ? limits.memoryBytes : 0,
  };
}

/** The admission entry of a subtask assigned across orgs. */
export function runningEntry(row: SubtaskRow): RunningSubtask {
  return {
    subtaskId: row.id,
    agreementId: row.agreement_id!,
    demand: { cpuMilliCores: row.demand_cpu ?? 0, memoryBytes: row.demand_mem ?? 0 },
    priority: (row.priority ?? "medium") as RunningSubtask["priority"],
    preemptible: row.preemptible === 1,
    startedSeq: row.assigned_at ?? 0,
  };
}

export function noAgreementReason(consumer: string, provider: string): string {
  return `${consumer} has no agreement with ${provider}: cross-org work needs one (provider ${provider} -> consumer ${consumer}, POST /v1/agreements)`;
}

export type Placement =
  | { ok: true; crossOrg?: CrossOrgAdmission; preempt: RunningSubtask[] }
  | { ok: false; reason: string; noAgreement: boolean };

/**
 * May `subtaskId` of `consumer` run on a cluster of `provider` now? `running`
 * is the provider's current cross-org set (the caller adds what it admits and
 * removes what it preempts, so one scheduler tick sees its own decisions).
 */
export function placeAcross(
  input: { consumer: string; provider: string; subtaskId: string; limits: { memoryBytes: number }; seq: number },
  agreement: Agreement | null,
  capacity: Demand,
  running: readonly RunningSubtask[],
): Placement {
  const { consumer, provider, subtaskId } = input;
  if (consumer === provider) return { ok: true, preempt: [] };
  if (!agreement) return { ok: false, reason: noAgreementReason(consumer, provider), noAgreement: true };
  const request = { subtaskId, demand: demandUnder(agreement, input.limits) };
  const a = admit(agreement, { capacity, running }, request);
  if (!a.ok) return { ok: false, reason: a.reason, noAgreement: false };
  const entry = runningSubtask(agreement, request, a, input.seq);
  return {
    ok: true,
    crossOrg: { agreementId: agreement.id, providerOrg: provider, demand: entry.demand, priority: entry.priority, preemptible: entry.preemptible },
    preempt: a.preempt,
  };
}
