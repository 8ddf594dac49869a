/**
 * Footprint of the shipped binaries beside a bare compiled Bun program built
 * and measured in the same run (so ratios survive a noisy machine):
 *   - binary size
 *   - cold start: `--version` and `--help` to exit, and hub start to run.json
 *   - idle RSS: bare program vs agent after join, hub alone and with 20 agents
 * Prints medians. Usage: bun run bench:footprint [-- --runs 7 --agents 20]
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  agentBin, createToken, hubBin, initHub, requireBinaries, run, startAgent, startHub, stopAll, tempDir, waitFor, agentStatus,
} from "../test/e2e/harness.ts";
import { mb, median, ms, printTable, ratio } from "./stats.ts";

const { values } = parseArgs({ args: process.argv.slice(2), options: { runs: { type: "string" }, agents: { type: "string" } } });
const runs = Number(values.runs ?? 7);
const agentCount = Number(values.agents ?? 20);

const rssMb = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
};

requireBinaries();
const work = tempDir("grey-bench-");

// The baseline: a bare Bun program compiled the same way, that idles like a daemon.
const bareSrc = join(work, "bare.ts");
writeFileSync(bareSrc, `if (process.argv[2] === "--version") { console.log("bare 0"); process.exit(0); }\nsetInterval(() => {}, 1 << 30);\n`);
const bareBin = join(work, "bare");
const b = Bun.spawnSync([process.execPath, "build", "--compile", "--minify", "--bytecode", "--format=esm", `--outfile=${bareBin}`, bareSrc]);
if (b.exitCode !== 0) throw new Error(b.stderr.toString());

async function startTime(bin: string, arg = "--version"): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    const r = await run(bin, [arg]);
    if (r.exitCode !== 0) throw new Error(r.stderr);
    xs.push(performance.now() - t);
  }
  return median(xs);
}

async function idleRss(cmd: string[], settleMs = 1500): Promise<number> {
  const p = Bun.spawn(cmd, { stdout: "ignore", stderr: "ignore" });
  await Bun.sleep(settleMs);
  const v = rssMb(p.pid);
  p.kill("SIGKILL");
  await p.exited;
  return v;
}

const rows: [string, string, string, string][] = [];
const add = (what: string, bare: number, ours: number, fmt: (n: number) => string) =>
  rows.push([what, fmt(bare), fmt(ours), ratio(ours, bare)]);

add("binary size (agent)", statSync(bareBin).size / 1e6, statSync(agentBin).size / 1e6, mb);
add("binary size (hub)", statSync(bareBin).size / 1e6, statSync(hubBin).size / 1e6, mb);
const bareStart = await startTime(bareBin);
add("start to exit, --version (agent)", bareStart, await startTime(agentBin), ms);
add("start to exit, --version (hub)", bareStart, await startTime(hubBin), ms);
add("start to exit, --help (agent)", bareStart, await startTime(agentBin, "--help"), ms);
add("start to exit, --help (hub)", bareStart, await startTime(hubBin, "--help"), ms);

// hub cold start to ready (run.json written), median over runs
const hubDir = tempDir("grey-bench-hub-");
await initHub(hubDir);
const readyTimes: number[] = [];
for (let i = 0; i < runs; i++) {
  const t = performance.now();
  const h = await startHub(hubDir, [], true);
  readyTimes.push(performance.now() - t);
  await h.stop();
}
const bareIdle: number[] = [];
for (let i = 0; i < 3; i++) bareIdle.push(await idleRss([bareBin]));
const bareRss = median(bareIdle);
rows.push(["hub start to ready (run.json)", "-", ms(median(readyTimes)), "-"]);

// agent idle RSS after join, and hub RSS with N agents
const hub = await startHub(hubDir, ["--heartbeat-interval", "1s"], true);
await Bun.sleep(1500); // settled like the bare program, not the instant run.json appears
const hubAlone = rssMb(hub.proc.pid);
const agentPids: number[] = [];
for (let i = 0; i < agentCount; i++) {
  const dir = tempDir("grey-bench-agent-");
  const token = await createToken(hubDir, `bench-${i}`, "grey", "eu-west");
  const r = await run(agentBin, ["join", token, "--data-dir", dir]);
  if (r.exitCode !== 0) throw new Error(`join failed: ${r.stderr}\nhub exit=${hub.proc.exitCode} log:\n${hub.log().slice(-3000)}`);
  const a = startAgent(dir, ["--heartbeat-interval", "1s", "--log-level", "warn"], true);
  agentPids.push(a.proc.pid);
  if (i === 0) await waitFor("first agent heartbeating", () => agentStatus(dir)?.hub.reachable || undefined);
}
await Bun.sleep(5000);
add("idle RSS: agent after join", bareRss, median(agentPids.map(rssMb)), mb);
add("idle RSS: hub, no agents", bareRss, hubAlone, mb);
add(`idle RSS: hub with ${agentCount} agents`, bareRss, rssMb(hub.proc.pid), mb);
await stopAll();

printTable(["measure", "bare bun", "grey", "ratio"], rows);
console.log(`\nmedians of ${runs} runs (RSS: median over ${agentCount} agents, bare: median of 3); bun ${Bun.version}, ${process.arch}`);
process.exit(0);
