/**
 * The local federation demo: one hub and three agents in three regions, each
 * a separate process of the compiled binaries, on loopback with embedded
 * defaults. Prints the federation once all have joined, then keeps running
 * until Ctrl-C or --duration SECONDS.
 *
 *   npm run demo [-- --duration 30]
 */
import { parseArgs } from "node:util";
import {
  adminCreds, agentBin, agentStatus, api, createToken, initHub, requireBinaries, run, startAgent, startHub, stopAll,
  tempDir, waitFor,
} from "./harness.ts";
import { b64, echoModule } from "./task-modules.ts";

const { values } = parseArgs({ args: process.argv.slice(2), options: { duration: { type: "string" } }, strict: true });
const durationS = values.duration ? Number(values.duration) : undefined;
if (durationS !== undefined && !(durationS > 0)) {
  console.error("demo: --duration must be a positive number of seconds");
  process.exit(2);
}

interface ClusterView {
  clusterId: string;
  org: string;
  region: string;
  peerId: string;
  state: string;
  lastHeartbeat?: string;
  certNotAfter: string;
  attestation: { format: string; ok: boolean };
}

function table(rows: ClusterView[], peersOf: (id: string) => number): string {
  const head = ["CLUSTER", "ORG", "REGION", "STATE", "ATTESTATION", "PEERS", "CERT EXPIRES", "PEER ID"];
  const body = rows.map((r) => [
    r.clusterId, r.org, r.region, r.state, `${r.attestation.format}:${r.attestation.ok ? "ok" : "FAILED"}`,
    String(peersOf(r.clusterId)), r.certNotAfter.replace(/\.\d+Z$/, "Z"), r.peerId.slice(0, 16) + "…",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body].map((cols) => cols.map((c, i) => c.padEnd(widths[i]!)).join("  ")).join("\n");
}

requireBinaries();
let stopping = false;
const shutdown = async (why: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${why}: stopping hub and agents…`);
  await stopAll();
  console.log("stopped cleanly");
  process.exit(0);
};
process.on("SIGINT", () => void shutdown("Ctrl-C"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));

const hubDir = tempDir("grey-demo-hub-");
await initHub(hubDir, ["--org", "demo"]);
const hub = await startHub(hubDir, ["--heartbeat-interval", "1s"], true);
console.log(`hub ${hub.info.peerId} ready; API ${hub.info.api}`);

const sites = [
  { cluster: "factory-berlin", region: "eu-central" },
  { cluster: "store-austin", region: "us-south" },
  { cluster: "port-singapore", region: "ap-southeast" },
];
const agentDirs = new Map<string, string>();
for (const s of sites) {
  const dir = tempDir("grey-demo-agent-");
  const token = await createToken(hubDir, s.cluster, "demo", s.region);
  const r = await run(agentBin, ["join", token, "--data-dir", dir]);
  if (r.exitCode !== 0) throw new Error(`join ${s.cluster} failed: ${r.stderr}`);
  console.log(r.stdout.trim());
  startAgent(dir, ["--heartbeat-interval", "1s"], true);
  agentDirs.set(s.cluster, dir);
}

const creds = adminCreds(hubDir);
const peersOf = (id: string) => agentStatus(agentDirs.get(id)!)?.peers.length ?? 0;
await waitFor("all clusters healthy and meshed", async () => {
  const r = await api(hub.info.api, "/v1/clusters/healthy", creds);
  const items = (r.body as { items?: unknown[] }).items ?? [];
  return items.length === sites.length && sites.every((s) => peersOf(s.cluster) === sites.length - 1) ? true : undefined;
}, 60_000);
const list = await api(hub.info.api, "/v1/clusters", creds);
console.log(`\nGrey federation (CA in ${hubDir}/admin):\n`);
console.log(table((list.body as { items: ClusterView[] }).items, peersOf));
// A cross-cluster task: the hub splits 1..30 three ways, each cluster runs the
// WebAssembly module on its share in a sandbox, and the hub sums the results.
const items = Array.from({ length: 30 }, (_, i) => i + 1);
const submitted = await api(hub.info.api, "/v1/tasks", creds, { name: "demo-sum", module: b64(echoModule()), split: { items, ways: 3 }, aggregate: { kind: "sum" } });
if (submitted.status !== 201 && submitted.status !== 200) throw new Error(`task submit failed: ${submitted.text}`);
const taskId = (submitted.body as { id: string }).id;
const task = await waitFor("the demo task to finish", async () => {
  const t = (await api(hub.info.api, `/v1/tasks/${taskId}`, creds)).body as { state: string; result?: { text?: string }; subtasks: { resultCluster?: string; clusters?: string[] }[] };
  return t.state === "done" || t.state === "failed" ? t : undefined;
}, 60_000, 200);
console.log(`\ntask ${taskId}: sum of 1..30 split across ${new Set(task.subtasks.map((s) => s.resultCluster ?? s.clusters?.at(-1))).size} clusters = ${task.result?.text ?? task.state}`);
console.log(`\ncurl --cacert ${hubDir}/admin/ca.pem --cert ${hubDir}/admin/cert.pem --key ${hubDir}/admin/key.pem ${hub.info.api}/v1/clusters`);

if (durationS !== undefined) {
  console.log(`\nrunning for ${durationS} s (Ctrl-C stops earlier)`);
  await Bun.sleep(durationS * 1000);
  await shutdown("duration reached");
} else {
  console.log("\nrunning; Ctrl-C stops it");
  await new Promise(() => {});
}
