/**
 * Task state through the federation log, with the compiled binaries: three hubs
 * in one consensus group and three agents that joined through the leader. A
 * task is submitted to the leader, which is SIGKILLed while the subtasks run.
 * Another hub becomes leader and resumes scheduling from the replicated state;
 * the agents move to another hub of the federation (DHT) and push their results
 * there; the task completes, every surviving hub serves the same task (each
 * subtask's history) and every result is counted once.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import {
  adminCreds, agentBin, agentStatus, api, createToken, freePorts, initHub, requireBinaries, run, startAgent, startHub, stopAll, tempDir, waitFor,
  type Creds, type Daemon, type HubRun,
} from "./harness.ts";
import { b64, slowEchoModule } from "./task-modules.ts";

type Hub = { dir: string; peerId: string; port: number; daemon?: Daemon & { info: HubRun } };
type Consensus = { leader: { member: number; api?: string } | null; hubs: { member: number; api: string }[] };
const hubs: Hub[] = [];
const agents: { dir: string; cluster: string; daemon?: Daemon }[] = [];
let creds: Creds;
const addr = (h: Hub) => `/ip4/127.0.0.1/tcp/${h.port}/p2p/${h.peerId}`;
const get = async (h: Hub, path: string) => (await api(h.daemon!.info.api, path, creds)).body as any;

beforeAll(async () => {
  requireBinaries();
  const ports = await freePorts(3);
  for (let i = 0; i < 3; i++) {
    const dir = tempDir(`grey-hat-${i}-`);
    const r = await initHub(dir, i === 0 ? ["--org", "acme"] : ["--federation-from", hubs[0]!.dir, "--name", `hub-${i + 1}`]);
    hubs.push({ dir, peerId: /hub peer id\s+(\S+)/.exec(r.stdout)![1]!, port: ports[i]! });
  }
  creds = adminCreds(hubs[0]!.dir);
  await Promise.all(hubs.map(async (h) => {
    const peers = hubs.filter((o) => o !== h).flatMap((o) => ["--raft-peer", addr(o)]);
    h.daemon = await startHub(h.dir, ["--listen", `/ip4/127.0.0.1/tcp/${h.port}`, "--heartbeat-interval", "500ms", ...peers]);
  }));
}, 60_000);

afterAll(stopAll);

/** Every live hub agrees on one leader whose API address is in the log. */
async function agreedLeader(live: Hub[]): Promise<Hub> {
  return waitFor("one leader known to every hub", async () => {
    const views = await Promise.all(live.map(async (h) => (await api(h.daemon!.info.api, "/v1/consensus", creds)).body as Consensus));
    const l = views[0]?.leader;
    if (!l?.api || !views.every((v) => v?.leader?.member === l.member && v.leader.api === l.api && v.hubs?.length === 3)) return undefined;
    return live.find((h) => h.daemon!.info.api === l.api);
  }, 30_000, 200);
}

/** A subtask's state in an agent's own store (read-only beside the running agent). */
function agentSubtaskState(dir: string, id: string): string | undefined {
  const db = new Database(join(dir, "autonomy.db"), { readonly: true });
  try {
    return db.query<{ state: string }, [string]>("SELECT state FROM subtasks WHERE id = ?").get(id)?.state;
  } catch {
    return undefined;
  } finally {
    db.close();
  }
}

