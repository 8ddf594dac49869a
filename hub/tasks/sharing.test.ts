import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeCbor } from "../../plugins/sdk/codec.ts";
import type { Logger } from "../../plugins/sdk/plugin.ts";
import type { SubtaskSpec } from "../../plugins/sdk/wire-tasks.ts";
import { agreementId, AgreementStore } from "../agreements/store.ts";
import { UsageMeter } from "../billing/meter.ts";
import type { Member } from "../registry/index.ts";
import { applyOutbox, meteredUsage } from "./outbox.ts";
import { taskView } from "./routes.ts";
import { createScheduler, type SchedulerDeps } from "./scheduler.ts";
import { capacityUnbounded, resolveSharedCapacity } from "./sharing.ts";
import { planTask } from "./spec.ts";
import { TaskStore } from "./store.ts";

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const member = (clusterId: string, org: string): Member => ({
  clusterId, org, region: "eu", peerId: `peer-${clusterId}`, multiaddrs: [], certSerial: "1", certNotAfter: new Date(8e15),
  attestation: {} as Member["attestation"], joinedAt: new Date(0), lastSeen: new Date(0),
});

const agreementYaml = (provider: string, consumer: string, o: { cpu: string; priority?: string; preemption?: boolean; burst?: string }) => `agreement:
  provider: ${provider}
  consumer: ${consumer}
  resources:
    cpu: { limit: "${o.cpu}", priority: ${o.priority ?? "medium"} }
  scheduling:
    preemption: ${o.preemption ?? false}
    max_burst: "${o.burst ?? "1x"}"
  billing:
    model: pay-per-use
    rate_card: standard-2024
`;

function world(members: Member[], capacity: Record<string, { cpu?: string }> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "grey-sharing-"));
  dirs.push(dir);
  let now = 1_000_000;
  const clock = { now: () => now };
  const store = TaskStore.open(join(dir, "tasks.db"), clock);
  const agreements = AgreementStore.open(join(dir, "agreements.db"));
  const audits: { kind: string; subject: string; details: Record<string, unknown> }[] = [];
  const delivered: { cluster: string; specs: SubtaskSpec[] }[] = [];
  const caps = resolveSharedCapacity(capacity);
  const deps: SchedulerDeps = {
    store,
    registry: {
      healthy: () => ({ items: members }),
      list: () => ({ items: members }),
      getByPeer: (p: string) => members.find((m) => m.peerId === p),
      stateOf: () => "healthy",
    } as unknown as SchedulerDeps["registry"],
    audit: { append: (r: { kind: string; subject: string; details?: Record<string, unknown> }) => void audits.push({ kind: r.kind, subject: r.subject, details: r.details ?? {} }) } as unknown as SchedulerDeps["audit"],
    deliver: async (m, specs) => {
      delivered.push({ cluster: m.clusterId, specs });
      return { accepted: specs.map((s) => s.id), refused: [] };
    },
    logger: quiet,
    clock,
    sharing: {
      hubOrg: "org-a",
      agreementFor: (p, c) => agreements.getAgreement(agreementId(p, c)),
      capacityOf: (org) => caps.get(org) ?? capacityUnbounded,
    },
  };
  const scheduler = createScheduler(deps);
  const submit = (id: string, consumer: string, n: number, placement: object = {}) =>
    store.createTask(id, planTask({ module: "AAECAw==", partitions: Array.from({ length: n }, (_, i) => ({ input: String(i) })), placement }), "test", consumer);
  const view = (id: string) => taskView(store.task(id)!, store.subtasksOf(id));
  const apply = (yaml: string) => agreements.applyAgreement(yaml, now);
  return { store, agreements, audits, delivered, scheduler, submit, view, apply, tick: () => scheduler.tick(), advance: (ms: number) => (now += ms), dir };
}

