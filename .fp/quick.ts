// quick: hub + for each variant agent binary K agents; prints smaps summaries
import { agentBin, createToken, initHub, run, startHub, stopAll, tempDir, waitFor, agentStatus } from "../test/e2e/harness.ts";
const k = Number(process.argv[2] ?? 2);
const variants = (process.env.VARIANTS ?? agentBin).split(",");
const hubDir = tempDir("grey-q-hub-");
await initHub(hubDir);
const hub = await startHub(hubDir, ["--heartbeat-interval", "1s"], true);
const procs: { v: string; p: ReturnType<typeof Bun.spawn> }[] = [];
for (const v of variants) for (let i = 0; i < k; i++) {
  const dir = tempDir("grey-q-agent-");
  const token = await createToken(hubDir, `q-${procs.length}`, "grey", "eu-west");
  const r = await run(agentBin, ["join", token, "--data-dir", dir]);
  if (r.exitCode !== 0) throw new Error(r.stderr);
  const p = Bun.spawn([v, "run", "--data-dir", dir, "--heartbeat-interval", "1s", "--log-level", "warn"], { stdout: "ignore", stderr: "inherit", env: { ...process.env, ...(process.env.ORDER_OUT ? { BUN_BYTECODE_ORDER_OUT: process.env.ORDER_OUT } : {}) } });
  procs.push({ v, p });
  await waitFor("hb", () => agentStatus(dir)?.hub.reachable || undefined);
}
await Bun.sleep(Number(process.env.SETTLE ?? 5000));
const sh = (pid: number) => Bun.spawnSync(["/tmp/fp/smaps.sh", String(pid)]).stdout.toString().trim();
for (const { v, p } of procs) console.log(v.split("/").pop()!.padEnd(26), sh(p.pid));
console.log("hub".padEnd(26), sh(hub.proc.pid));
for (const { p } of procs) p.kill(process.env.ORDER_OUT ? "SIGTERM" : "SIGKILL");
await Promise.all(procs.map(({ p }) => p.exited));
await stopAll();
process.exit(0);
