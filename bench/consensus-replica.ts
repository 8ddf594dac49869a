/**
 * One Grey Raft replica in its own process, for bench/consensus.ts (like a
 * hub: its own libp2p node, raft.db and state machine). Driven over IPC:
 *   parent → {type:"start", peers, dir}   child → {type:"hello", peerId, addrs} first
 *   child → {type:"leader"} when it leads
 *   parent → {type:"drive", seconds, clients}   child → {type:"result", lat, stats}
 *   parent → {type:"stop"}
 */
import { generateKeyPair } from "@libp2p/crypto/keys";
import { join } from "node:path";
import { createMeshNode } from "../plugins/mesh-libp2p/node.ts";
import { RaftDriver } from "../plugins/consensus-raft/driver/driver.ts";
import { KvStateMachine } from "../plugins/consensus-raft/driver/kv-state-machine.ts";
import { Libp2pTransport, type RaftPeer } from "../plugins/consensus-raft/driver/libp2p-transport.ts";
import { nodeIdOfPeer } from "../plugins/consensus-raft/driver/node-id.ts";
import { silentLogger } from "../plugins/consensus-raft/driver/testing.ts";

type Msg =
  | { type: "start"; dir: string; peers: [number, RaftPeer][] }
  | { type: "drive"; seconds: number; clients: number }
  | { type: "stop" };

const node = await createMeshNode({ privateKey: await generateKeyPair("Ed25519"), listen: ["/ip4/127.0.0.1/tcp/0"], dhtMode: "server" });
const id = nodeIdOfPeer(node.peerId.toString());
let driver: RaftDriver | undefined;
const send = (m: unknown) => process.send!(m);

process.on("message", async (m: Msg) => {
  if (m.type === "start") {
    const peers = new Map(m.peers);
    const transport = new Libp2pTransport({ node: node as never, peers: new Map([...peers].filter(([k]) => k !== id)), logger: silentLogger });
    driver = new RaftDriver({ id, founders: [...peers.keys()], storagePath: join(m.dir, `${id}.db`), tickMs: 50 }, { logger: silentLogger, clock: { now: Date.now }, stateMachine: new KvStateMachine(join(m.dir, `sm-${id}.db`)), transport });
    driver.onLeaderChange((l) => l?.self && send({ type: "leader" }));
    await driver.start();
  } else if (m.type === "drive") {
    const d = driver!;
    await d.propose(KvStateMachine.put("warm", "up"));
    const before = { ...d.stats };
    const lat: number[] = [];
    const end = performance.now() + m.seconds * 1000;
    let n = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: m.clients }, async () => {
      while (performance.now() < end) {
        const i = n++;
        const s = performance.now();
        await d.propose(KvStateMachine.put(`k${i % 1000}`, "x".repeat(64)));
        lat.push(performance.now() - s);
      }
    }));
    send({ type: "result", lat, seconds: (performance.now() - t0) / 1000, fsyncs: d.stats.fsyncs - before.fsyncs, readies: d.stats.readies - before.readies });
  } else if (m.type === "stop") {
    await driver?.stop();
    await node.stop();
    process.exit(0);
  }
});
send({ type: "hello", peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) });
