/**
 * Agreements, the audit log and API rate limiting on a running compiled hub.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { adminCreds, agentBin, api, createToken, hubBin, initHub, requireBinaries, run, startHub, stopAll, tempDir, type Daemon, type HubRun } from "./harness.ts";

let hubDir: string;
let hub: Daemon & { info: HubRun };

const agreementYaml = `agreement:
  provider: org-a
  consumer: org-b
  resources:
    cpu:    { limit: "1000 cores", priority: high }
    memory: { limit: "4 TB",       priority: medium }
  scheduling:
    preemption: true
    max_burst: "1.5x"
  billing:
    model: pay-per-use
    rate_card: standard-2024
`;

beforeAll(async () => {
  requireBinaries();
  hubDir = tempDir("grey-hub-");
  await initHub(hubDir, ["--org", "org-a"]);
  hub = await startHub(hubDir);
  const token = await createToken(hubDir, "edge-1", "org-a", "eu-west");
  expect((await run(agentBin, ["join", token, "--data-dir", tempDir()])).exitCode).toBe(0);
});

afterAll(stopAll);

async function post(path: string, body: string, type = "application/yaml") {
  const c = adminCreds(hubDir);
  const res = await fetch(hub.info.api + path, { method: "POST", body, headers: { "content-type": type }, tls: { ca: c.ca, cert: c.cert, key: c.key } } as RequestInit);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test("agreements: apply the seed's YAML, read it back; a bad document lists every problem with path and line", async () => {
  const created = await post("/v1/agreements", agreementYaml);
  expect(created.status).toBe(201);
  const id = (created.body as { id?: string; agreement?: { id: string } }).id ?? (created.body as { agreement: { id: string } }).agreement.id;
  const got = await api(hub.info.api, `/v1/agreements/${id}`, adminCreds(hubDir));
  expect(got.status).toBe(200);
  expect(JSON.stringify(got.body)).toContain("org-b");
  const bad = await post("/v1/agreements", agreementYaml.replace('"1000 cores"', '"lots"').replace('"1.5x"', '"fast"'));
  expect(bad.status).toBe(400);
  const problems = (bad.body as { error: { problems: { path: string; line: number }[] } }).error.problems;
  expect(problems.map((p) => p.path).sort()).toEqual(["agreement.resources.cpu.limit", "agreement.scheduling.max_burst"]);
  expect(problems.find((p) => p.path.endsWith("cpu.limit"))!.line).toBe(5);
  expect(problems.find((p) => p.path.endsWith("max_burst"))!.line).toBe(9);
});

test("audit: joins and agreement changes are recorded; verify passes, then detects a modified record", async () => {
  const page = await api(hub.info.api, "/v1/audit", adminCreds(hubDir));
  expect(page.status).toBe(200);
  const kinds = (page.body as { items: { kind: string }[] }).items.map((r) => r.kind);
  expect(kinds).toContain("join");
  expect(kinds).toContain("agreement-change");
  const ok = await run(hubBin, ["audit", "verify", "--data-dir", hubDir]);
  expect(ok.exitCode).toBe(0);
  expect(ok.stdout).toMatch(/audit log intact: \d+ records/);
  // tamper with a copy of the hub's data dir
  const copy = tempDir("grey-hub-copy-");
  for (const f of ["node.key", "audit.db"]) copyFileSync(join(hubDir, f), join(copy, f));
  for (const f of ["audit.db-wal", "audit.db-shm"]) try { copyFileSync(join(hubDir, f), join(copy, f)); } catch {}
  const db = new Database(join(copy, "audit.db"));
  db.run("UPDATE audit_log SET subject = 'grey://org-a/eu-west/forged' WHERE seq = 1");
  db.close();
  const bad = await run(hubBin, ["audit", "verify", "--data-dir", copy]);
  expect(bad.exitCode).toBe(1);
  expect(bad.stderr).toMatch(/broken at record 1: .*modified/);
});

test("rate limiting: a flooding client gets 429 with Retry-After; the hub keeps serving", async () => {
  const creds = adminCreds(hubDir);
  const results = await Promise.all(Array.from({ length: 300 }, () => api(hub.info.api, "/v1/clusters", creds)));
  const limited = results.filter((r) => r.status === 429);
  expect(limited.length).toBeGreaterThan(0);
  expect(limited[0]!.body).toMatchObject({ error: { code: "ERR_RATE_LIMITED" } });
  // health needs no certificate and is keyed by address, so it has its own budget
  expect((await api(hub.info.api, "/v1/health", { ca: creds.ca })).status).toBe(200);
});
