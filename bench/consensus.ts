/**
 * Consensus bench. Prints, side by side, from one run on this machine:
 * 1. Grey's Raft (3 replicas, libp2p on loopback, bun:sqlite synchronous=FULL)
 *    vs Debian etcd-server (3 members on loopback, default fsync), same
 *    client concurrency: commits/s and p50/p99 commit latency, ratio to etcd.
 *    etcd is driven through its v3 HTTP/JSON gateway (/v3/kv/put), from this
 *    process. Grey runs twice: three replica processes (bench/consensus-replica.ts,
 *    clients inside the leader's process), as hubs and etcd members run; and
 *    the three replicas in this one process (one thread: their fsyncs do not
 *    overlap). Fsyncs and Readies per commit are printed.
 * 2. Commit latency per scope under injected WAN delay (in-memory network,
 *    real drivers with fsync): intra-cluster, same region, cross-region,
 *    cross-cloud, against the targets.
 *
 * bun bench/consensus.ts [--seconds 5] [--clients 16] [--skip-etcd]
 */
import { generateKeyPair } from "@libp2p/crypto/keys";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createMeshNode, type MeshNode } from "../plugins/mesh-libp2p/node.ts";
import { RaftDriver } from "../plugins/consensus-raft/driver/driver.ts";
import { KvStateMachine } from "../plugins/consensus-raft/driver/kv-state-machine.ts";
import { Libp2pTransport, type RaftPeer } from "../plugins/consensus-raft/driver/libp2p-transport.ts";
import { nodeIdOfPeer } from "../plugins/consensus-raft/driver/node-id.ts";
import { TestGroup, silentLogger } from "../plugins/consensus-raft/driver/testing.ts";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "5" }, clients: { type: "string", default: "16" }, "skip-etcd": { type: "boolean", default: false } } });
const seconds = Number(values.seconds);
const clients = Number(values.clients);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

interface Result { commits: number; perSec: number; p50: number; p99: number; detail?: string }

async function drive(put: (i: number) => Promise<void>): Promise<Result> {
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const worker = async () => {
    while (performance.now() < end) {
      const i = n++;
      const t0 = performance.now();
      await put(i);
      lat.push(performance.now() - t0);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, worker));
  const s = (performance.now() - t0) / 1000;
  return { commits: lat.length, perSec: lat.length / s, p50: pct(lat, 50), p99: pct(lat, 99) };
}

async function greyLoopback(): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), "grey-bench-"));
  const nodes: MeshNode[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await createMeshNode({ privateKey: await generateKeyPair("Ed25519"), listen: ["/ip4/127.0.0.1/tcp/0"], dhtMode: "server" }));
  const peers = new Map<number, RaftPeer>(nodes.map((n) => [nodeIdOfPeer(n.peerId.toString()), { peerId: n.peerId.toString(), multiaddrs: n.getMultiaddrs().map(String) }]));
  const drivers: RaftDriver[] = [];
  for (const n of nodes) {
    const id = nodeIdOfPeer(n.peerId.toString());
    const transport = new Libp2pTransport({ node: n as never, peers: new Map([...peers].filter(([k]) => k !== id)), logger: silentLogger });
    const d = new RaftDriver({ id, founders: [...peers.keys()], storagePath: join(dir, `${id}.db`), tickMs: 50 }, { logger: silentLogger, clock: { now: Date.now }, stateMachine: new KvStateMachine(join(dir, `sm-${id}.db`)), transport });
    await d.start();
    drivers.push(d);
  }
  let leader: RaftDriver | undefined;
  while (!(leader = drivers.find((d) => d.leader()?.self))) await Bun.sleep(10);
  await leader.propose(KvStateMachine.put("warm", "up"));
  const before = drivers.map((d) => ({ ...d.stats }));
  const cpu0 = process.cpuUsage();
  const r = await drive(async (i) => {
    await leader!.propose(KvStateMachine.put(`k${i % 1000}`, "x".repeat(64)));
  });
  const cpu = process.cpuUsage(cpu0);
  const per = (f: (s: RaftDriver["stats"]) => number) => drivers.map((d, i) => (f(d.stats) - f(before[i]!)) / r.commits);
  const fsyncs = per((s) => s.fsyncs).map((x) => x.toFixed(2)).join("/");
  const readies = per((s) => s.readies).map((x) => x.toFixed(2)).join("/");
  r.detail = `per commit: fsyncs ${fsyncs}, readies ${readies} (each replica), cpu ${((cpu.user + cpu.system) / r.commits).toFixed(0)} µs (all three replicas, one process)`;
  for (const d of drivers) await d.stop();
  await Promise.all(nodes.map((n) => n.stop()));
  rmSync(dir, { recursive: true, force: true });
  return r;
}

