/**
 * Failover time with the compiled binaries: a one-subtask task runs on one of
 * three agents; once that agent's own store says the subtask is running, it is
 * killed with SIGKILL, and we time until the task is done elsewhere. Baseline,
 * in the same run: the same task with no failure, timed from the same point
 * (subtask running on its agent) to done. Each failure run restarts the victim
 * before the next. Prints medians beside the seed target (30 s) and our goal (3 s).
 *
 * What bounds it: heartbeats (agents and hub at --heartbeat-interval; a cluster is
 * `suspect` after heartbeatMissedSuspect missed periods), the scheduler tick
 * (hub/tasks/service.ts schedulerTickMs), then delivery and the re-run.
 *
 *   bun bench/failover.ts [--runs 5] [--heartbeat 500ms] [--rounds 2]
 */
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { heartbeatMissedSuspect } from "../plugins/sdk/limits.ts";
import {
  adminCreds, agentBin, agentStatus, createToken, initHub, requireBinaries, run, startAgent, startHub, stopAll, tempDir, waitFor, type Daemon,
} from "../test/e2e/harness.ts";
import { b64, slowEchoModule } from "../test/e2e/task-modules.ts";
import { median, ms, printTable } from "./stats.ts";

const { values } = parseArgs({ args: process.argv.slice(2), options: { runs: { type: "string" }, heartbeat: { type: "string" }, rounds: { type: "string" } } });
const runs = Math.max(5, Number(values.runs ?? 5));
const heartbeat = values.heartbeat ?? "500ms";
const rounds = Number(values.rounds ?? 2);
const seedTargetMs = 30_000;
const goalMs = 3_000;

requireBinaries();
const hubDir = tempDir("grey-bench-failover-hub-");
await initHub(hubDir, ["--org", "bench"]);
const hub = await startHub(hubDir, ["--heartbeat-interval", heartbeat], true);
const creds = adminCreds(hubDir);
const agents: { cluster: string; dir: string; daemon: Daemon }[] = [];
for (const cluster of ["f1", "f2", "f3"]) {
  const dir = tempDir("grey-bench-failover-agent-");
  const r = await run(agentBin, ["join", await createToken(hubDir, cluster, "bench", "eu-west"), "--data-dir", dir]);
  if (r.exitCode !== 0) throw new Error(r.stderr);
  agents.push({ cluster, dir, daemon: startAgent(dir, ["--heartbeat-interval", heartbeat], true) });
}
const allUp = () => waitFor("agents reachable", () => agents.every((a) => agentStatus(a.dir)?.hub.reachable) || undefined, 60_000);
await allUp();

async function call(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(hub.info.api + path, {
    method, tls: { ca: creds.ca, cert: creds.cert, key: creds.key },
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {}),
  } as RequestInit);
  return await res.json();
}

function stateOn(dir: string, id: string): string | undefined {
  const db = new Database(join(dir, "autonomy.db"), { readonly: true });
  try {
    return db.query<{ state: string }, [string]>("SELECT state FROM subtasks WHERE id = ?").get(id)?.state;
  } catch {
    return undefined;
  } finally {
    db.close();
  }
}

/** Submit, wait until the subtask runs on its agent, optionally kill that agent; ms from then to the task done. */
async function once(kill: boolean): Promise<{ ms: number; moved: boolean }> {
  const t = await call("POST", "/v1/tasks", { module: b64(slowEchoModule(rounds)), partitions: [{ input: "x" }], limits: { timeMs: 60_000 } });
  const sub = `${t.id}.0`;
  const assigned = await waitFor("assigned", async () => {
    const v = await call("GET", `/v1/tasks/${t.id}`);
    return v.subtasks[0].state === "assigned" ? v.subtasks[0].cluster as string : undefined;
  }, 60_000, 20);
  const victim = agents.find((a) => a.cluster === assigned)!;
  await waitFor("running on its agent", () => stateOn(victim.dir, sub) === "running" || undefined, 60_000, 5);
  const t0 = performance.now();
  if (kill) victim.daemon.proc.kill("SIGKILL");
  const done = await waitFor("task done", async () => {
    const v = await call("GET", `/v1/tasks/${t.id}`);
    return v.state !== "running" ? v : undefined;
  }, 120_000, 25);
  const took = performance.now() - t0;
  if (done.state !== "done") throw new Error(`task ${t.id} ${done.state}: ${done.error}`);
  if (kill) {
    await victim.daemon.proc.exited;
    victim.daemon = startAgent(victim.dir, ["--heartbeat-interval", heartbeat], true);
    await allUp();
  }
  return { ms: took, moved: done.subtasks[0].resultCluster !== assigned };
}

const baseline: number[] = [];
const failover: number[] = [];
let moved = 0;
for (let i = 0; i < runs; i++) {
  baseline.push((await once(false)).ms);
  const f = await once(true);
  failover.push(f.ms);
  if (f.moved) moved++;
  console.error(`run ${i + 1}/${runs}: no failure ${ms(baseline[i]!)}, kill -9 ${ms(f.ms)}`);
}
await hub.stop();
await stopAll();

const med = median(failover);
printTable(["measure", "median", "min", "max"], [
  ["no failure: running -> done (baseline)", ms(median(baseline)), ms(Math.min(...baseline)), ms(Math.max(...baseline))],
  ["kill -9 of its cluster -> done elsewhere", ms(med), ms(Math.min(...failover)), ms(Math.max(...failover))],
  ["failover overhead (medians)", ms(med - median(baseline)), "-", "-"],
]);
console.log("");
printTable(["target", "limit", "median failover", "met"], [
  ["seed target", ms(seedTargetMs), ms(med), med < seedTargetMs ? "yes" : "NO"],
  ["our goal", ms(goalMs), ms(med), med < goalMs ? "yes" : "no"],
]);
console.log(`\n${runs} runs each; ${moved}/${runs} finished on another cluster; heartbeat ${heartbeat} (suspect after ${heartbeatMissedSuspect} missed); subtask ~${rounds} spin rounds; bun ${Bun.version}, ${process.arch}`);
process.exit(0);
