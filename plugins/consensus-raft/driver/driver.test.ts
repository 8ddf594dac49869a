/** The driver over the in-memory transport: replication, restart from disk, failover, compaction, bad input. */
import { afterEach, expect, test } from "bun:test";
import { MalformedInputError, UnsupportedVersionError } from "../../sdk/errors.ts";
import { NotLeaderError } from "../core/index.ts";
import { KvStateMachine } from "./kv-state-machine.ts";
import { TestGroup } from "./testing.ts";
import { decodeRaftMessage, encodeRaftMessage } from "./wire.ts";
import { encodeCbor } from "../../sdk/codec.ts";
import { OutboundQueue } from "./transport.ts";

let g: TestGroup | undefined;
afterEach(async () => {
  await g?.stop();
  g = undefined;
});

test("three members elect a leader and apply 200 concurrent proposals in the same order everywhere", async () => {
  g = await new TestGroup([1, 2, 3]).start();
  const l = await g.leader();
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => l.driver.propose(KvStateMachine.put(`k${i}`, `v${i}`))));
  expect(new Set(results.map((r) => r.index)).size).toBe(200);
  await g.until("followers applied", () => [...g!.members.values()].every((m) => m.sm.keys().length === 200));
  for (const m of g.members.values()) expect(m.sm.get("k199")).toBe("v199");
  // group commit: far fewer fsyncs than proposals on the leader
  expect(l.driver.stats.fsyncs).toBeLessThan(200);
});

test("a commit costs the leader one fsync (its entries): the Ready that only moves the commit index is not synced", async () => {
  g = await new TestGroup([1, 2, 3]).start();
  const l = await g.leader();
  await l.driver.propose(KvStateMachine.put("warm", "up"));
  const before = { ...l.driver.stats };
  for (let i = 0; i < 20; i++) await l.driver.propose(KvStateMachine.put(`k${i}`, "v"));
  expect(l.driver.stats.fsyncs - before.fsyncs).toBeLessThanOrEqual(21);
  expect(l.driver.stats.readies - before.readies).toBeGreaterThanOrEqual(40); // entries, then commit, per proposal
});

test("a follower refuses proposals with the leader hint; reads are linearizable barriers", async () => {
  g = await new TestGroup([1, 2, 3]).start();
  const l = await g.leader();
  const f = [...g.members.values()].find((m) => m.id !== l.id)!;
  const err = await f.driver.propose(KvStateMachine.put("a", "1")).catch((e) => e);
  expect(err).toBeInstanceOf(NotLeaderError);
  expect((err as NotLeaderError).leader).toBe(l.id);
  const { index } = await l.driver.propose(KvStateMachine.put("a", "1"));
  const r = await f.driver.read();
  expect(r.index).toBeGreaterThanOrEqual(index);
  expect(f.sm.get("a")).toBe("1");
});

test("leader loss: a new leader within an election, nothing acknowledged lost, restart from disk", async () => {
  g = await new TestGroup([1, 2, 3]).start();
  const l1 = await g.leader();
  for (let i = 0; i < 20; i++) await l1.driver.propose(KvStateMachine.put(`x${i}`, "1"));
  await g.stopMember(l1.id);
  const l2 = await g.leader();
  expect(l2.id).not.toBe(l1.id);
  await l2.driver.propose(KvStateMachine.put("after", "1"));
  // the old leader restarts from its files and catches up
  const back = await g.startMember(l1.id, g.ids);
  await g.until("restarted member catches up", () => back.sm.get("after") === "1");
  expect(back.sm.keys()).toHaveLength(21);
});

test("compaction: a member that was away receives a snapshot", async () => {
  g = await new TestGroup([1, 2, 3], { snapshotEveryEntries: 20 }).start();
  const l = await g.leader();
  const away = [...g.members.values()].find((m) => m.id !== l.id)!.id;
  g.net.isolate(away);
  for (let i = 0; i < 60; i++) await l.driver.propose(KvStateMachine.put(`s${i}`, String(i)));
  expect(l.driver.status().firstIndex).toBeGreaterThan(20);
  g.net.isolate(away, false);
  const m = g.members.get(away)!;
  await g.until("snapshot installed", () => m.sm.get("s59") === "59");
  expect(m.sm.keys()).toHaveLength(60);
});

test("garbage from the network is refused with a typed error and counted, never stepped", async () => {
  g = await new TestGroup([1, 2, 3]).start();
  const l = await g.leader();
  const to = l.id;
  const from = to === 2 ? 3 : 2;
  const good = { type: "heartbeat", from, to, term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
  const bad: [unknown, Function][] = [
    [encodeCbor("nope"), MalformedInputError],
    [new Uint8Array([0xff, 0x00, 0x13]), MalformedInputError],
    [encodeCbor({ v: 9, ...good }), UnsupportedVersionError],
    [encodeCbor({ v: 1, ...good, type: "bogus" }), MalformedInputError],
    [encodeCbor({ v: 1, ...good, type: "snap" }), MalformedInputError], // snap without snapshot
    [encodeCbor({ v: 1, ...good, type: "readIndex" }), MalformedInputError], // no context
    [encodeCbor({ v: 1, ...good, type: "app", term: 5, index: 3, entries: [{ index: 7, term: 1, type: "normal", data: new Uint8Array(1) }] }), MalformedInputError],
    [encodeCbor({ v: 1, ...good, type: "app", term: 5, index: 3, entries: [{ index: 4, term: 1, type: "conf", data: new Uint8Array([1, 2]) }] }), MalformedInputError],
    [encodeCbor({ v: 1, ...good, term: -1 }), MalformedInputError],
  ];
  for (const [frame, cls] of bad) expect(() => decodeRaftMessage(frame as Uint8Array)).toThrow(cls as never);
  expect(decodeRaftMessage(encodeRaftMessage(good as never)).type).toBe("heartbeat");
  // the same garbage through the transport: counted, the group keeps working
  const deliver = (g.members.get(to)!.driver as unknown as { receive(raw: unknown, from: number): void });
  for (const [frame] of bad) deliver.receive((() => { try { return decodeRaftMessage(frame as Uint8Array); } catch { return frame; } })(), from);
  deliver.receive({ v: 1, ...good, to: 99 }, from);
  deliver.receive({ v: 1, ...good, from: 99 }, from); // spoofed sender
  deliver.receive(null, from);
  expect(l.driver.stats.rejectedMessages).toBe(bad.length + 3);
  await l.driver.propose(KvStateMachine.put("still", "ok"));
});

test("outbound queue: bounded, drops the oldest heartbeat first, then the oldest message", () => {
  const q = new OutboundQueue<{ type: string; n: number }>(3);
  q.push({ type: "app", n: 1 });
  q.push({ type: "heartbeat", n: 2 });
  q.push({ type: "app", n: 3 });
  expect(q.push({ type: "app", n: 4 })?.n).toBe(2);
  expect(q.push({ type: "app", n: 5 })?.n).toBe(1);
  expect(q.drain().map((m) => m.n)).toEqual([3, 4, 5]);
  expect(q.dropped).toBe(2);
});
