/** Three drivers over real libp2p nodes on loopback; garbage and strangers on /grey/raft/1.0.0. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { lpStream } from "@libp2p/utils";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMeshNode, type MeshNode } from "../../mesh-libp2p/node.ts";
import { encodeCbor } from "../../sdk/codec.ts";
import { RaftDriver } from "./driver.ts";
import { KvStateMachine } from "./kv-state-machine.ts";
import { Libp2pTransport, type RaftPeer } from "./libp2p-transport.ts";
import { nodeIdOfPeer } from "./node-id.ts";
import { silentLogger } from "./testing.ts";
import { PROTOCOL_RAFT } from "./wire.ts";
import { raftEndpoint } from "./raft-endpoint.ts";

const dir = mkdtempSync(join(tmpdir(), "grey-raft-p2p-"));
const nodes: MeshNode[] = [];
const members: { id: number; driver: RaftDriver; sm: KvStateMachine; transport: Libp2pTransport }[] = [];
let stranger: MeshNode;

beforeAll(async () => {
  for (let i = 0; i < 3; i++) nodes.push(await createMeshNode({ privateKey: await generateKeyPair("Ed25519"), listen: ["/ip4/127.0.0.1/tcp/0"], dhtMode: "server" }));
  stranger = await createMeshNode({ privateKey: await generateKeyPair("Ed25519"), listen: ["/ip4/127.0.0.1/tcp/0"], dhtMode: "server" });
  const peers = new Map<number, RaftPeer>(nodes.map((n) => [nodeIdOfPeer(n.peerId.toString()), { peerId: n.peerId.toString(), multiaddrs: n.getMultiaddrs().map(String) }]));
  const founders = [...peers.keys()];
  for (const n of nodes) {
    const id = nodeIdOfPeer(n.peerId.toString());
    const others = new Map([...peers].filter(([k]) => k !== id));
    const transport = new Libp2pTransport({ node: n as never, peers: others, logger: silentLogger });
    const sm = new KvStateMachine();
    const driver = new RaftDriver({ id, founders, storagePath: join(dir, `${id}.db`), tickMs: 20 }, { logger: silentLogger, clock: { now: Date.now }, stateMachine: sm, transport });
    await driver.start();
    members.push({ id, driver, sm, transport });
  }
});

afterAll(async () => {
  for (const m of members) await m.driver.stop();
  await Promise.all([...nodes, stranger].map((n) => n.stop()));
  rmSync(dir, { recursive: true, force: true });
});

async function leader() {
  for (let i = 0; i < 400; i++) {
    const l = members.find((m) => m.driver.leader()?.self);
    if (l) return l;
    await Bun.sleep(10);
  }
  throw new Error("no leader");
}

test("a group forms over /grey/raft/1.0.0 and replicates", async () => {
  const l = await leader();
  await Promise.all(Array.from({ length: 50 }, (_, i) => l.driver.propose(KvStateMachine.put(`k${i}`, "v"))));
  for (let i = 0; i < 300 && !members.every((m) => m.sm.keys().length === 50); i++) await Bun.sleep(10);
  for (const m of members) expect(m.sm.keys()).toHaveLength(50);
});

test("garbage frames from a member and streams from strangers are refused, counted, and harmless", async () => {
  const l = await leader();
  const target = members.find((m) => m !== l)!;
  const fromMember = nodes.find((n) => nodeIdOfPeer(n.peerId.toString()) !== target.id)!;
  const targetNode = nodes.find((n) => nodeIdOfPeer(n.peerId.toString()) === target.id)!;
  const before = { t: target.transport.stats.rejected, d: target.driver.stats.rejectedMessages };
  const s = await fromMember.dialProtocol(targetNode.getMultiaddrs(), PROTOCOL_RAFT, { signal: AbortSignal.timeout(3000) });
  const lp = lpStream(s);
  await lp.write(new Uint8Array([0xff, 0xfe, 0x01])); // not CBOR
  await lp.write(encodeCbor({ v: 1, type: "app", from: 1, to: 2 })); // CBOR, wrong shape
  await lp.write(encodeCbor({ v: 7 })); // unknown version
  const s2 = await stranger.dialProtocol(targetNode.getMultiaddrs(), PROTOCOL_RAFT, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
  if (s2) await lpStream(s2).write(encodeCbor({ v: 1 })).catch(() => {});
  for (let i = 0; i < 200 && target.transport.stats.rejected + target.driver.stats.rejectedMessages - before.t - before.d < 4; i++) await Bun.sleep(10);
  expect(target.transport.stats.rejected - before.t).toBeGreaterThanOrEqual(2); // not CBOR + stranger
  expect(target.driver.stats.rejectedMessages - before.d).toBeGreaterThanOrEqual(2); // schema, version
  s.abort(new Error("done"));
  const l2 = await leader();
  await l2.driver.propose(KvStateMachine.put("after-garbage", "ok"));
});

test("a second group on the same nodes replicates apart; frames for an unknown group or from a non-member of the group are refused and counted", async () => {
  const peers = new Map<number, RaftPeer>(nodes.map((n) => [nodeIdOfPeer(n.peerId.toString()), { peerId: n.peerId.toString(), multiaddrs: n.getMultiaddrs().map(String) }]));
  const ids = [...peers.keys()].slice(0, 2); // a two-member group: the third node is not in it
  const second: { id: number; driver: RaftDriver; sm: KvStateMachine }[] = [];
  try {
    for (const id of ids) {
      const n = nodes.find((x) => nodeIdOfPeer(x.peerId.toString()) === id)!;
      const transport = new Libp2pTransport({ node: n as never, group: "region:eu", peers: new Map([...peers].filter(([k]) => k !== id && ids.includes(k))), logger: silentLogger });
      const sm = new KvStateMachine();
      const driver = new RaftDriver({ id, founders: ids, storagePath: join(dir, `eu-${id}.db`), tickMs: 20 }, { logger: silentLogger, clock: { now: Date.now }, stateMachine: sm, transport });
      await driver.start();
      second.push({ id, driver, sm });
    }
    let l: (typeof second)[number] | undefined;
    for (let i = 0; i < 400 && !(l = second.find((m) => m.driver.leader()?.self)); i++) await Bun.sleep(10);
    await l!.driver.propose(KvStateMachine.put("eu-only", "v"));
    for (let i = 0; i < 300 && !second.every((m) => m.sm.get("eu-only") === "v"); i++) await Bun.sleep(10);
    for (const m of second) expect(m.sm.get("eu-only")).toBe("v");
    for (const m of members) expect(m.sm.get("eu-only")).toBeUndefined(); // the default group's state machines never see it
    // a member of the default group speaks for a group the target does not run, then for one it is not in
    const targetNode = nodes.find((n) => nodeIdOfPeer(n.peerId.toString()) === ids[0])!;
    const outsider = nodes.find((n) => !ids.includes(nodeIdOfPeer(n.peerId.toString())))!;
    const ep = raftEndpoint(targetNode as never);
    const before = { unknown: ep.stats.unknownGroup, rejected: second[0]!.driver.stats.rejectedMessages };
    const s = await outsider.dialProtocol(targetNode.getMultiaddrs(), PROTOCOL_RAFT, { signal: AbortSignal.timeout(3000) });
    const lp = lpStream(s);
    await lp.write(encodeCbor({ v: 1, group: "region:nowhere", type: "heartbeat", from: 1, to: 2 }));
    await lp.write(encodeCbor({ v: 1, group: "region:eu", type: "heartbeat", from: nodeIdOfPeer(outsider.peerId.toString()), to: ids[0], term: 99, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 }));
    for (let i = 0; i < 200 && ep.stats.unknownGroup === before.unknown; i++) await Bun.sleep(10);
    expect(ep.stats.unknownGroup - before.unknown).toBe(1);
    await Bun.sleep(100);
    expect(second[0]!.driver.status().term).toBeLessThan(99); // the outsider's frame never reached the group
    s.abort(new Error("done"));
  } finally {
    for (const m of second) await m.driver.stop();
  }
  // the default group still works after the second group left the shared endpoint
  const l0 = await leader();
  await l0.driver.propose(KvStateMachine.put("after-second-group", "ok"));
});
