import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeCbor } from "../../plugins/sdk/codec.ts";
import { applyOutbox, OutboxReceiver } from "./outbox.ts";
import { aggregate, planTask, splitItems } from "./spec.ts";
import { TaskStore } from "./store.ts";

const clock = { now: () => 1_000 };
const utf8 = (s: string) => new TextEncoder().encode(s);

describe("task plan", () => {
  test("split, sum and concat", () => {
    expect(splitItems([1, 2, 3, 4, 5, 6, 7], 3)).toEqual([[1, 2, 3], [4, 5], [6, 7]]);
    expect(new TextDecoder().decode(aggregate("sum", [utf8("[1,2]"), utf8("3")]))).toBe("6");
    expect(new TextDecoder().decode(aggregate("concat", [utf8("a"), utf8("b")], "-"))).toBe("a-b");
    expect(() => planTask({ module: "AA==", split: { items: [1], ways: 1 }, input: "x" })).toThrow(/exactly one/);
    expect(() => planTask({ module: "AA==", aggregate: { kind: "reducer" } })).toThrow(/aggregate.module/);
  });
});

describe("outbox receipt", () => {
  test("exactly once: resent entries are skipped, a second result for a subtask is a duplicate", () => {
    const dir = mkdtempSync(join(tmpdir(), "grey-tasks-"));
    const store = TaskStore.open(join(dir, "tasks.db"), clock);
    try {
      store.createTask("t1", planTask({ module: "AA==", partitions: [{ input: "a" }] }), "test");
      const result = (cluster: string) => encodeCbor({ subtaskId: "t1.0", taskId: "t1", attempt: 1, ok: true, output: utf8(cluster), cpuMs: 1, wallMs: 1, startedAt: 1, finishedAt: 2 });
      const e1 = [{ seq: 1, kind: "result" as const, at: 1, body: result("x") }, { seq: 2, kind: "audit" as const, at: 1, body: encodeCbor({ event: "e", subject: "s", details: {} }) }];
      expect(applyOutbox(store, "peer-x", "x", e1).applied).toBe(2);
      const again = applyOutbox(store, "peer-x", "x", e1);
      expect(again).toMatchObject({ applied: 0, skipped: 2, highWater: 2 });
      const late = applyOutbox(store, "peer-y", "y", [{ seq: 1, kind: "result", at: 1, body: result("y") }]);
      expect(late.results.duplicate).toBe(1);
      const s = store.subtask("t1.0")!;
      expect(new TextDecoder().decode(s.output!)).toBe("x");
      expect(s.result_cluster).toBe("x");
      expect(s.duplicates).toBe(1);
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("group commit: pushes from several agents commit in one transaction, each acknowledged for its own entries; a bad push fails alone", async () => {
    const dir = mkdtempSync(join(tmpdir(), "grey-tasks-"));
    const store = TaskStore.open(join(dir, "tasks.db"), clock);
    try {
      store.createTask("t2", planTask({ module: "AA==", partitions: Array.from({ length: 6 }, (_, i) => ({ input: String(i) })) }), "test");
      const result = (i: number) => encodeCbor({ subtaskId: `t2.${i}`, taskId: "t2", attempt: 1, ok: true, output: utf8(String(i)), cpuMs: 1, wallMs: 1, startedAt: 1, finishedAt: 2 });
      const receiver = new OutboxReceiver(store);
      const push = (peer: string, from: number, n: number) =>
        receiver.apply(peer, peer, Array.from({ length: n }, (_, k) => ({ seq: k + 1, kind: "result" as const, at: 1, body: result(from + k) })));
      const bad = receiver.apply("peer-bad", "bad", [{ seq: 1, kind: "result", at: 1, body: new Uint8Array([0xff, 0xff]) }]);
      const [a, b, c] = await Promise.all([push("peer-a", 0, 2), push("peer-b", 2, 2), push("peer-c", 4, 2)]);
      await expect(bad).rejects.toThrow();
      expect([a.highWater, b.highWater, c.highWater]).toEqual([2, 2, 2]);
      expect(receiver.stats).toEqual({ commits: 1, pushes: 4 });
      expect(store.subtasksOf("t2").every((s) => s.state === "done")).toBe(true);
      expect(store.highWater("peer-bad")).toBe(0);
      // A resend after a lost ack: skipped, nothing applied twice.
      const again = await push("peer-a", 0, 2);
      expect(again).toMatchObject({ applied: 0, skipped: 2, highWater: 2 });
      expect(store.subtask("t2.0")!.duplicates).toBe(0);
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
