/**
 * Federation log snapshots carry everything the log's commands build: members (with revocations,
 * and removals), hub announcements and peers, agreements with their versions, and the replicated
 * task state (tasks, subtasks, modules, outbox high-water marks and records). Restore replaces the
 * local state, row for row, and is idempotent.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../plugins/consensus-raft/driver/testing.ts";
import { decodeCbor, encodeCbor } from "../../plugins/sdk/codec.ts";
import { AgreementStore } from "../agreements/store.ts";
import { EXAMPLE_YAML } from "../agreements/testdata.ts";
import { openRegistry, type Registry } from "../registry/index.ts";
import { replicatedLedger } from "../tasks/replicated.ts";
import { planTask } from "../tasks/spec.ts";
import { TaskStore } from "../tasks/store.ts";
import { encodeCommand, type FedlogCommand } from "./commands.ts";
import { FEDLOG_SNAPSHOT_VERSION } from "./constants.ts";
import { FedlogStateMachine, type FedlogSnapshotPart } from "./state-machine.ts";

const dirs: string[] = [];
const open: { close(): void }[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** One hub's stores wired as the hub wires them: appliers and snapshot parts registered by the services. */
function hub(clockStart = 1_000) {
  const d = mkdtempSync(join(tmpdir(), "grey-fedlog-snap-"));
  dirs.push(d);
  let now = clockStart;
  const clock = { now: () => now++ };
  const reg = openRegistry(join(d, "hub.db"), { heartbeatIntervalMs: 1000 });
  const tasks = TaskStore.open(join(d, "tasks.db"), clock);
  const agreements = AgreementStore.open(join(d, "agreements.db"));
  const appliers = new Map<FedlogCommand["type"], (c: FedlogCommand) => void>();
  const parts = new Map<string, FedlogSnapshotPart>();
  const sm = new FedlogStateMachine(join(d, "fedlog.db"), reg, silentLogger, appliers, { parts });
  open.push(sm, tasks, agreements, reg);
  let index = 0;
  const apply = (c: FedlogCommand) => sm.apply({ index: ++index, data: encodeCommand(c) });
  const log = {
    onApply: (type: FedlogCommand["type"], fn: (c: never) => void) => void appliers.set(type, fn as (c: FedlogCommand) => void),
    onSnapshot: (name: string, part: FedlogSnapshotPart) => void parts.set(name, part),
    async write(c: FedlogCommand) {
      const r = apply(c);
      if (!r.ok) throw new Error(r.message);
      return index;
    },
  };
  // the agreements service's applier and part (hub/agreements/service.ts)
  log.onApply("agreement-applied", ((c: Extract<FedlogCommand, { type: "agreement-applied" }>) => void agreements.applyAgreement(String(c.body.source ?? ""), c.at)) as never);
  log.onSnapshot("agreements", { owner: "agreement-applied", export: () => agreements.exportSnapshot(), import: (i) => agreements.importSnapshot(i) });
  const ledger = replicatedLedger(tasks, log as never, clock);
  return { reg, tasks, agreements, sm, apply, ledger, setIndex: (i: number) => void (index = i) };
}

const att = { format: "dev", ok: true, checks: [], claims: {} };
const utf8 = (s: string) => new TextEncoder().encode(s);
const result = (sub: string, task: string, out: string) => encodeCbor({ subtaskId: sub, taskId: task, attempt: 1, ok: true, output: utf8(out), cpuMs: 1.5, wallMs: 2, startedAt: 5, finishedAt: 6 });

const taskTables = (s: TaskStore) => Object.fromEntries(["tasks", "subtasks", "modules", "receipts", "agent_records"].map((t) => [t, s.db.query(`SELECT * FROM ${t} ORDER BY 1, 2`).all()]));
const members = (r: Registry) => r.list({ limit: 1000 }).items;
const agreementRows = (a: AgreementStore) => a.listAgreements().map((x) => ({ ...x, versions: a.versions(x.id) }));

