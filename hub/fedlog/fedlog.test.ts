/** The federation log's state machine (determinism, snapshots, bad entries) and the follower redirect. */
import { afterEach, expect, test } from "bun:test";
import { Hono } from "hono";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../plugins/consensus-raft/driver/testing.ts";
import { encodeCbor } from "../../plugins/sdk/codec.ts";
import { openRegistry, type Registry } from "../registry/index.ts";
import { decodeCommand, encodeCommand, type FedlogCommand } from "./commands.ts";
import { parseRaftPeers } from "./log.ts";
import { redirectWritesToLeader } from "./service.ts";
import { FedlogStateMachine } from "./state-machine.ts";

const dirs: string[] = [];
const open: { close(): void }[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function replica(): { reg: Registry; sm: FedlogStateMachine } {
  const d = mkdtempSync(join(tmpdir(), "grey-fedlog-"));
  dirs.push(d);
  const reg = openRegistry(join(d, "hub.db"), { heartbeatIntervalMs: 1000 });
  const sm = new FedlogStateMachine(join(d, "fedlog.db"), reg, silentLogger);
  open.push(sm, reg);
  return { reg, sm };
}

const att = { format: "dev", ok: true, checks: [], claims: {} };
const commands: FedlogCommand[] = [
  { type: "hub-announced", member: 7, peerId: "12D3KooWhub", api: "https://127.0.0.1:9000", at: 1 },
  { type: "member-joined", clusterId: "edge-a", org: "acme", region: "eu", peerId: "peer-a", multiaddrs: ["/ip4/1.2.3.4/tcp/1"], certSerial: "01", certNotAfter: 9e12, attestation: att, at: 1000 },
  { type: "member-joined", clusterId: "edge-b", org: "acme", region: "us", peerId: "peer-b", multiaddrs: [], certSerial: "02", certNotAfter: 9e12, attestation: att, at: 1100 },
  { type: "member-renewed", peerId: "peer-a", certSerial: "03", certNotAfter: 9.1e12, attestation: att, at: 2000 },
  { type: "member-revoked", peerId: "peer-b", reason: "re-attestation failed", at: 3000 },
  { type: "member-joined", clusterId: "edge-a", org: "other", region: "eu", peerId: "peer-x", multiaddrs: [], certSerial: "04", certNotAfter: 9e12, attestation: att, at: 3100 },
  { type: "task-assigned", taskId: "t-1", clusterId: "edge-a", at: 4000 },
  { type: "agreement-applied", agreementId: "ag-1", body: { rate: "standard-2024" }, at: 5000 },
  { type: "hub-added", member: 8, peerId: "12D3KooWhub8", multiaddrs: ["/ip4/10.0.0.8/tcp/4001/p2p/12D3KooWhub8"], at: 6000 },
  { type: "hub-added", member: 9, peerId: "12D3KooWhub9", multiaddrs: [], at: 6100 },
  { type: "hub-removed", member: 9, at: 6200 },
];

const view = (reg: Registry) => JSON.stringify(reg.list().items.map(({ lastHeartbeat: _h, ...m }) => m));

test("the same commands give the same state on every replica; refusals are deterministic results", () => {
  const [a, b] = [replica(), replica()];
  const results = commands.map((c, i) => [a.sm.apply({ index: i + 1, data: encodeCommand(c) }), b.sm.apply({ index: i + 1, data: encodeCommand(c) })]);
  for (const [ra, rb] of results) expect(ra).toEqual(rb);
  expect(results[5]![0]).toMatchObject({ ok: false, code: "ERR_FORBIDDEN" });
  expect(view(a.reg)).toBe(view(b.reg));
  expect(a.reg.getByPeer("peer-b")?.revoked?.reason).toBe("re-attestation failed");
  expect(a.reg.getByPeer("peer-a")?.certSerial).toBe("03");
  expect(a.sm.taskAssignment("t-1")).toBe("edge-a");
  expect(a.sm.hub(7)?.api).toBe("https://127.0.0.1:9000");
  expect(a.sm.peers()).toEqual([{ member: 8, peerId: "12D3KooWhub8", multiaddrs: ["/ip4/10.0.0.8/tcp/4001/p2p/12D3KooWhub8"] }]);
  expect(a.sm.appliedIndex()).toBe(commands.length);
});

test("undecodable or unknown-version entries are skipped and counted, identically", () => {
  const { sm } = replica();
  expect(sm.apply({ index: 1, data: new Uint8Array([0xff]) })).toMatchObject({ ok: false });
  expect(sm.apply({ index: 2, data: encodeCbor({ v: 2, type: "member-joined" }) })).toMatchObject({ ok: false, code: "ERR_UNSUPPORTED_VERSION" });
  expect(sm.apply({ index: 3, data: encodeCbor({ v: 1, type: "launch-missiles" }) })).toMatchObject({ ok: false, code: "ERR_MALFORMED_INPUT" });
  expect(sm.skipped()).toBe(3);
  expect(sm.appliedIndex()).toBe(3);
  expect(() => decodeCommand(encodeCbor({ v: 1, type: "member-revoked", peerId: "p", reason: "r", at: -1 }))).toThrow(/invalid fedlog command/);
});

test("snapshot of one replica restores another to the same state", () => {
  const [a, b] = [replica(), replica()];
  commands.forEach((c, i) => a.sm.apply({ index: i + 1, data: encodeCommand(c) }));
  b.sm.restore(a.sm.appliedIndex(), a.sm.snapshot());
  expect(view(b.reg)).toBe(view(a.reg));
  expect(b.sm.hubs()).toEqual(a.sm.hubs());
  expect(b.sm.agreement("ag-1")).toEqual({ rate: "standard-2024" });
  expect(b.sm.peers()).toEqual(a.sm.peers());
  expect(b.sm.appliedIndex()).toBe(commands.length);
});

test("followers redirect writes to the leader's API (307 + Location) or name it (503)", async () => {
  let leader: { member: number; api?: string } | undefined = { member: 7, api: "https://10.0.0.7:8443" };
  let isLeader = false;
  const app = new Hono();
  app.use("*", redirectWritesToLeader({ isLeader: () => isLeader, leaderApi: () => leader }));
  app.get("/v1/clusters", (c) => c.json({ items: [] }));
  app.post("/v1/agreements", (c) => c.json({ ok: true }, 201));
  expect((await app.request("/v1/clusters")).status).toBe(200);
  const r = await app.request("/v1/agreements?x=1", { method: "POST", body: "{}" });
  expect(r.status).toBe(307);
  expect(r.headers.get("location")).toBe("https://10.0.0.7:8443/v1/agreements?x=1");
  leader = { member: 7 };
  const r2 = await app.request("/v1/agreements", { method: "POST", body: "{}" });
  expect(r2.status).toBe(503);
  expect(((await r2.json()) as { error: { code: string } }).error.code).toBe("ERR_RAFT_NOT_LEADER");
  isLeader = true;
  expect((await app.request("/v1/agreements", { method: "POST", body: "{}" })).status).toBe(201);
});

test("raft peers: multiaddrs must end in /p2p/PEER_ID", () => {
  const id = "12D3KooWGzwd7F9NwBSyULRw5dF5B3MdYRVA2wqJ4UuJvpaDZgX3";
  const m = parseRaftPeers([`/ip4/127.0.0.1/tcp/4001/p2p/${id}`]);
  expect([...m.values()][0]?.peerId).toBe(id);
  expect(() => parseRaftPeers(["/ip4/127.0.0.1/tcp/4001"])).toThrow(/names no peer/);
});
