/**
 * Task throughput through one compiled hub with N agents on this machine, and
 * the outbox catch-up rate after a hub outage, each beside a baseline measured
 * in the same run:
 *   1. subtasks/s: one task of S tiny echo subtasks, submit -> done (median of
 *      runs). Baseline: the same S subtasks run in this process by the wasm
 *      executor (warm children, concurrency = cores): the cost of the work
 *      itself, without scheduling, sessions and outboxes.
 *   2. catch-up records/s: with the hub down every agent runs a local task of
 *      L subtasks (each leaves usage + audit records in its outbox); the hub
 *      comes back and we time until every outbox is drained. Baseline: the same
 *      number of records applied in this process by the hub's receipt code
 *      (applyOutbox into a fresh tasks.db): no network, sessions or reconnects.
 *
 *   bun bench/tasks.ts [--agents 20] [--subtasks 400] [--runs 3] [--local 25]
 */
import { Database } from "bun:sqlite";
import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { encodeCbor } from "../plugins/sdk/codec.ts";
import { outboxEntriesPerPushMax, type OutboxEntry } from "../plugins/sdk/wire-tasks.ts";
import { wasmExecutor } from "../plugins/executor-wasm/index.ts";
import { testComponents } from "../plugins/executor-wasm/testing/components.ts";
import { applyOutbox } from "../hub/tasks/outbox.ts";
import { planTask } from "../hub/tasks/spec.ts";
import { TaskStore } from "../hub/tasks/store.ts";
import {
  adminCreds, agentBin, agentStatus, createToken, initHub, requireBinaries, run, startAgent, startHub, stopAll, tempDir, waitFor,
  type Daemon, type HubRun,
} from "../test/e2e/harness.ts";
import { b64, echoModule } from "../test/e2e/task-modules.ts";
import { median, perSecond, printTable, ratio } from "./stats.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { agents: { type: "string" }, subtasks: { type: "string" }, runs: { type: "string" }, local: { type: "string" } },
});
const agentCount = Number(values.agents ?? 20);
const subtasks = Number(values.subtasks ?? 400);
const runs = Number(values.runs ?? 3);
const localPerAgent = Number(values.local ?? 25);
const module = echoModule();
const limits = { timeMs: 10_000, memoryBytes: 64 << 20, outputBytes: 1 << 16 };

requireBinaries();
const hubDir = tempDir("grey-bench-tasks-hub-");
await initHub(hubDir, ["--org", "bench"]);
let hub: Daemon & { info: HubRun } = await startHub(hubDir, ["--heartbeat-interval", "1s"], true);
const creds = adminCreds(hubDir);
const agents: { cluster: string; dir: string; daemon: Daemon }[] = [];
for (let i = 0; i < agentCount; i++) {
  const cluster = `t${i}`;
  const dir = tempDir("grey-bench-tasks-agent-");
  const r = await run(agentBin, ["join", await createToken(hubDir, cluster, "bench", "eu-west"), "--data-dir", dir]);
  if (r.exitCode !== 0) throw new Error(r.stderr);
  agents.push({ cluster, dir, daemon: startAgent(dir, ["--heartbeat-interval", "1s", "--log-level", "warn"], true) });
}
const allUp = () => waitFor("agents reachable", () => agents.every((a) => agentStatus(a.dir)?.hub.reachable) || undefined, 120_000, 200);
await allUp();
console.error(`${agentCount} agents up`);

async function call(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(hub.info.api + path, {
    method, tls: { ca: creds.ca, cert: creds.cert, key: creds.key },
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {}),
  } as RequestInit);
  return await res.json();
}

// 1. throughput through the hub
const inputs = Array.from({ length: subtasks }, (_, i) => ({ input: `item-${i}` }));
const hubRates: number[] = [];
for (let i = -1; i < runs; i++) {
  // run -1 warms up (every agent starts its wasm children), like the baseline's warm-up task
  const t0 = performance.now();
  const t = await call("POST", "/v1/tasks", { module: b64(module), partitions: i < 0 ? inputs.slice(0, agentCount * 2) : inputs });
  const done = await waitFor("task done", async () => {
    const v = await call("GET", `/v1/tasks/${t.id}`);
    return v.state !== "running" ? v : undefined;
  }, 300_000, 50);
  if (done.state !== "done") throw new Error(`task ${t.id} ${done.state}: ${done.error}`);
  if (i < 0) continue;
  hubRates.push(subtasks / ((performance.now() - t0) / 1000));
  console.error(`run ${i + 1}/${runs}: ${hubRates[i]!.toFixed(0)} subtasks/s through the hub`);
}

// how the agents' streams were secured: full handshakes vs resumed sessions (hub side)
const handshakeLines = (await (await fetch(hub.info.api + "/metrics", { tls: { ca: creds.ca, cert: creds.cert, key: creds.key } } as RequestInit)).text())
  .split("\n").filter((l) => l.startsWith("grey_session_handshakes_total"));
console.error(`hub sessions: ${handshakeLines.join(", ") || "(no metric)"}`);

// baseline: the same subtasks in process
const cores = availableParallelism();
const ex = wasmExecutor({ concurrency: cores, queuedTasksMax: subtasks + cores })(testComponents);
await ex.start();
await ex.execute({ id: "warm", kind: "wasm", module, input: new Uint8Array(), limits });
const localRates: number[] = [];
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  await Promise.all(inputs.map(async (p, j) => {
    const r = await ex.execute({ id: `b${j}`, kind: "wasm", module, input: new TextEncoder().encode(p.input), limits });
    if (!r.ok) throw new Error(`${r.reason}: ${r.detail}`);
  }));
  localRates.push(subtasks / ((performance.now() - t0) / 1000));
}
await ex.stop();

