/**
 * API fairness under a flood, with the compiled hub: K well-behaved clients,
 * each with its own member certificate, call GET /v1/clusters/healthy at a
 * steady pace under the per-client limit (hub.json apiRateLimit, default
 * 50/s, burst 100), while one more client (its own certificate) floods with
 * many requests in flight. Baseline, in the same run: the same well-behaved
 * load without the flood. Prints the well-behaved clients' throughput, p50 and
 * p99 latency and errors for both, and what happened to the flood. The flood
 * runs in a child process, so its requests do not queue behind the measuring
 * clients' event loop (on a small machine they still share the cores).
 *
 *   bun bench/ratelimit.ts [--clients 8] [--rate 10] [--seconds 10] [--flood 64]
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { adminCreds, agentBin, createToken, initHub, requireBinaries, run, startHub, stopAll, tempDir, type Creds } from "../test/e2e/harness.ts";
import { median, ms, percentile, perSecond, printTable, ratio } from "./stats.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    clients: { type: "string" }, rate: { type: "string" }, seconds: { type: "string" }, flood: { type: "string" },
    "flood-child": { type: "string" },
  },
});
const clientCount = Number(values.clients ?? 8);
const ratePerClient = Number(values.rate ?? 10);
const seconds = Number(values.seconds ?? 10);
const floodInFlight = Number(values.flood ?? 64);
const path = "/v1/clusters/healthy";

async function get(api: string, creds: Creds): Promise<number> {
  const res = await fetch(api + path, { tls: { ca: creds.ca, cert: creds.cert, key: creds.key } } as RequestInit);
  await res.arrayBuffer();
  return res.status;
}

// The flooding client (child process): argv JSON {api, creds}; floods until SIGTERM, then prints its counts.
if (values["flood-child"]) {
  const { api, creds } = JSON.parse(values["flood-child"]) as { api: string; creds: Creds };
  const f = { sent: 0, limited: 0, ok: 0 };
  let stop = false;
  process.on("SIGTERM", () => void (stop = true));
  await Promise.all(Array.from({ length: floodInFlight }, async () => {
    while (!stop) {
      const status = await get(api, creds).catch(() => 0);
      f.sent++;
      if (status === 429) f.limited++;
      else if (status === 200) f.ok++;
    }
  }));
  console.log(JSON.stringify(f));
  process.exit(0);
}

requireBinaries();
const hubDir = tempDir("grey-bench-rl-hub-");
await initHub(hubDir, ["--org", "bench"]);
const hub = await startHub(hubDir, [], true);
const ca = adminCreds(hubDir).ca;
/** Distinct member certificates: join (the agents need not run to call the API). */
const members: Creds[] = [];
for (let i = 0; i <= clientCount; i++) {
  const dir = tempDir("grey-bench-rl-agent-");
  const r = await run(agentBin, ["join", await createToken(hubDir, `rl${i}`, "bench", "eu-west"), "--data-dir", dir]);
  if (r.exitCode !== 0) throw new Error(r.stderr);
  members.push({ ca, cert: readFileSync(join(dir, "tls", "cert.pem"), "utf8"), key: readFileSync(join(dir, "tls", "key.pem"), "utf8") });
}
const flooder = members.pop()!;


interface Outcome { ok: number; errors: number; latencies: number[]; wallS: number }

/** Each client: one request every 1/rate s (or as soon as the previous answer when slower). */
async function wellBehaved(): Promise<Outcome> {
  const out: Outcome = { ok: 0, errors: 0, latencies: [], wallS: 0 };
  const intervalMs = 1000 / ratePerClient;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(members.map(async (c, i) => {
    await Bun.sleep((intervalMs * i) / members.length); // spread the clients' phases
    while (performance.now() < end) {
      const s = performance.now();
      const status = await get(hub.info.api, c).catch(() => 0);
      const took = performance.now() - s;
      out.latencies.push(took);
      if (status === 200) out.ok++;
      else out.errors++;
      if (took < intervalMs) await Bun.sleep(intervalMs - took);
    }
  }));
  out.wallS = (performance.now() - t0) / 1000;
  return out;
}


await wellBehaved().catch(() => undefined); // warm-up (connections, JIT), not counted
const quiet = await wellBehaved();
const child = Bun.spawn([process.execPath, import.meta.path, "--flood", String(floodInFlight), "--flood-child", JSON.stringify({ api: hub.info.api, creds: flooder })], { stdout: "pipe", stderr: "inherit" });
const floodStart = performance.now();
await Bun.sleep(500); // let the flood build up
const loaded = await wellBehaved();
child.kill("SIGTERM");
const f = JSON.parse(await new Response(child.stdout).text()) as { sent: number; limited: number; ok: number };
const floodS = (performance.now() - floodStart) / 1000;
await hub.stop();
await stopAll();

const row = (name: string, o: Outcome): string[] => [
  name, perSecond(o.ok / o.wallS), ms(median(o.latencies)), ms(percentile(o.latencies, 99)), String(o.errors),
];
printTable(["well-behaved clients", "ok/s", "p50", "p99", "errors"], [row("no flood (baseline)", quiet), row("one client flooding", loaded)]);
console.log("");
printTable(["measure", "value"], [
  ["throughput, flood vs baseline", ratio(loaded.ok / loaded.wallS, quiet.ok / quiet.wallS)],
  ["p99, flood vs baseline", ratio(percentile(loaded.latencies, 99), percentile(quiet.latencies, 99))],
  ["flood: requests answered", `${perSecond(f.sent / floodS)} (${f.limited} of ${f.sent} refused 429, ${f.ok} served)`],
]);
console.log(`\n${clientCount} well-behaved clients at ${ratePerClient}/s each for ${seconds} s; flood: ${floodInFlight} in flight from one certificate; bun ${Bun.version}, ${process.arch}`);
process.exit(0);
