/**
 * The hub's task scheduler: one bounded tick at a time it
 *  1. takes subtasks back from clusters that stopped being healthy (heartbeats:
 *     registry state, `suspect` after heartbeatMissedSuspect periods) or that
 *     held them past their deadline, and records a `failover`;
 *  2. delegates pending subtasks to healthy clusters that satisfy the task's
 *     placement (fewest in flight first, avoiding clusters that already failed
 *     the subtask), in batches over attested sessions. A cluster of another
 *     organisation than the task's submitter takes the subtask only under an
 *     agreement that admits it (sharing.ts); admission may preempt lower-priority
 *     cross-org work (requeued, audited as `preemption`). A subtask no cluster
 *     admits stays pending with the reasons in `held`; one whose only candidates
 *     are other orgs with no agreement is refused (failed, with the reason);
 *  3. completes tasks whose subtasks are all done (aggregate, or schedule the reducer).
 * Results arrive through the outbox protocol (outbox.ts), not here.
 * Decisions are recorded through a ledger (ledger.ts): straight into tasks.db,
 * or with consensus through the federation log (replicated.ts), where only the
 * leader hub ticks (`leads`).
 */
import type { Agreement } from "../agreements/store.ts";
import type { Demand, RunningSubtask } from "../agreements/admission.ts";
import type { Member, Registry } from "../registry/index.ts";
import type { AuditLog } from "../audit/index.ts";
import type { Logger } from "../../plugins/sdk/plugin.ts";
import type { SubtaskSpec } from "../../plugins/sdk/wire-tasks.ts";
import { subtasksPerAssignMax } from "../../plugins/sdk/wire-tasks.ts";
import { placementAllows } from "./spec.ts";
import { completion } from "./completion.ts";
import { localLedger, type Assignment, type TaskLedger } from "./ledger.ts";
import { placeAcross, runningEntry } from "./sharing.ts";
import type { CrossOrgAdmission, StoredPlan, SubtaskRow, TaskStore } from "./store.ts";

/** Slack on top of a subtask's time limit before the hub takes it back (queueing, delivery). */
export const assignGraceMs = 20_000;
/** A cluster that refused or could not be reached is skipped for this long. */
export const clusterCooldownMs = 1_000;
/** Assign batches are cut at this many module+input bytes (one sealed frame). */
export const assignBatchBytesMax = 40 * 1024;

export type Deliver = (member: Member, specs: SubtaskSpec[]) => Promise<{ accepted: string[]; refused: { id: string; reason: string }[] }>;

/** Longest `held` reason stored on a subtask. Longer: cut, ending in "...". */
export const heldReasonCharsMax = 1_000;

export interface SharingDeps {
  /** The hub's organisation: the consumer of tasks with no recorded submitter org. */
  hubOrg: string;
  /** The agreement provider -> consumer, if any. */
  agreementFor(provider: string, consumer: string): Agreement | null;
  /** What `org` offers to other orgs' work in total. */
  capacityOf(org: string): Demand;
}

export interface SchedulerDeps {
  store: TaskStore;
  registry: Pick<Registry, "healthy" | "getByPeer" | "stateOf"> & Partial<Pick<Registry, "list">>;
  /** Agreement enforcement for cross-org placement. Absent: every cluster may take every task. */
  sharing?: SharingDeps;
  audit: Pick<AuditLog, "append">;
  deliver: Deliver;
  logger: Logger;
  clock: { now(): number };
  onEvent?: (event: "assigned" | "failover" | "completed" | "failed" | "refused" | "preempted" | "held") => void;
  /**
   * Consensus enabled: records the assignments in the federation log before
   * delivery, so every hub knows where each subtask runs. Throws: the batch is
   * not delivered (the subtasks go back to pending).
   */
  recordAssignments?: (clusterId: string, subtaskIds: string[]) => Promise<void>;
  /** Where decisions are recorded (default: straight into `store`; consensus: the federation log, replicated.ts). */
  ledger?: TaskLedger;
  /**
   * Consensus: does this hub lead (only the leader schedules)? On becoming
   * leader the scheduler re-delivers every assigned subtask once (agents
   * enqueue idempotently by id), in case the old leader recorded an
   * assignment it never delivered.
   */
  leads?: () => boolean;
}