async function buildState(a: ReturnType<typeof hub>) {
  a.apply({ type: "hub-announced", member: 7, peerId: "12D3KooWhub7", api: "https://127.0.0.1:9000", at: 1 });
  a.apply({ type: "hub-added", member: 8, peerId: "12D3KooWhub8", multiaddrs: ["/ip4/10.0.0.8/tcp/4001/p2p/12D3KooWhub8"], at: 2 });
  a.apply({ type: "member-joined", clusterId: "edge-a", org: "acme", region: "eu", peerId: "peer-a", multiaddrs: ["/ip4/1.2.3.4/tcp/1"], certSerial: "01", certNotAfter: 9e12, attestation: att, at: 1000 });
  a.apply({ type: "member-joined", clusterId: "edge-b", org: "acme", region: "us", peerId: "peer-b", multiaddrs: [], certSerial: "02", certNotAfter: 9e12, attestation: att, at: 1100 });
  a.apply({ type: "member-renewed", peerId: "peer-a", certSerial: "03", certNotAfter: 9.1e12, attestation: att, at: 2000 });
  a.apply({ type: "member-revoked", peerId: "peer-b", reason: "re-attestation failed", at: 3000 });
  a.apply({ type: "task-assigned", taskId: "t-1.0", clusterId: "edge-a", at: 4000 });
  // an agreement applied twice (terms changed): version 2, both versions kept
  a.apply({ type: "agreement-applied", agreementId: "agr-x", body: { source: EXAMPLE_YAML }, at: 5000 });
  a.apply({ type: "agreement-applied", agreementId: "agr-x", body: { source: EXAMPLE_YAML.replace("1000 cores", "900 cores") }, at: 5100 });
  // task state: two tasks, assignments, a failover, results pushed (high-water marks, records), one finished
  await a.ledger.submit("t1", planTask({ module: "AGFzbQEAAAA=", partitions: [{ input: "x" }, { input: "y" }] }), "api:test");
  await a.ledger.submit("t2", planTask({ module: "AGFzbQEAAAA=", input: "z" }), "api:test", "org-b");
  await a.ledger.assign([{ id: "t1.0", clusterId: "edge-a", peerId: "peer-a" }, { id: "t1.1", clusterId: "edge-b", peerId: "peer-b" }]);
  await a.ledger.release(a.tasks.subtask("t1.1")!, 4, "cluster edge-b is suspect");
  await a.ledger.assign([{ id: "t1.1", clusterId: "edge-a", peerId: "peer-a" }]);
  await a.ledger.outbox("peer-a", "edge-a", [
    { seq: 1, kind: "result", at: 9, body: result("t1.0", "t1", "X") },
    { seq: 2, kind: "result", at: 9, body: result("t1.1", "t1", "Y") },
  ]);
  await a.ledger.finish("t1", {});
  await a.ledger.hold(a.tasks.subtask("t2.0")!, "no capacity");
}

