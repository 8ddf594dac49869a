import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { admit, burstCeiling, priorityRank, runningSubtask, type Demand, type RunningSubtask } from "./admission.ts";
import type { Priority } from "./parse.ts";
import type { Agreement } from "./store.ts";

const GiB = 2 ** 30;

function agreement(id: string, over: { cpu?: number; memory?: number; priority?: Priority; memPriority?: Priority; preemption?: boolean; burst?: number } = {}): Agreement {
  const priority = over.priority ?? "medium";
  return {
    id,
    version: 1,
    provider: "org-a",
    consumer: `org-${id}`,
    resources: {
      cpu: { limitMilliCores: over.cpu ?? 10_000, priority },
      ...(over.memory === undefined ? {} : { memory: { limitBytes: over.memory, priority: over.memPriority ?? priority } }),
    },
    scheduling: { preemption: over.preemption ?? false, maxBurstPermille: over.burst ?? 1000 },
    billing: { model: "pay-per-use", rateCard: "standard-2024" },
    createdAt: "2024-01-01T00:00:00.000Z",
    updatedAt: "2024-01-01T00:00:00.000Z",
  };
}

const cpu = (milli: number): Demand => ({ cpuMilliCores: milli, memoryBytes: 0 });
const running = (subtaskId: string, agreementId: string, demand: Demand, priority: Priority, preemptible: boolean, startedSeq = 0): RunningSubtask => ({
  subtaskId, agreementId, demand, priority, preemptible, startedSeq,
});
const BIG: Demand = { cpuMilliCores: 1e9, memoryBytes: 1e15 };

describe("admit", () => {
  test("within the limit: admitted, no burst", () => {
    expect(admit(agreement("b"), { capacity: BIG, running: [] }, { subtaskId: "t1", demand: cpu(10_000) })).toEqual({ ok: true, priority: "medium", burst: false, preempt: [] });
  });

  test("above the limit only within max_burst, and says why", () => {
    const a = agreement("b", { burst: 1500 });
    const usage = { capacity: BIG, running: [running("t0", "b", cpu(10_000), "medium", false)] };
    expect(admit(a, usage, { subtaskId: "t1", demand: cpu(5_000) })).toMatchObject({ ok: true, burst: true });
    const refused = admit(a, usage, { subtaskId: "t1", demand: cpu(5_001) });
    expect(refused).toEqual({
      ok: false,
      reason: "org-b would use 15.001 cores of cpu from org-a, above its limit of 10 cores with max burst 1.5x (15 cores); 10 cores already in use",
    });
  });

  test("resources not in the agreement are refused", () => {
    const r = admit(agreement("b"), { capacity: BIG, running: [] }, { subtaskId: "t1", demand: { cpuMilliCores: 1, memoryBytes: GiB } });
    expect(r).toEqual({ ok: false, reason: "agreement b (org-a -> org-b) does not cover memory" });
    expect(admit(agreement("b"), { capacity: BIG, running: [] }, { subtaskId: "t1", demand: cpu(0) })).toMatchObject({ ok: false });
    expect(admit(agreement("b"), { capacity: BIG, running: [] }, { subtaskId: "t1", demand: cpu(-1) })).toMatchObject({ ok: false });
  });

  test("higher priority preempts lower-priority preemptible work, most recent first", () => {
    const high = agreement("h", { priority: "high" });
    const usage = {
      capacity: cpu(10_000),
      running: [
        running("old", "l", cpu(4_000), "low", true, 1),
        running("new", "l", cpu(4_000), "low", true, 2),
        running("med", "m", cpu(2_000), "medium", true, 3),
      ],
    };
    const r = admit(high, usage, { subtaskId: "t", demand: cpu(3_000) });
    expect(r).toMatchObject({ ok: true, priority: "high" });
    expect(r.ok && r.preempt.map((v) => v.subtaskId)).toEqual(["new"]);
    const r2 = admit(high, usage, { subtaskId: "t", demand: cpu(9_000) });
    expect(r2.ok && r2.preempt.map((v) => v.subtaskId)).toEqual(["new", "old", "med"]);
  });

  test("no preemption of equal priority or non-preemptible work", () => {
    const usage = {
      capacity: cpu(10_000),
      running: [running("m1", "m", cpu(5_000), "medium", true), running("l1", "l", cpu(5_000), "low", false)],
    };
    const r = admit(agreement("x", { priority: "medium" }), usage, { subtaskId: "t", demand: cpu(1_000) });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toBe(
      "org-a has no room for subtask t: it needs 1 core more cpu, and not enough preemptible work of lower priority than medium is running to free it",
    );
  });

  test("a request's priority is its weakest resource's", () => {
    const a = agreement("x", { priority: "high", memory: 8 * GiB, memPriority: "low" });
    const r = admit(a, { capacity: BIG, running: [] }, { subtaskId: "t", demand: { cpuMilliCores: 1, memoryBytes: GiB } });
    expect(r).toMatchObject({ ok: true, priority: "low" });
  });

  test("burst ceiling is exact", () => {
    expect(burstCeiling(3, 1500)).toBe(4);
    expect(burstCeiling(2 ** 52, 10_000)).toBe(2 ** 52 * 10);
  });
});

