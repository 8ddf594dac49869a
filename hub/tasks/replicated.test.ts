/** Task state through the federation log: the same commands give the same rows on every hub; one scheduler at a time. */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeCbor } from "../../plugins/sdk/codec.ts";
import type { SubtaskSpec } from "../../plugins/sdk/wire-tasks.ts";
import { decodeCommand, encodeCommand, type FedlogCommand } from "../fedlog/commands.ts";
import type { Member } from "../registry/index.ts";
import { replicatedLedger } from "./replicated.ts";
import { createScheduler } from "./scheduler.ts";
import { planTask } from "./spec.ts";
import { TaskStore } from "./store.ts";

const dir = mkdtempSync(join(tmpdir(), "grey-tasks-repl-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const utf8 = (s: string) => new TextEncoder().encode(s);

/** Three hubs on one in-process "log": every write is encoded, decoded and applied on each, in order. */
function group(n = 3) {
  const written: FedlogCommand[] = [];
  const hubs = Array.from({ length: n }, (_, i) => {
    let now = 1_000 + i * 777; // each hub's clock differs: rows must not
    const clock = { now: () => now++ };
    const appliers = new Map<string, (c: FedlogCommand) => void>();
    const store = TaskStore.open(join(dir, `tasks-${crypto.randomUUID()}.db`), clock);
    return { store, appliers, clock, ledger: undefined as unknown as ReturnType<typeof replicatedLedger> };
  });
  const log = (i: number) => ({
    onApply: (type: string, fn: (c: never) => void) => void hubs[i]!.appliers.set(type, fn as (c: FedlogCommand) => void),
    async write(cmd: FedlogCommand) {
      const c = decodeCommand(encodeCommand(cmd));
      written.push(c);
      for (const h of hubs) h.appliers.get(c.type)?.(c);
      return written.length;
    },
  });
  hubs.forEach((h, i) => (h.ledger = replicatedLedger(h.store, log(i) as never, h.clock)));
  const rows = (s: TaskStore) => ["tasks", "subtasks", "receipts", "agent_records", "modules"].map((t) => s.db.query(`SELECT * FROM ${t} ORDER BY 1, 2`).all());
  return { hubs, written, rows };
}

const result = (sub: string, task: string, out: string) => encodeCbor({ subtaskId: sub, taskId: task, attempt: 1, ok: true, output: utf8(out), cpuMs: 1, wallMs: 1, startedAt: 5, finishedAt: 6 });

test("submission, assignments, failover, results (first wins, resends skipped on any hub) and the aggregate: same rows on every hub", async () => {
  const { hubs, written, rows } = group();
  const [a, b] = [hubs[0]!, hubs[1]!];
  await a.ledger.submit("t1", planTask({ module: "AGFzbQEAAAA=", partitions: [{ input: "x" }, { input: "y" }] }), "api:test");
  await a.ledger.submit("t2", planTask({ module: "AGFzbQEAAAA=", input: "z" }), "api:test");
  expect(written.filter((c) => c.type === "task-module")).toHaveLength(1); // by content hash, once
  await a.ledger.assign([{ id: "t1.0", clusterId: "c1", peerId: "p1" }, { id: "t1.1", clusterId: "c2", peerId: "p2" }]);
  expect(await a.ledger.release(a.store.subtask("t1.1")!, 4, "cluster c2 is suspect")).toBe("pending");
  await a.ledger.assign([{ id: "t1.1", clusterId: "c1", peerId: "p1" }]);
  // c1 pushes to hub a; its resend and c2's late result arrive at hub b
  const push = [{ seq: 1, kind: "result" as const, at: 9, body: result("t1.0", "t1", "X") }, { seq: 2, kind: "result" as const, at: 9, body: result("t1.1", "t1", "Y") }];
  expect((await a.ledger.outbox("p1", "c1", push)).highWater).toBe(2);
  expect(await b.ledger.outbox("p1", "c1", push)).toMatchObject({ highWater: 2, applied: 0, skipped: 2 });
  expect((await b.ledger.outbox("p2", "c2", [{ seq: 1, kind: "result", at: 9, body: result("t1.1", "t1", "late") }])).results.duplicate).toBe(1);
  await a.ledger.finish("t1", {});
  for (const h of hubs) {
    const t = h.store.task("t1")!;
    expect([t.state, new TextDecoder().decode(t.result!)]).toEqual(["done", "XY"]);
    expect(JSON.parse(h.store.subtask("t1.1")!.history)).toEqual(["c2", "c1"]);
    expect(h.store.subtask("t1.1")!.duplicates).toBe(1);
  }
  expect(rows(hubs[1]!.store)).toEqual(rows(a.store));
  expect(rows(hubs[2]!.store)).toEqual(rows(a.store));
});

test("a submission too large for one log command is refused with a clear error, nothing written", async () => {
  const { hubs, written } = group(1);
  const big = Array.from({ length: 8 }, () => ({ input: "x".repeat(16_000) }));
  await expect(hubs[0]!.ledger.submit("t9", planTask({ module: "AGFzbQEAAAA=", partitions: big }), "api:test")).rejects.toMatchObject({ code: "ERR_MESSAGE_TOO_LARGE" });
  expect(written).toHaveLength(0);
});

test("only the leader schedules; a hub that becomes leader delivers the assigned subtasks again", async () => {
  const { hubs } = group(2);
  const [a, b] = [hubs[0]!, hubs[1]!];
  const m: Member = { clusterId: "c1", org: "acme", region: "eu", peerId: "p1", multiaddrs: [], revoked: null } as unknown as Member;
  const registry = { healthy: () => ({ items: [m] }), getByPeer: () => m, stateOf: () => "healthy" as const };
  const delivered: { hub: string; ids: string[] }[] = [];
  const sched = (h: typeof a, name: string, leads: () => boolean) => createScheduler({
    store: h.store, registry: registry as never, audit: { append: () => {} } as never, logger: { info() {}, warn() {}, error() {}, debug() {} } as never, clock: h.clock,
    ledger: h.ledger, leads,
    deliver: async (_m, specs: SubtaskSpec[]) => {
      delivered.push({ hub: name, ids: specs.map((s) => s.id) });
      return { accepted: specs.map((s) => s.id), refused: [] };
    },
  });
  let aLeads = true;
  await a.ledger.submit("t1", planTask({ module: "AGFzbQEAAAA=", input: "x" }), "api:test");
  await sched(b, "b", () => !aLeads).tick(); // follower: nothing
  expect(delivered).toEqual([]);
  // a records and delivers the assignment; whether it got there before a died, the next leader cannot know
  const sa = sched(a, "a", () => aLeads);
  await sa.tick();
  expect(delivered).toEqual([{ hub: "a", ids: ["t1.0"] }]);
  expect(b.store.subtask("t1.0")!.state).toBe("assigned");
  aLeads = false;
  const sb = sched(b, "b", () => !aLeads);
  await sb.tick();
  expect(delivered[1]).toEqual({ hub: "b", ids: ["t1.0"] }); // re-delivered once on taking over
  await sb.tick();
  expect(delivered).toHaveLength(2);
  expect(b.store.subtask("t1.0")!.attempts).toBe(1);
});