/** The same, each replica in its own process (as hubs run; as etcd's members run): their fsyncs overlap. */
async function greyProcesses(): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), "grey-bench-p-"));
  type Reply = { type: string; peerId?: string; addrs?: string[]; lat?: number[]; seconds?: number; fsyncs?: number; readies?: number };
  const inbox: { i: number; m: Reply }[] = [];
  const procs = [0, 1, 2].map((i) => Bun.spawn([process.execPath, join(import.meta.dir, "consensus-replica.ts")], { stdout: "inherit", stderr: "inherit", ipc: (m: Reply) => inbox.push({ i, m }) }));
  const next = async (type: string, ms = 30_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const k = inbox.findIndex((x) => x.m.type === type);
      if (k >= 0) return inbox.splice(k, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`bench replica: no ${type} within ${ms} ms`);
      await Bun.sleep(5);
    }
  };
  try {
    const hellos = await Promise.all(procs.map(() => next("hello")));
    const peers = hellos.map(({ m }) => [nodeIdOfPeer(m.peerId!), { peerId: m.peerId!, multiaddrs: m.addrs! }]);
    for (const p of procs) p.send({ type: "start", dir, peers });
    const { i: leader } = await next("leader");
    procs[leader]!.send({ type: "drive", seconds, clients });
    const { m } = await next("result", seconds * 1000 + 30_000);
    const lat = m.lat!;
    return { commits: lat.length, perSec: lat.length / m.seconds!, p50: pct(lat, 50), p99: pct(lat, 99), detail: `per commit on the leader: fsyncs ${(m.fsyncs! / lat.length).toFixed(2)}, readies ${(m.readies! / lat.length).toFixed(2)}` };
  } finally {
    for (const p of procs) {
      try {
        p.send({ type: "stop" });
      } catch {}
    }
    await Promise.race([Promise.all(procs.map((p) => p.exited)), Bun.sleep(5000)]);
    for (const p of procs) p.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

async function etcdLoopback(): Promise<Result | string> {
  if (!existsSync("/usr/bin/etcd")) return "etcd-server not installed (apt-get install -y etcd-server)";
  const dir = mkdtempSync(join(tmpdir(), "etcd-bench-"));
  const base = 23_000 + Math.floor(Math.random() * 5000);
  const m = [0, 1, 2].map((i) => ({ name: `e${i}`, client: `http://127.0.0.1:${base + i * 2}`, peer: `http://127.0.0.1:${base + i * 2 + 1}` }));
  const cluster = m.map((x) => `${x.name}=${x.peer}`).join(",");
  const procs = m.map((x) => Bun.spawn(["/usr/bin/etcd", "--name", x.name, "--data-dir", join(dir, x.name), "--listen-client-urls", x.client, "--advertise-client-urls", x.client,
    "--listen-peer-urls", x.peer, "--initial-advertise-peer-urls", x.peer, "--initial-cluster", cluster, "--initial-cluster-state", "new", "--log-level", "error"],
    { stdout: "ignore", stderr: "ignore", env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch === "arm64" ? "arm64" : "" } }));
  try {
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const put = async (url: string, k: string, v: string) => {
      const r = await fetch(`${url}/v3/kv/put`, { method: "POST", body: JSON.stringify({ key: b64(k), value: b64(v) }) });
      if (!r.ok) throw new Error(`etcd put: ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
    };
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await put(m[0]!.client, "warm", "up");
        break;
      } catch (err) {
        if (Date.now() > deadline) return `etcd did not start: ${(err as Error).message}`;
        await Bun.sleep(200);
      }
    }
    // clients spread over members like etcd's own client (followers forward to the leader)
    return await drive((i) => put(m[i % 3]!.client, `k${i % 1000}`, "x".repeat(64)));
  } finally {
    for (const p of procs) p.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One-way delays per scope (ms): representative WAN figures, not measurements. */
const scopes = [
  { scope: "intra-cluster", oneWayMs: 0.25, targetMs: 10 },
  { scope: "same region", oneWayMs: 5, targetMs: 50 },
  { scope: "cross-region", oneWayMs: 35, targetMs: 200 },
  { scope: "cross-cloud", oneWayMs: 90, targetMs: 500 },
];

async function scopeLatency(oneWayMs: number, commits = 25): Promise<number[]> {
  const g = new TestGroup([1, 2, 3], { tickMs: Math.max(10, Math.round(oneWayMs)) });
  g.net.delayMs = () => oneWayMs * (0.9 + Math.random() * 0.2);
  await g.start();
  try {
    const l = await g.leader(60_000);
    await l.driver.propose(KvStateMachine.put("warm", "up"));
    const lat: number[] = [];
    for (let i = 0; i < commits; i++) {
      const t0 = performance.now();
      await l.driver.propose(KvStateMachine.put(`s${i}`, "v"));
      lat.push(performance.now() - t0);
    }
    return lat;
  } finally {
    await g.stop();
  }
}

const f = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "-");
console.log(`consensus bench: ${seconds}s per system, ${clients} concurrent clients, 64-byte values, every commit fsynced before it is acknowledged\n`);
const greyProc = await greyProcesses();
const etcd = values["skip-etcd"] ? "skipped" : await etcdLoopback();
const grey = await greyLoopback();
const row = (name: string, r: Result) => console.log(`${name.padEnd(36)}${r.perSec.toFixed(0).padStart(9)} ${f(r.p50).padStart(8)} ${f(r.p99).padStart(8)}`);
const ratio = (r: Result, e: Result) => `throughput ×${(r.perSec / e.perSec).toFixed(2)}, p50 ×${(r.p50 / e.p50).toFixed(2)}, p99 ×${(r.p99 / e.p99).toFixed(2)}`;
console.log("system                              commits/s   p50 ms   p99 ms");
row("grey raft, 3 processes (libp2p, FULL)", greyProc);
console.log(`  ${greyProc.detail}`);
if (typeof etcd === "string") console.log(`etcd 3 members (v3 JSON gateway)    ${etcd}`);
else row("etcd 3 members (v3 JSON gateway)", etcd);
row("grey raft, 3 replicas in 1 process", grey);
console.log(`  ${grey.detail}`);
if (typeof etcd !== "string") {
  console.log(`ratio grey/etcd, 3 processes each:  ${ratio(greyProc, etcd)}`);
  console.log(`ratio grey (1 process)/etcd:        ${ratio(grey, etcd)}`);
}
console.log("\ncommit latency per scope (3 replicas, injected one-way delay, median of 25 sequential commits)");
console.log("scope            one-way ms   median ms   p99 ms   target ms   ok");
for (const s of scopes) {
  const lat = await scopeLatency(s.oneWayMs);
  const med = pct(lat, 50);
  console.log(`${s.scope.padEnd(16)} ${String(s.oneWayMs).padStart(10)} ${f(med).padStart(11)} ${f(pct(lat, 99)).padStart(8)} ${String(s.targetMs).padStart(11)}   ${med < s.targetMs ? "yes" : "NO"}`);
}
process.exit(0);