describe("admit properties", () => {
  const priority = fc.constantFrom<Priority>("low", "medium", "high");
  const agreementArb = fc.record({ cpu: fc.integer({ min: 1, max: 20 }), memory: fc.integer({ min: 1, max: 20 }), priority, memPriority: priority, preemption: fc.boolean(), burst: fc.integer({ min: 1000, max: 3000 }) });
  const op = fc.oneof(
    fc.record({ kind: fc.constant("admit" as const), who: fc.nat(2), cpu: fc.nat(8), memory: fc.nat(8) }),
    fc.record({ kind: fc.constant("release" as const), index: fc.nat(20) }),
  );

  test("usage never exceeds limit*burst nor capacity; preemption only of lower-priority preemptible work; nothing is lost", () => {
    fc.assert(
      fc.property(fc.array(agreementArb, { minLength: 3, maxLength: 3 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.array(op, { maxLength: 80 }), (specs, capCpu, capMem, ops) => {
        const agreements = specs.map((s, i) => agreement(`a${i}`, { ...s, cpu: s.cpu * 1000, memory: s.memory * GiB }));
        const capacity: Demand = { cpuMilliCores: capCpu * 1000, memoryBytes: capMem * GiB };
        let live: RunningSubtask[] = [];
        const requeued: string[] = [];
        const released: string[] = [];
        const refused: string[] = [];
        let submitted = 0;
        let seq = 0;
        for (const o of ops) {
          if (o.kind === "release") {
            const victim = live[o.index % Math.max(1, live.length)];
            if (victim) {
              live = live.filter((r) => r !== victim);
              released.push(victim.subtaskId);
            }
            continue;
          }
          const a = agreements[o.who]!;
          const request = { subtaskId: `s${submitted++}`, demand: { cpuMilliCores: o.cpu * 500, memoryBytes: o.memory * (GiB / 2) } };
          const r = admit(a, { capacity, running: live }, request);
          if (!r.ok) {
            expect(r.reason.length).toBeGreaterThan(10);
            refused.push(request.subtaskId);
            continue;
          }
          for (const v of r.preempt) {
            expect(v.preemptible).toBe(true);
            expect(priorityRank(v.priority)).toBeLessThan(priorityRank(r.priority));
            expect(live).toContain(v);
            requeued.push(v.subtaskId);
          }
          live = live.filter((x) => !r.preempt.includes(x));
          live.push(runningSubtask(a, request, r, seq++));

          for (const k of ["cpuMilliCores", "memoryBytes"] as const) {
            expect(live.reduce((n, x) => n + x.demand[k], 0)).toBeLessThanOrEqual(capacity[k]);
            for (const ag of agreements) {
              const limit = k === "cpuMilliCores" ? ag.resources.cpu!.limitMilliCores : ag.resources.memory!.limitBytes;
              const used = live.filter((x) => x.agreementId === ag.id).reduce((n, x) => n + x.demand[k], 0);
              expect(used).toBeLessThanOrEqual(burstCeiling(limit, ag.scheduling.maxBurstPermille));
            }
          }
        }
        const accounted = new Set([...live.map((x) => x.subtaskId), ...requeued, ...released, ...refused]);
        expect(accounted.size).toBe(submitted);
      }),
      { numRuns: 300 },
    );
  });

  test("an admission that fits free capacity preempts nothing", () => {
    fc.assert(
      fc.property(agreementArb, fc.nat(8), fc.integer({ min: 1, max: 8 }), (spec, used, want) => {
        const a = agreement("a", { ...spec, cpu: spec.cpu * 1000, memory: spec.memory * GiB });
        const live = used > 0 ? [running("r", "other", cpu(used * 1000), "low", true)] : [];
        const r = admit(a, { capacity: cpu(20_000), running: live }, { subtaskId: "t", demand: cpu(want * 1000) });
        if (r.ok && (used + want) * 1000 <= 20_000) expect(r.preempt).toEqual([]);
      }),
    );
  });
});