test("a snapshot restores an empty hub with stale rows to the same rows as the hub that took it; restore is idempotent", async () => {
  const a = hub(1_000);
  await buildState(a);
  expect(a.tasks.task("t1")?.state).toBe("done");
  expect(a.agreements.listAgreements()[0]?.version).toBe(2);

  // B: a hub with rows the snapshot does not have (a member, a task, an agreement, a hub, a peer)
  const b = hub(50_000);
  b.apply({ type: "hub-added", member: 9, peerId: "12D3KooWhub9", multiaddrs: [], at: 1 });
  b.apply({ type: "hub-announced", member: 9, peerId: "12D3KooWhub9", api: "https://127.0.0.1:9999", at: 1 });
  b.reg.recordJoin({ clusterId: "stale", org: "acme", region: "eu", peerId: "peer-stale", multiaddrs: [], certSerial: "99", certNotAfter: new Date(9e12), attestation: att as never, now: new Date(10) });
  b.reg.recordJoin({ clusterId: "edge-b", org: "acme", region: "us", peerId: "peer-b", multiaddrs: [], certSerial: "02", certNotAfter: new Date(9e12), attestation: att as never, now: new Date(1100) }); // not revoked here
  b.tasks.createTask("stale-task", planTask({ module: "AGFzbQEAAAA=", input: "s" }), "api:stale");
  b.agreements.applyAgreement(EXAMPLE_YAML.replace("org-b", "org-c"), 42);
  const removed: number[] = [];
  b.sm.onPeer = (m, p) => void (p ? undefined : removed.push(m));

  const snap = a.sm.snapshot();
  expect((decodeCbor(snap, snap.byteLength) as { v: number }).v).toBe(FEDLOG_SNAPSHOT_VERSION);
  expect(a.sm.snapshot()).toEqual(snap); // deterministic
  for (let i = 0; i < 2; i++) {
    b.sm.restore(a.sm.appliedIndex(), snap);
    expect(b.sm.appliedIndex()).toBe(a.sm.appliedIndex());
    expect(members(b.reg)).toEqual(members(a.reg));
    expect(b.reg.getByCluster("stale")).toBeUndefined();
    expect(b.reg.getByPeer("peer-b")?.revoked?.reason).toBe("re-attestation failed");
    expect(taskTables(b.tasks)).toEqual(taskTables(a.tasks));
    expect(b.tasks.task("stale-task")).toBeUndefined();
    expect(b.tasks.highWater("peer-a")).toBe(2);
    expect(agreementRows(b.agreements)).toEqual(agreementRows(a.agreements));
    expect(b.agreements.listAgreements().map((x) => x.version)).toEqual([2]);
    expect(b.sm.hubs()).toEqual(a.sm.hubs());
    expect(b.sm.peers()).toEqual(a.sm.peers());
    expect(b.sm.taskAssignmentAt("t-1.0")).toEqual(a.sm.taskAssignmentAt("t-1.0"));
    // same state, same bytes
    expect(b.sm.snapshot()).toEqual(snap);
  }
  expect(removed).toEqual([9]);

  // B goes on applying the log after the snapshot exactly like A (the same entries)
  b.setIndex(a.sm.appliedIndex());
  const next: FedlogCommand[] = [
    { type: "subtasks-assigned", assignments: [{ id: "t2.0", clusterId: "edge-a", peerId: "peer-a" }], at: 8000 },
    { type: "member-revoked", peerId: "peer-a", reason: "gone", at: 9000 },
  ];
  for (const c of next) for (const h of [a, b]) expect(h.apply(c)).toEqual({ ok: true });
  expect(a.tasks.subtask("t2.0")?.state).toBe("assigned");
  expect(taskTables(b.tasks)).toEqual(taskTables(a.tasks));
  expect(members(b.reg)).toEqual(members(a.reg));
});

test("restore keeps a member's later local heartbeat (gossip, not log state)", async () => {
  const a = hub();
  a.apply({ type: "member-joined", clusterId: "edge-a", org: "acme", region: "eu", peerId: "peer-a", multiaddrs: [], certSerial: "01", certNotAfter: 9e12, attestation: att, at: 1000 });
  const b = hub();
  b.sm.restore(a.sm.appliedIndex(), a.sm.snapshot());
  b.reg.recordHeartbeat("peer-a", [], new Date(5000));
  b.sm.restore(a.sm.appliedIndex(), a.sm.snapshot());
  expect(b.reg.getByPeer("peer-a")?.lastHeartbeat?.getTime()).toBe(5000);
  expect(b.reg.getByPeer("peer-a")?.lastSeen.getTime()).toBe(5000);
});

test("a snapshot of another format version, or one that does not decode, is refused", () => {
  const b = hub();
  expect(() => b.sm.restore(3, encodeCbor({ v: 99, log: {}, parts: {} }))).toThrow(/version/i);
  expect(() => b.sm.restore(3, encodeCbor({ v: FEDLOG_SNAPSHOT_VERSION, log: { hubs: { columns: ["member; DROP TABLE hubs"], rows: [] } }, parts: {} }))).toThrow();
  expect(() => b.sm.restore(3, encodeCbor({ v: FEDLOG_SNAPSHOT_VERSION, log: { hubs: { columns: ["nope"], rows: [] } }, parts: {} }))).toThrow(/unknown to this build/);
  expect(b.sm.appliedIndex()).toBe(0);
});

test("format 1 (JSON) snapshots from older hubs still restore", () => {
  const b = hub();
  const legacy = { members: [], hubs: [{ member: 7, peerId: "12D3KooWhub7", api: "https://127.0.0.1:9000" }], agreements: [], tasks: [{ taskId: "t-1.0", clusterId: "edge-a", at: 4 }], peers: [] };
  b.sm.restore(5, utf8(JSON.stringify(legacy)));
  expect(b.sm.hub(7)?.api).toBe("https://127.0.0.1:9000");
  expect(b.sm.taskAssignment("t-1.0")).toBe("edge-a");
  expect(b.sm.appliedIndex()).toBe(5);
});
