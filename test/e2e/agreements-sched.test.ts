/**
 * Agreements enforced by the task scheduler, and metering from the agents'
 * outboxes, with the compiled binaries: a hub of org-a with two org-a clusters
 * and one org-b cluster, an agreement org-a -> org-b of 2 cores.
 *  - a task submitted by org-b (an org-b member certificate) lands on org-a's
 *    clusters under the agreement;
 *  - a second one beyond the limit is held, with the reason on the task, and
 *    runs once the first one's subtasks are done;
 *  - org-a work on org-b's cluster (no agreement that way) is refused with the reason;
 *  - the invoice reflects the usage the agents reported, and does not change
 *    when an agent replays its outbox (restored from a backup taken before the
 *    hub acknowledged it).
 * Waits are generous: this must pass on a loaded 2-core machine.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  adminCreds, agentBin, agentStatus, createToken, initHub, requireBinaries, run, startAgent, startHub, stopAll, tempDir, waitFor,
  type Creds, type Daemon, type HubRun,
} from "./harness.ts";
import { b64, echoModule, slowEchoModule } from "./task-modules.ts";

let hubDir: string;
let governanceFile: string;
let hub: Daemon & { info: HubRun };
let admin: Creds;
let consumer: Creds;
let agreementId: string;
const agents: Record<string, { dir: string; org: string; daemon: Daemon }> = {};

const AGREEMENT = `agreement:
  provider: org-a
  consumer: org-b
  resources:
    cpu: { limit: "2 cores", priority: medium }
  scheduling:
    preemption: false
    max_burst: "1x"
  billing:
    model: pay-per-use
    rate_card: standard-2024
`;

async function call(creds: Creds, method: string, path: string, body?: string, type = "application/json"): Promise<{ status: number; body: any }> {
  const res = await fetch(hub.info.api + path, {
    method, tls: { ca: creds.ca, cert: creds.cert, key: creds.key },
    ...(body !== undefined ? { body, headers: { "content-type": type } } : {}),
  } as RequestInit);
  return { status: res.status, body: await res.json().catch(() => undefined) };
}
const submit = (creds: Creds, task: object) => call(creds, "POST", "/v1/tasks", JSON.stringify(task));
const getTask = async (id: string) => (await call(consumer, "GET", `/v1/tasks/${id}`)).body;
const waitTask = (id: string, timeoutMs = 90_000) =>
  waitFor(`task ${id} finished`, async () => {
    const t = await getTask(id);
    return t?.state !== "running" ? t : undefined;
  }, timeoutMs, 200);

function agentDb<T>(dir: string, fn: (db: Database) => T): T | undefined {
  if (!existsSync(join(dir, "autonomy.db"))) return undefined;
  const db = new Database(join(dir, "autonomy.db"), { readonly: true });
  try {
    return fn(db);
  } catch {
    return undefined;
  } finally {
    db.close();
  }
}
const subtaskState = (dir: string, id: string) => agentDb(dir, (db) => db.query<{ state: string }, [string]>("SELECT state FROM subtasks WHERE id = ?").get(id)?.state);
const outboxSize = (dir: string) => agentDb(dir, (db) => db.query<{ n: number }, []>("SELECT count(*) AS n FROM outbox").get()!.n);

const period = { from: new Date(Date.now() - 86_400_000).toISOString(), to: new Date(Date.now() + 86_400_000).toISOString() };
const invoice = async () => {
  const { from, to } = period;
  return (await call(admin, "GET", `/v1/agreements/${agreementId}/invoice?from=${from}&to=${to}`)).body;
};

beforeAll(async () => {
  requireBinaries();
  hubDir = tempDir("grey-hub-agr-");
  await initHub(hubDir, ["--org", "org-a"]);
  governanceFile = join(tempDir("grey-gov-"), "governance.yaml");
  // org-b members may submit and read tasks on this hub (the default lets other orgs read cluster health only).
  writeFileSync(governanceFile, "boundaries:\n  same-org: [\"*\"]\n  different-org: [clusters.read, peer.connect, tasks.submit, tasks.read]\n");
  hub = await startHub(hubDir, ["--governance", governanceFile, "--heartbeat-interval", "500ms"]);
  admin = adminCreds(hubDir);
  await Promise.all(([["a1", "org-a"], ["a2", "org-a"], ["b1", "org-b"]] as const).map(async ([cluster, org]) => {
    const dir = tempDir(`grey-agent-${cluster}-`);
    const r = await run(agentBin, ["join", await createToken(hubDir, cluster, org, "eu-west"), "--data-dir", dir]);
    if (r.exitCode !== 0) throw new Error(r.stderr);
    agents[cluster] = { dir, org, daemon: startAgent(dir) };
  }));
  await waitFor("three agents reachable", () => Object.values(agents).every((a) => agentStatus(a.dir)?.hub.reachable) || undefined, 60_000);
  consumer = { ca: admin.ca, cert: readFileSync(join(agents.b1!.dir, "tls", "cert.pem"), "utf8"), key: readFileSync(join(agents.b1!.dir, "tls", "key.pem"), "utf8") };
  const applied = await call(admin, "POST", "/v1/agreements", AGREEMENT, "application/yaml");
  expect(applied.status).toBe(201);
  agreementId = applied.body.agreement.id;
}, 120_000);

afterAll(stopAll);

describe("agreements enforced by the scheduler", () => {
  test("org-b's task lands on org-a's clusters; a second one beyond the limit is held with the reason, then runs", async () => {
    const first = await submit(consumer, { module: b64(slowEchoModule(8)), partitions: [{ input: "a" }, { input: "b" }], placement: { orgs: ["org-a"] }, limits: { timeMs: 120_000 } });
    expect(first.status).toBe(201);
    await waitFor("first task's two subtasks assigned", async () => ((await getTask(first.body.id)).subtasks.every((s: any) => s.state === "assigned") ? true : undefined), 60_000, 100);
    const second = await submit(consumer, { module: b64(echoModule()), partitions: [{ input: "c" }], placement: { orgs: ["org-a"] } });
    expect(second.status).toBe(201);
    const held = await waitFor("second task held", async () => {
      const t = await getTask(second.body.id);
      return t.held ? t : undefined;
    }, 60_000, 100);
    // The first task still holds both cores (its subtasks spin for seconds).
    expect(held.consumer).toBe("org-b");
    expect(held.subtasks[0].state).toBe("pending");
    expect(held.subtasks[0].held).toContain("org-b would use 3 cores of cpu from org-a, above its limit of 2 cores");
    expect(held.held).toContain("above its limit of 2 cores");

    const t1 = await waitTask(first.body.id);
    expect(t1.state).toBe("done");
    expect(t1.result.text).toBe("ab");
    for (const s of t1.subtasks) {
      expect(["a1", "a2"]).toContain(s.resultCluster);
      expect(s.agreement).toBe(agreementId);
      expect(s.provider).toBe("org-a");
    }
    const t2 = await waitTask(second.body.id);
    expect(t2.state).toBe("done");
    expect(t2.result.text).toBe("c");
    expect(t2.held).toBeUndefined();
  }, 240_000);

  test("cross-org work without an agreement is refused with the reason", async () => {
    const r = await submit(admin, { module: b64(echoModule()), partitions: [{ input: "x" }], placement: { orgs: ["org-b"] } });
    expect(r.status).toBe(201);
    const t = await waitTask(r.body.id, 60_000);
    expect(t.state).toBe("failed");
    expect(t.error).toContain("org-a has no agreement with org-b");
    expect(t.subtasks[0].error).toMatch(/^refused: /);
    // same-org work needs none
    const own = await submit(admin, { module: b64(echoModule()), partitions: [{ input: "y" }], placement: { orgs: ["org-a"] } });
    expect((await waitTask(own.body.id, 60_000)).state).toBe("done");
  }, 120_000);
});

describe("metering from the outbox", () => {
  test("the invoice reflects the agents' usage and is unchanged after an agent replays its outbox", async () => {
    const before = await invoice();
    expect(before.records).toBeGreaterThanOrEqual(3); // the three subtasks above
    const cpu = before.lines.find((l: any) => l.resource === "cpu");
    expect(BigInt(cpu.quantity)).toBeGreaterThan(0n);

    // A task on a1 that finishes while the hub is down: its records wait in a1's outbox.
    const a1 = agents.a1!;
    const r = await submit(consumer, { module: b64(slowEchoModule(4)), partitions: [{ input: "z" }], placement: { clusters: ["a1"] }, limits: { timeMs: 120_000 } });
    const id = `${r.body.id}.0`;
    await waitFor("running on a1", () => subtaskState(a1.dir, id) === "running" || undefined, 60_000, 50);
    const listen = hub.info.multiaddrs[0]!.replace(/\/p2p\/.*/, "");
    await hub.stop();
    await waitFor("done on a1, records in its outbox", () => (subtaskState(a1.dir, id) === "done" && (outboxSize(a1.dir) ?? 0) > 0) || undefined, 90_000, 100);
    // Back up a1's store as it is now (records not yet acknowledged), with a1 stopped so the copy is consistent.
    await a1.daemon.stop();
    const backup = tempDir("grey-backup-");
    const files = ["autonomy.db", "autonomy.db-wal", "autonomy.db-shm"];
    for (const f of files) if (existsSync(join(a1.dir, f))) copyFileSync(join(a1.dir, f), join(backup, f));
    a1.daemon = startAgent(a1.dir);

    hub = await startHub(hubDir, ["--governance", governanceFile, "--heartbeat-interval", "500ms", "--listen", listen]);
    const t = await waitTask(r.body.id, 90_000);
    expect(t.state).toBe("done");
    await waitFor("a1's outbox drained", () => outboxSize(a1.dir) === 0 || undefined, 60_000, 200);
    const metered = await invoice();
    expect(metered.records).toBe(before.records + 1);
    const records = (await call(admin, "GET", "/v1/tasks/records")).body.items;

    // Replay: a1 comes back with the store from before the acknowledgement and pushes the same records again.
    await a1.daemon.stop();
    for (const f of files) {
      rmSync(join(a1.dir, f), { force: true });
      if (existsSync(join(backup, f))) copyFileSync(join(backup, f), join(a1.dir, f));
    }
    expect(outboxSize(a1.dir)).toBeGreaterThan(0);
    a1.daemon = startAgent(a1.dir);
    await waitFor("a1's replayed outbox acknowledged", () => outboxSize(a1.dir) === 0 || undefined, 60_000, 200);
    expect(await invoice()).toEqual(metered);
    expect((await call(admin, "GET", "/v1/tasks/records")).body.items).toEqual(records);
  }, 300_000);
});