// 2. catch-up after an outage
const outboxOf = (dir: string) => {
  const db = new Database(join(dir, "autonomy.db"), { readonly: true });
  try {
    return db.query<{ n: number }, []>("SELECT count(*) AS n FROM outbox").get()!.n;
  } finally {
    db.close();
  }
};
const idle = (dir: string) => {
  const db = new Database(join(dir, "autonomy.db"), { readonly: true });
  try {
    const busy = db.query<{ n: number }, []>("SELECT count(*) AS n FROM subtasks WHERE state != 'done'").get()!.n;
    const local = db.query<{ n: number }, []>("SELECT count(*) AS n FROM local_tasks WHERE state IN ('pending', 'running')").get()!.n;
    return busy + local === 0;
  } finally {
    db.close();
  }
};
await waitFor("outboxes drained before the outage", () => agents.every((a) => outboxOf(a.dir) === 0) || undefined, 120_000, 200);
const listen = hub.info.multiaddrs[0]!.replace(/\/p2p\/.*/, "");
await hub.stop();
const work = tempDir("grey-bench-tasks-work-");
await Promise.all(agents.map(async (a) => {
  const file = join(work, `${a.cluster}.json`);
  writeFileSync(file, JSON.stringify({ module: b64(module), partitions: Array.from({ length: localPerAgent }, (_, i) => ({ input: String(i) })), placement: { clusters: [a.cluster] } }));
  const r = await run(agentBin, ["submit", file, "--data-dir", a.dir]);
  if (r.exitCode !== 0) throw new Error(r.stderr);
}));
await waitFor("local work done on every agent", () => agents.every((a) => idle(a.dir)) || undefined, 300_000, 250);
const backlog = agents.reduce((n, a) => n + outboxOf(a.dir), 0);
console.error(`outage: ${backlog} records waiting in ${agentCount} outboxes`);
const t0 = performance.now();
hub = await startHub(hubDir, ["--heartbeat-interval", "1s", "--listen", listen], true);
const hubReadyMs = performance.now() - t0;
let firstDrainAt: number | undefined;
await waitFor("every outbox drained", () => {
  const left = agents.reduce((n, a) => n + outboxOf(a.dir), 0);
  if (left < backlog && firstDrainAt === undefined) firstDrainAt = performance.now();
  return left === 0 || undefined;
}, 300_000, 20);
const catchUpMs = performance.now() - t0;
const drainMs = performance.now() - (firstDrainAt ?? t0);
await hub.stop();
await stopAll();

// baseline: the hub's receipt code in process, same record count, same batch size
const dir = tempDir("grey-bench-tasks-receipt-");
const store = TaskStore.open(join(dir, "tasks.db"), { now: Date.now });
store.createTask("t", planTask({ module: "AA==", partitions: [{ input: "x" }] }), "bench");
const usage = (i: number) => encodeCbor({ id: `u${i}`, agreementId: "unmetered", subtaskId: `s${i}`, at: 1, cpuMilliCoreSeconds: 1, memoryByteSeconds: 1, transferBytes: 1 });
const audit = (i: number) => encodeCbor({ event: "subtask-executed", subject: `s${i}`, details: { origin: "local", ok: true, attempt: 1 } });
const entries: OutboxEntry[] = Array.from({ length: backlog }, (_, i) => ({ seq: (i % 1_000_000) + 1, kind: i % 2 ? "audit" : "usage", at: 1, body: i % 2 ? audit(i) : usage(i) }));
const r0 = performance.now();
for (let i = 0; i < entries.length; i += outboxEntriesPerPushMax) {
  const peer = `peer-${Math.floor(i / 1_000_000)}`;
  applyOutbox(store, peer, "c", entries.slice(i, i + outboxEntriesPerPushMax));
}
const receiptRate = backlog / ((performance.now() - r0) / 1000);
store.close();

const hubRate = median(hubRates);
const localRate = median(localRates);
const catchUp = backlog / (catchUpMs / 1000);
const drain = backlog / (drainMs / 1000);
printTable(["measure", "baseline", "grey", "ratio"], [
  [`subtasks/s, ${subtasks} echo subtasks (hub + ${agentCount} agents vs in-process wasm executor x${cores})`, perSecond(localRate), perSecond(hubRate), ratio(hubRate, localRate)],
  [`catch-up records/s from hub restart (${backlog} records, ${agentCount} outboxes vs in-process receipt)`, perSecond(receiptRate), perSecond(catchUp), ratio(catchUp, receiptRate)],
  ["  of which: drain records/s, first record acknowledged -> last", perSecond(receiptRate), perSecond(drain), ratio(drain, receiptRate)],
]);
console.log(`\nsubtasks/s: median of ${runs} runs; catch-up timed from hub restart (ready in ${hubReadyMs.toFixed(0)} ms) to every outbox empty: ${catchUpMs.toFixed(0)} ms (first acknowledged after ${(catchUpMs - drainMs).toFixed(0)} ms), agents reconnect with jittered backoff; ${cores} cores; bun ${Bun.version}, ${process.arch}`);
process.exit(0);