test("the leader hub is killed mid-task: another hub resumes it from the federation log and every hub serves it done, results counted once", async () => {
  const leader = await agreedLeader(hubs);
  // the agents join through the leader (their own hub dies with it); their token lists every hub to bootstrap from
  await Promise.all(([["edge-a", "eu-west"], ["edge-b", "us-east"], ["edge-c", "ap-south"]] as const).map(async ([cluster, region], i) => {
    const dir = tempDir("grey-hat-agent-");
    const token = await createToken(leader.dir, cluster, "acme", region, hubs.flatMap((h) => ["--bootstrap", addr(h)]));
    const j = await run(agentBin, ["join", token, "--data-dir", dir]);
    if (j.exitCode !== 0) throw new Error(j.stderr);
    agents[i] = { dir, cluster, daemon: startAgent(dir, [], true) };
  }));
  for (const h of hubs) {
    await waitFor(`three healthy clusters on ${h.dir}`, async () => {
      const items = ((await get(h, "/v1/clusters")).items ?? []) as { clusterId: string; state: string }[];
      return agents.every((a) => items.some((m) => m.clusterId === a.cluster && m.state === "healthy")) || undefined;
    }, 30_000);
  }

  // a write to a follower goes to the leader
  const follower = hubs.find((h) => h !== leader)!;
  const redirected = await fetch(follower.daemon!.info.api + "/v1/tasks", {
    method: "POST", redirect: "manual", body: "{}", headers: { "content-type": "application/json" }, tls: { ca: creds.ca, cert: creds.cert, key: creds.key },
  } as RequestInit);
  expect(redirected.status).toBe(307);
  expect(redirected.headers.get("location")).toBe(leader.daemon!.info.api + "/v1/tasks");

  const inputs = ["a", "b", "c", "d", "e", "f"];
  const sub = await api(leader.daemon!.info.api, "/v1/tasks", creds, { name: "ha", module: b64(slowEchoModule(4)), partitions: inputs.map((input) => ({ input })), limits: { timeMs: 20_000 } });
  expect(sub.status).toBe(201);
  const id = (sub.body as { id: string }).id;
  // every hub holds the submitted task (replicated), before anything ran
  for (const h of hubs) await waitFor(`task on ${h.dir}`, async () => (await api(h.daemon!.info.api, `/v1/tasks/${id}`, creds)).status === 200 || undefined, 15_000);

  // kill -9 the leader once an agent runs one of its subtasks (mid-task)
  await waitFor("a subtask running on an agent", async () => {
    const t = await get(leader, `/v1/tasks/${id}`);
    return t.subtasks?.some((s: any) => s.cluster && agentSubtaskState(agents.find((a) => a.cluster === s.cluster)!.dir, s.id) === "running") || undefined;
  }, 30_000, 50);
  const before = await get(leader, `/v1/tasks/${id}`);
  expect(before.state).toBe("running");
  const killedAt = Date.now();
  await leader.daemon!.stop("SIGKILL");
  const live = hubs.filter((h) => h !== leader);
  const next = await agreedLeader(live);
  expect(next).not.toBe(leader);

  const done = await waitFor(`task ${id} finished on a surviving hub`, async () => {
    const t = await get(live[0]!, `/v1/tasks/${id}`);
    return t.state !== "running" ? t : undefined;
  }, 45_000, 200);
  console.log(`ha-tasks: leader killed with ${before.progress?.done ?? 0}/${inputs.length} subtasks done; task done on the new leader's side after ${Date.now() - killedAt} ms`);
  expect(done.state).toBe("done");
  expect(done.result.text).toBe(inputs.join(""));
  for (const [i, s] of (done.subtasks as any[]).entries()) {
    expect(s.state).toBe("done");
    expect(s.result.text).toBe(inputs[i]);
    expect(s.clusters.length).toBeGreaterThanOrEqual(1);
    expect(s.clusters).toContain(s.resultCluster);
  }
  // both surviving hubs serve the same task (same rows) and the same outbox receipts; list views too
  await waitFor("the other hub caught up", async () => (await get(live[1]!, `/v1/tasks/${id}`)).state === "done" || undefined, 15_000);
  expect(await get(live[1]!, `/v1/tasks/${id}`)).toEqual(done);
  expect(((await get(live[1]!, "/v1/tasks")).items as { id: string }[]).map((t) => t.id)).toContain(id);
  // results counted exactly once: every agent's acknowledged results, once per seq, the same on both hubs
  await waitFor("agents' outboxes drained", () => agents.every((a) => agentStatus(a.dir)?.hub.reachable) || undefined, 30_000);
  const records = await Promise.all(live.map(async (h) => (await get(h, "/v1/tasks/records")).items as { peerId: string; kind: string; count: number; highWater: number }[]));
  expect(records[1]).toEqual(records[0]!);
  const results = records[0]!.filter((r) => r.kind === "result").reduce((n, r) => n + r.count, 0);
  // each result record (one per agent seq) is either the subtask's one result or a counted duplicate
  const duplicates = (done.subtasks as any[]).reduce((n, s) => n + (s.duplicateResults ?? 0), 0);
  expect(results).toBe(inputs.length + duplicates);
  console.log(`ha-tasks: ${results} result records, ${duplicates} duplicates not counted`);
}, 120_000);