describe("cross-org placement under agreements", () => {
  test("same-org work needs no agreement; cross-org work without one is refused with the reason", async () => {
    const w = world([member("a1", "org-a"), member("b1", "org-b")]);
    w.submit("own", "org-b", 1, { orgs: ["org-b"] });
    w.submit("cross", "org-b", 1, { orgs: ["org-a"] });
    await w.tick();
    expect(w.view("own").subtasks![0]!.state).toBe("assigned");
    await w.tick(); // completion pass sees the refused subtask
    const v = w.view("cross");
    expect(v.state).toBe("failed");
    expect(v.subtasks![0]!.state).toBe("failed");
    expect(v.error).toContain("org-b has no agreement with org-a");
  });

  test("a consumer runs up to its limit; beyond it subtasks are held with the reason, and run once room frees", async () => {
    const w = world([member("a1", "org-a"), member("a2", "org-a")]);
    const { agreement } = w.apply(agreementYaml("org-a", "org-b", { cpu: "2 cores" }));
    w.submit("t1", "org-b", 3);
    await w.tick();
    const v = w.view("t1");
    const states = v.subtasks!.map((s) => s.state);
    expect(states.filter((s) => s === "assigned").length).toBe(2);
    const held = v.subtasks!.find((s) => s.state === "pending")!;
    expect(held.held).toContain("org-b would use 3 cores of cpu from org-a, above its limit of 2 cores");
    expect(v.held).toContain(held.id);
    for (const s of v.subtasks!.filter((s) => s.state === "assigned")) expect(s.agreement).toBe(agreement.id);
    expect(w.delivered.flatMap((d) => d.specs).every((s) => s.agreementId === agreement.id)).toBe(true);
    // one finishes: the held one is admitted on the next tick
    const done = v.subtasks!.find((s) => s.state === "assigned")!;
    applyOutbox(w.store, "peer-a1", "a1", [{ seq: 1, kind: "result", at: 1, body: encodeCbor({ subtaskId: done.id, taskId: "t1", attempt: 1, ok: true, output: new Uint8Array([1]), cpuMs: 1, wallMs: 1, startedAt: 1, finishedAt: 2 }) }]);
    await w.tick();
    expect(w.view("t1").subtasks!.filter((s) => s.state === "assigned").length).toBe(2);
    expect(w.view("t1").held).toBeUndefined();
  });

  test("max_burst lets a consumer go above its limit, no further", async () => {
    const w = world([member("a1", "org-a")]);
    w.apply(agreementYaml("org-a", "org-b", { cpu: "2 cores", burst: "1.5x" }));
    w.submit("t1", "org-b", 4);
    await w.tick();
    const subs = w.view("t1").subtasks!;
    expect(subs.filter((s) => s.state === "assigned").length).toBe(3);
    expect(subs.find((s) => s.state === "pending")!.held).toMatch(/max burst 1\.5x \(3 cores\)/);
  });

  test("higher priority preempts lower-priority preemptible work on a full provider; the victim is requeued and audited", async () => {
    const w = world([member("a1", "org-a")], { "org-a": { cpu: "2 cores" } });
    w.apply(agreementYaml("org-a", "org-b", { cpu: "10 cores", priority: "low", preemption: true }));
    w.apply(agreementYaml("org-a", "org-c", { cpu: "10 cores", priority: "high" }));
    w.submit("low", "org-b", 2);
    await w.tick();
    expect(w.view("low").subtasks!.every((s) => s.state === "assigned")).toBe(true);
    w.advance(10);
    w.submit("high", "org-c", 1);
    await w.tick();
    expect(w.view("high").subtasks![0]!.state).toBe("assigned");
    const low = w.view("low").subtasks!;
    const victim = low.find((s) => s.state === "pending")!;
    expect(low.filter((s) => s.state === "assigned").length).toBe(1);
    expect(victim.error).toContain("preempted on org-a");
    expect(victim.attempts).toBe(0); // requeued; a preemption is not a failed attempt
    expect(victim.preemptions).toBe(1);
    const audit = w.audits.filter((a) => a.kind === "preemption");
    expect(audit.length).toBe(1);
    expect(audit[0]!.subject).toBe(victim.id);
    // no capacity left for it now: held, with the capacity reason
    await w.tick();
    expect(w.view("low").subtasks!.find((s) => s.id === victim.id)!.held).toContain(`org-a has no room for subtask ${victim.id}`);
    // an equal-priority consumer does not preempt anything (strictly higher only)
    w.apply(agreementYaml("org-a", "org-d", { cpu: "10 cores", priority: "low" }));
    w.submit("d", "org-d", 1);
    w.submit("d2", "org-d", 1);
    await w.tick();
    expect(w.view("d").subtasks![0]!.state).toBe("pending");
    // one evaluation per provider org and tick; each held subtask's reason names itself
    expect(w.view("d2").subtasks![0]!.held).toContain("org-a has no room for subtask d2.0");
    expect(w.audits.filter((a) => a.kind === "preemption").length).toBe(1);
  });

  test("bad sharedCapacity is refused with every problem and its path", () => {
    expect(() => resolveSharedCapacity({ "org-a": { cpu: "lots" }, "org-b": { memory: "5" } })).toThrow(/sharedCapacity\.org-a\.cpu[\s\S]*sharedCapacity\.org-b\.memory/);
  });
});

describe("metering from the outbox", () => {
  test("usage is metered under the agreement the subtask ran under, exactly once across replays", async () => {
    const w = world([member("a1", "org-a"), member("b1", "org-b")]);
    const { agreement } = w.apply(agreementYaml("org-a", "org-b", { cpu: "4 cores" }));
    w.submit("t1", "org-b", 1, { orgs: ["org-a"] });
    w.submit("own", "org-b", 1, { orgs: ["org-b"] });
    await w.tick();
    const meter = UsageMeter.open(join(w.dir, "agreements.db"));
    try {
      const usage = (subtaskId: string, claimed: string) => encodeCbor({ id: `${subtaskId}#1@peer`, agreementId: claimed, subtaskId, at: 5_000, cpuMilliCoreSeconds: 1200, memoryByteSeconds: 64, transferBytes: 10 });
      const entries = [{ seq: 1, kind: "usage" as const, at: 1, body: usage("t1.0", "forged-agreement") }];
      const meterAll = (r: ReturnType<typeof applyOutbox>, org = "org-a") =>
        r.usage.map((u) => meteredUsage(w.store, u, org, "org-a")).filter((u) => u !== undefined).map((u) => meter.record(u));
      expect(meterAll(applyOutbox(w.store, "peer-a1", "a1", entries))).toEqual(["recorded"]);
      // same-org work (org-b's task on org-b's cluster) names no agreement: not billed
      expect(meterAll(applyOutbox(w.store, "peer-b1", "b1", [{ seq: 1, kind: "usage", at: 1, body: usage("own.0", "unmetered") }]), "org-b")).toEqual([]);
      // the agent resends (no ack seen): skipped by seq; even if the hub had lost its mark, the meter counts it once
      expect(meterAll(applyOutbox(w.store, "peer-a1", "a1", entries))).toEqual([]);
      w.store.db.exec("DELETE FROM receipts");
      expect(meterAll(applyOutbox(w.store, "peer-a1", "a1", entries))).toEqual(["duplicate"]);
      const totals = meter.totals(agreement.id, new Date(0), new Date(10_000));
      expect(totals).toEqual({ cpu: 1200n, memory: 64n, transfer: 10n, records: 1 });
      expect(meter.totals("forged-agreement", new Date(0), new Date(10_000)).records).toBe(0);
    } finally {
      meter.close();
    }
  });
});
