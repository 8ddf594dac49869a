/** Heartbeat gossip: two hubs of a group, a partition, the heal; and one exchange over real libp2p. */
import { afterEach, expect, test } from "bun:test";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMeshNode, type MeshNode } from "../../plugins/mesh-libp2p/node.ts";
import { silentLogger } from "../../plugins/consensus-raft/driver/testing.ts";
import { openRegistry, type Registry } from "../registry/index.ts";
import { GossipService, HeartbeatGossip } from "./gossip.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const att = { format: "dev", ok: true, checks: [], claims: {} } as never;
let now = 1_000_000;
const clock = { now: () => now };

function hub(name: string): { reg: Registry; g: HeartbeatGossip } {
  const d = mkdtempSync(join(tmpdir(), `grey-gossip-${name}-`));
  const reg = openRegistry(join(d, "hub.db"), { heartbeatIntervalMs: 1000 });
  cleanup.push(() => rmSync(d, { recursive: true, force: true }), () => reg.close());
  // both hubs know both members (the joins came through the federation log)
  for (const c of ["edge-a", "edge-b"]) {
    reg.recordJoin({ clusterId: c, org: "acme", region: "eu", peerId: `peer-${c}`, multiaddrs: [], certSerial: "01", certNotAfter: new Date(9e12), attestation: att, now: new Date(1000) });
  }
  return { reg, g: new HeartbeatGossip(`hub-${name}`, reg, clock, silentLogger) };
}

/** One round from `from` to `to` over a link that may be cut. */
function exchange(from: HeartbeatGossip, fromName: string, to: HeartbeatGossip, up: boolean): void {
  from.collect();
  const rows = from.deltaFor(fromName);
  if (!up) {
    from.forget(fromName);
    return;
  }
  to.receive(JSON.parse(JSON.stringify(rows)));
  from.ack(fromName, rows);
}

const lastBeat = (r: Registry, c: string) => r.getByCluster(c)?.lastHeartbeat?.getTime();

test("a member heartbeating to one hub is fresh on the other; both sides keep recording under partition and converge on heal", () => {
  const a = hub("a");
  const b = hub("b");
  a.reg.recordHeartbeat("peer-edge-a", ["/ip4/1.2.3.4/tcp/1"], new Date(now));
  exchange(a.g, "hub-b", b.g, true);
  expect(lastBeat(b.reg, "edge-a")).toBe(now);
  expect(b.reg.getByCluster("edge-a")?.multiaddrs).toEqual(["/ip4/1.2.3.4/tcp/1"]);
  expect(b.reg.stateOf(b.reg.getByCluster("edge-a")!, new Date(now))).toBe("healthy");

  // partition: edge-a keeps beating to hub a, edge-b to hub b; neither side hears the other
  now += 5_000;
  a.reg.recordHeartbeat("peer-edge-a", [], new Date(now));
  b.reg.recordHeartbeat("peer-edge-b", [], new Date(now + 1));
  exchange(a.g, "hub-b", b.g, false);
  exchange(b.g, "hub-a", a.g, false);
  expect(lastBeat(b.reg, "edge-a")).toBe(now - 5_000);
  expect(lastBeat(a.reg, "edge-b")).toBeUndefined();

  // heal: full resend both ways, both registries and both maps agree
  exchange(a.g, "hub-b", b.g, true);
  exchange(b.g, "hub-a", a.g, true);
  for (const r of [a.reg, b.reg]) {
    expect(lastBeat(r, "edge-a")).toBe(now);
    expect(lastBeat(r, "edge-b")).toBe(now + 1);
  }
  expect(JSON.stringify(a.g.seen.map.toJSON())).toBe(JSON.stringify(b.g.seen.map.toJSON()));

  // an older sighting arriving late changes nothing; nothing new means nothing to send
  b.g.receive([["edge-a", { ts: { wall: 1, logical: 0, node: "hub-x" }, value: { at: 1, hub: "hub-x", multiaddrs: [] } }]]);
  expect(lastBeat(b.reg, "edge-a")).toBe(now);
  a.g.collect();
  expect(a.g.deltaFor("hub-b")).toEqual([]);
});

test("two hubs exchange sightings over /grey/fedlog-gossip/1.0.0; strangers are refused", async () => {
  const a = hub("la");
  const b = hub("lb");
  const nodes: MeshNode[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await createMeshNode({ privateKey: await generateKeyPair("Ed25519"), listen: ["/ip4/127.0.0.1/tcp/0"], dhtMode: "server" }));
  cleanup.push(() => Promise.all(nodes.map((n) => n.stop())));
  const peer = (n: MeshNode) => ({ peerId: n.peerId.toString(), multiaddrs: n.getMultiaddrs().map(String) });
  const sa = new GossipService({ self: peer(nodes[0]!).peerId, peers: () => [peer(nodes[1]!)], everyMs: 60_000 }, { node: nodes[0] as never, registry: a.reg, clock, logger: silentLogger });
  const sb = new GossipService({ self: peer(nodes[1]!).peerId, peers: () => [peer(nodes[0]!)], everyMs: 60_000 }, { node: nodes[1] as never, registry: b.reg, clock, logger: silentLogger });
  const x = hub("x");
  const stranger = new GossipService({ self: peer(nodes[2]!).peerId, peers: () => [peer(nodes[1]!)], everyMs: 60_000 }, { node: nodes[2] as never, registry: x.reg, clock, logger: silentLogger });
  await sa.start();
  await sb.start();
  cleanup.push(() => sa.stop(), () => sb.stop());

  now += 10_000;
  a.reg.recordHeartbeat("peer-edge-a", [], new Date(now));
  await sa.round();
  expect(lastBeat(b.reg, "edge-a")).toBe(now);

  const before = lastBeat(b.reg, "edge-b");
  x.reg.recordHeartbeat("peer-edge-b", [], new Date(now + 50));
  await stranger.round(); // refused by b: not a hub of its group
  expect(lastBeat(b.reg, "edge-b")).toBe(before);
});
