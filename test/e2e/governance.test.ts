/**
 * Agreements, the audit log and API rate limiting on a running compiled hub.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  adminCreds, agentBin, agentStatus, api, createToken, hubBin, initHub, requireBinaries, run, startAgent, startHub, stopAll, tempDir, waitFor,
  type Creds, type Daemon, type HubRun,
} from "./harness.ts";
import { EXAMPLE_YAML } from "../../hub/agreements/testdata.ts";

let hubDir: string;
let hub: Daemon & { info: HubRun };
let memberDir: string;

const agreementYaml = EXAMPLE_YAML;

beforeAll(async () => {
  requireBinaries();
  hubDir = tempDir("grey-hub-");
  await initHub(hubDir, ["--org", "org-a"]);
  hub = await startHub(hubDir);
  const token = await createToken(hubDir, "edge-1", "org-a", "eu-west");
  memberDir = tempDir();
  expect((await run(agentBin, ["join", token, "--data-dir", memberDir])).exitCode).toBe(0);
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

test("rate limiting: a flooding client gets 429 with Retry-After; a well-behaved client is never refused meanwhile", async () => {
  const creds = adminCreds(hubDir);
  // the well-behaved client: the member that joined in beforeAll, its own certificate, 20 calls spaced out
  const member: Creds = { ca: creds.ca, cert: readFileSync(join(memberDir, "tls", "cert.pem"), "utf8"), key: readFileSync(join(memberDir, "tls", "key.pem"), "utf8") };
  const calm = (async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      statuses.push((await api(hub.info.api, "/v1/clusters/healthy", member)).status);
      await Bun.sleep(25);
    }
    return statuses;
  })();
  const results = await Promise.all(Array.from({ length: 300 }, () => api(hub.info.api, "/v1/clusters", creds)));
  const limited = results.filter((r) => r.status === 429);
  expect(limited.length).toBeGreaterThan(0);
  expect(limited[0]!.body).toMatchObject({ error: { code: "ERR_RATE_LIMITED" } });
  expect(await calm).toEqual(Array(20).fill(200));
  // health needs no certificate and is keyed by address, so it has its own budget
  expect((await api(hub.info.api, "/v1/health", { ca: creds.ca })).status).toBe(200);
});

describe("trust boundaries and allow-lists (governance policy file)", () => {
  test("another org's member may read cluster health but not the audit log; peers of different orgs stay apart; a disallowed org's heartbeats are refused", async () => {
    const dir = tempDir("grey-hub-gov-");
    await initHub(dir, ["--org", "acme"]);
    const policy = join(tempDir("grey-gov-"), "governance.yaml");
    writeFileSync(policy, [
      "boundaries:",
      "  same-org: [\"*\"]",
      "  different-org: [clusters.read]",
      "allow:",
      "  orgs: [acme, partner]",
      "",
    ].join("\n"));
    const h = await startHub(dir, ["--governance", policy, "--heartbeat-interval", "500ms"]);
    const agents: Record<string, string> = {};
    for (const [cluster, org] of [["a1", "acme"], ["a2", "acme"], ["p1", "partner"], ["m1", "mallory"]] as const) {
      const d = tempDir(`grey-agent-${cluster}-`);
      const token = await createToken(dir, cluster, org, "eu-west");
      expect((await run(agentBin, ["join", token, "--data-dir", d])).exitCode).toBe(0);
      startAgent(d);
      agents[cluster] = d;
    }
    // acme's two clusters see each other; partner sees nobody (different-org has no peer.connect)
    await waitFor("a1 meshed with a2", () => (agentStatus(agents.a1!)?.peers.map((p) => p.clusterId).includes("a2") ? true : undefined));
    await waitFor("p1 heartbeating", () => ((agentStatus(agents.p1!)?.heartbeatsSent ?? 0) > 2 ? true : undefined));
    expect(agentStatus(agents.p1!)!.peers).toEqual([]);
    expect(agentStatus(agents.a1!)!.peers.map((p) => p.clusterId)).toEqual(["a2"]);
    // mallory is not on the allow-list: joined by token, but its heartbeats are refused
    await Bun.sleep(1500);
    const m = agentStatus(agents.m1!)!;
    expect(m.heartbeatsSent).toBe(0);
    expect(m.hub.reachable).toBe(false);
    // the partner member, as an API client
    const partner: Creds = {
      ca: readFileSync(join(dir, "admin", "ca.pem"), "utf8"),
      cert: readFileSync(join(agents.p1!, "tls", "cert.pem"), "utf8"),
      key: readFileSync(join(agents.p1!, "tls", "key.pem"), "utf8"),
    };
    expect((await api(h.info.api, "/v1/clusters/healthy", partner)).status).toBe(200);
    const audit = await api(h.info.api, "/v1/audit", partner);
    expect(audit.status).toBe(403);
    expect(audit.body).toMatchObject({ error: { code: "ERR_FORBIDDEN", message: "different-org callers may not audit.read (governance policy)" } });
    // acme's own member may read it
    const own: Creds = { ...partner, cert: readFileSync(join(agents.a1!, "tls", "cert.pem"), "utf8"), key: readFileSync(join(agents.a1!, "tls", "key.pem"), "utf8") };
    expect((await api(h.info.api, "/v1/audit", own)).status).toBe(200);
  });

  test("a bad governance file stops the hub with every problem and its line", async () => {
    const dir = tempDir("grey-hub-gov-bad-");
    await initHub(dir);
    const policy = join(tempDir("grey-gov-"), "bad.yaml");
    writeFileSync(policy, "boundaries:\n  same-org: [fly]\nallow:\n  orgs: [Bad_Org]\n");
    const r = await run(hubBin, ["run", "--data-dir", dir, "--api", "127.0.0.1:0", "--governance", policy]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain(`${policy}:2: boundaries.same-org.0:`);
    expect(r.stderr).toContain(`${policy}:4: allow.orgs.0:`);
  });
});

test("agreement CLI: apply from a file, every problem with its line; invoice as CSV", async () => {
  const good = join(tempDir("grey-agr-"), "agreement.yaml");
  writeFileSync(good, agreementYaml.replace("consumer: org-b", "consumer: org-c"));
  const ok = await run(hubBin, ["agreement", "apply", good, "--data-dir", hubDir]);
  expect(ok.stderr).toBe("");
  expect(ok.exitCode).toBe(0);
  const id = (JSON.parse(ok.stdout) as { id?: string; agreement?: { id: string } }).agreement?.id ?? (JSON.parse(ok.stdout) as { id: string }).id;
  expect(id).toMatch(/^agr-/);
  const bad = join(tempDir("grey-agr-"), "bad.yaml");
  writeFileSync(bad, agreementYaml.replace('"4 TB"', '"four"').replace("priority: high", "priority: urgent"));
  const refused = await run(hubBin, ["agreement", "apply", bad, "--data-dir", hubDir]);
  expect(refused.exitCode).toBe(1);
  expect(refused.stderr).toContain("line 5: agreement.resources.cpu.priority");
  expect(refused.stderr).toContain("line 6: agreement.resources.memory.limit");
  const csv = await run(hubBin, ["agreement", "invoice", id, "--data-dir", hubDir, "--from", "2026-01-01T00:00:00Z", "--to", "2026-02-01T00:00:00Z", "--csv"]);
  expect(csv.exitCode).toBe(0);
  expect(csv.stdout.split("\n")[0]).toMatch(/,/);
});