export function createScheduler(deps: SchedulerDeps) {
  const { store, registry, clock, logger } = deps;
  const ledger = deps.ledger ?? localLedger(store);
  const cooldown = new Map<string, number>();
  const plans = new Map<string, StoredPlan>();
  const planOf = (taskId: string): StoredPlan => {
    let p = plans.get(taskId);
    if (!p) {
      p = store.plan(store.task(taskId)!);
      plans.set(taskId, p);
    }
    return p;
  };

  const failover = async (row: SubtaskRow, why: string) => {
    const plan = planOf(row.task_id);
    const next = await ledger.release(row, plan.maxAttempts, why);
    if (next === "unchanged") return;
    deps.onEvent?.("failover");
    deps.audit.append({ kind: "failover", actor: "hub", subject: row.id, details: { task: row.task_id, from: row.cluster_id, reason: why, next } });
    logger.warn("subtask taken back", { subtask: row.id, cluster: row.cluster_id, reason: why, next });
  };

  /** 1. failure detection */
  const reclaim = async (now: Date) => {
    for (const row of store.byState("assigned")) {
      const m = row.peer_id ? registry.getByPeer(row.peer_id) : undefined;
      const state = !m ? "gone" : m.revoked ? "revoked" : registry.stateOf(m, now);
      if (state !== "healthy") await failover(row, `cluster ${row.cluster_id} is ${state}`);
      else if (now.getTime() - (row.assigned_at ?? 0) > planOf(row.task_id).limits.timeMs + assignGraceMs) await failover(row, `no result from ${row.cluster_id} before the deadline`);
    }
  };

  const consumers = new Map<string, string>();
  const consumerOf = (taskId: string): string => {
    let c = consumers.get(taskId);
    if (c === undefined) {
      c = store.task(taskId)?.consumer ?? deps.sharing?.hubOrg ?? "";
      consumers.set(taskId, c);
    }
    return c;
  };

  /** Does any registered (not revoked) cluster of `org` satisfy the placement? Then the task may wait for it. */
  const ownOrgCouldRun = (org: string, plan: StoredPlan, healthy: Member[]) => {
    const members = registry.list ? registry.list({ limit: 1000 }).items : healthy;
    return members.some((m) => !m.revoked && m.org === org && placementAllows(plan.placement, m));
  };

  /** Cross-org admission state for one tick: agreements looked up once, running sets updated as the tick decides. */
  const sharingTick = (sharing: SharingDeps) => {
    const agreements = new Map<string, Agreement | null>();
    const running = new Map<string, RunningSubtask[]>();
    const runningOf = (org: string) => {
      let r = running.get(org);
      if (!r) running.set(org, (r = store.runningOn(org).map(runningEntry)));
      return r;
    };
    return {
      agreementFor(provider: string, consumer: string) {
        const k = `${provider}/${consumer}`;
        if (!agreements.has(k)) agreements.set(k, sharing.agreementFor(provider, consumer));
        return agreements.get(k)!;
      },
      runningOf,
    };
  };

  const preempt = async (victim: RunningSubtask, provider: string, by: SubtaskRow, crossOrg: CrossOrgAdmission) => {
    const row = store.subtask(victim.subtaskId);
    const why = `preempted on ${provider} by ${by.id} (priority ${crossOrg.priority} over ${victim.priority})`;
    if (!row || !(await ledger.preempt(row, why))) return;
    deps.onEvent?.("preempted");
    deps.audit.append({
      kind: "preemption", actor: "hub", subject: victim.subtaskId,
      details: { task: row.task_id, cluster: row.cluster_id, provider, agreement: victim.agreementId, priority: victim.priority, by: by.id, byAgreement: crossOrg.agreementId, byPriority: crossOrg.priority, next: "pending" },
    });
    logger.info("subtask preempted", { subtask: victim.subtaskId, cluster: row.cluster_id, by: by.id });
  };

  /** 2. delegation */
  const delegate = async (now: Date, redeliver: SubtaskRow[]) => {
    const pending = store.byState("pending", 2_000);
    if (!pending.length && !redeliver.length) return;
    const healthy = registry.healthy(now, { limit: 1000 }).items.filter((m) => !m.revoked && (cooldown.get(m.clusterId) ?? 0) <= now.getTime());
    if (!healthy.length) return;
    const load = new Map<string, number>(healthy.map((m) => [m.clusterId, 0]));
    for (const a of store.byState("assigned")) if (a.cluster_id && load.has(a.cluster_id)) load.set(a.cluster_id, load.get(a.cluster_id)! + 1);
    const batches = new Map<string, { member: Member; specs: SubtaskSpec[]; bytes: number }[]>();
    const admitted = new Map<string, CrossOrgAdmission>();
    const tickSharing = deps.sharing && sharingTick(deps.sharing);
    const batch = (pick: Member, row: SubtaskRow, plan: StoredPlan, attempt: number, crossOrgAgreement: string | undefined) => {
      const module = row.kind === "reduce" ? plan.aggregate.module! : plan.module;
      const agreementId = crossOrgAgreement ?? plan.agreementId;
      const spec: SubtaskSpec = {
        id: row.id, taskId: row.task_id, attempt, executor: "wasm", module, input: row.input, limits: plan.limits,
        ...(agreementId ? { agreementId } : {}),
      };
      const list = batches.get(pick.clusterId) ?? [];
      let last = list[list.length - 1];
      const size = module.byteLength + row.input.byteLength + 256;
      if (!last || last.specs.length >= subtasksPerAssignMax || last.bytes + size > assignBatchBytesMax) {
        last = { member: pick, specs: [], bytes: 0 };
        list.push(last);
      }
      last.specs.push(spec);
      last.bytes += size;
      batches.set(pick.clusterId, list);
    };
    let seq = now.getTime();
    // Admission depends on the provider org, not the cluster, and a tick only adds to running sets:
    // a refusal holds for every cluster of that org and every like subtask for the rest of the tick.
    const refusedThisTick = new Map<string, { reason: string; noAgreement: boolean; subtaskId: string }>();
    for (const row of pending) {
      const plan = planOf(row.task_id);
      const tried = new Set(JSON.parse(row.history) as string[]);
      const fits = healthy.filter((m) => placementAllows(plan.placement, m));
      if (!fits.length) continue;
      const byLoad = (a: Member, b: Member) => load.get(a.clusterId)! - load.get(b.clusterId)!;
      // Fewest in flight first, clusters that did not fail this subtask before the others.
      const order = [...fits.filter((m) => !tried.has(m.clusterId)).sort(byLoad), ...fits.filter((m) => tried.has(m.clusterId)).sort(byLoad)];
      let pick: Member | undefined;
      let crossOrg: CrossOrgAdmission | undefined;
      if (!deps.sharing || !tickSharing) pick = order[0];
      else {
        const consumer = consumerOf(row.task_id);
        const refusals = new Map<string, boolean>();
        for (const m of order) {
          const key = `${consumer}|${m.org}|${plan.limits.memoryBytes}`;
          const known = refusedThisTick.get(key);
          if (known) {
            refusals.set(known.reason.replaceAll(known.subtaskId, row.id), known.noAgreement);
            continue;
          }
          const running = tickSharing.runningOf(m.org);
          const d = placeAcross(
            { consumer, provider: m.org, subtaskId: row.id, limits: plan.limits, seq: ++seq },
            m.org === consumer ? null : tickSharing.agreementFor(m.org, consumer),
            deps.sharing.capacityOf(m.org), running,
          );
          if (!d.ok) {
            refusedThisTick.set(key, { reason: d.reason, noAgreement: d.noAgreement, subtaskId: row.id });
            refusals.set(d.reason, d.noAgreement);
            continue;
          }
          pick = m;
          crossOrg = d.crossOrg;
          if (crossOrg) {
            for (const v of d.preempt) {
              await preempt(v, m.org, row, crossOrg);
              running.splice(running.findIndex((r) => r.subtaskId === v.subtaskId), 1);
            }
            running.push({ subtaskId: row.id, agreementId: crossOrg.agreementId, demand: crossOrg.demand, priority: crossOrg.priority, preemptible: crossOrg.preemptible, startedSeq: seq });
            admitted.set(row.id, crossOrg);
          }
          break;
        }
        if (!pick) {
          const reasons = [...refusals.keys()];
          if ([...refusals.values()].every(Boolean) && !ownOrgCouldRun(consumer, plan, healthy)) {
            await ledger.refuse(row, `refused: ${reasons.join("; ")}`.slice(0, heldReasonCharsMax));
            deps.onEvent?.("refused");
          } else {
            const text = `waiting for an agreement to admit it: ${reasons.join("; ")}`;
            if (await ledger.hold(row, text.length > heldReasonCharsMax ? `${text.slice(0, heldReasonCharsMax - 3)}...` : text)) deps.onEvent?.("held");
          }
          continue;
        }
      }
      if (!pick) continue;
      load.set(pick.clusterId, load.get(pick.clusterId)! + 1);
      batch(pick, row, plan, row.attempts + 1, crossOrg?.agreementId);
    }
    // Mark first (every batch of the tick in one transaction, or one log write): a result can arrive (outbox) before the assign reply does.
    const marks: Assignment[] = [];
    for (const list of batches.values()) {
      for (const b of list) for (const s of b.specs) marks.push({ id: s.id, clusterId: b.member.clusterId, peerId: b.member.peerId, ...(admitted.has(s.id) ? { crossOrg: admitted.get(s.id)! } : {}) });
    }
    if (marks.length) await ledger.assign(marks);
    // A new leader hands assigned subtasks to their clusters again (same attempt; agents keep one copy per id).
    for (const row of redeliver) {
      const m = row.peer_id ? registry.getByPeer(row.peer_id) : undefined;
      if (m && !m.revoked && healthy.some((h) => h.peerId === m.peerId)) batch(m, row, planOf(row.task_id), row.attempts, row.agreement_id ?? undefined);
    }
    await Promise.all([...batches.values()].map(async (list) => {
      for (const b of list) {
        try {
          await deps.recordAssignments?.(b.member.clusterId, b.specs.map((s) => s.id));
          const r = await deps.deliver(b.member, b.specs);
          for (const s of b.specs) if (r.accepted.includes(s.id)) deps.onEvent?.("assigned");
          if (r.refused.length) {
            cooldown.set(b.member.clusterId, clock.now() + clusterCooldownMs);
            for (const x of r.refused) {
              deps.onEvent?.("refused");
              const row = store.subtask(x.id);
              if (row) await undoAssign(row, `refused by ${b.member.clusterId}: ${x.reason}`);
            }
          }
          deps.audit.append({ kind: "task-delegation", actor: "hub", subject: `grey://${b.member.org}/${b.member.region}/${b.member.clusterId}`, details: { subtasks: r.accepted } });
        } catch (err) {
          cooldown.set(b.member.clusterId, clock.now() + clusterCooldownMs);
          logger.warn("delegation failed", { cluster: b.member.clusterId, error: (err as Error).message });
          for (const s of b.specs) {
            const row = store.subtask(s.id);
            if (row) await undoAssign(row, `delivery to ${b.member.clusterId} failed`).catch((e) => logger.warn("undo of an assignment failed", { subtask: s.id, error: (e as Error).message }));
          }
        }
      }
    }));
  };

  /** A delivery that never happened does not count as an attempt. */
  const undoAssign = async (row: SubtaskRow, why: string) => {
    if (row.state !== "assigned") return;
    await ledger.undo(row, why);
  };

  /** 3. completion */
  const complete = async () => {
    const running = store.db.query<{ id: string }, []>("SELECT id FROM tasks WHERE state = 'running'").all();
    for (const { id } of running) {
      const c = completion(planOf(id), store.subtasksOf(id));
      if (c.kind === "wait") continue;
      if (c.kind === "reduce") {
        if (!store.subtask(`${id}.r`)) await ledger.addReducer(id, c.input);
        continue;
      }
      await ledger.finish(id, c.outcome);
      deps.onEvent?.(c.event);
      plans.delete(id);
    }
  };

  let busy = false;
  /** A tick asked for while one runs (a result or a submission arrived): run once more right after, not at the next period. */
  let again = false;
  let leading = false;
  return {
    async tick(): Promise<void> {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        do {
          again = false;
          if (deps.leads && !deps.leads()) {
            leading = false;
            return;
          }
          // Leadership (re)gained: this hub's view of every assigned subtask is the log's; deliver them again once.
          const redeliver = !leading && deps.leads ? store.byState("assigned") : [];
          const now = new Date(clock.now());
          await reclaim(now);
          await complete();
          await delegate(now, redeliver.filter((r) => store.subtask(r.id)?.state === "assigned"));
          leading = true;
        } while (again);
      } finally {
        busy = false;
      }
    },
  };
}
