/**
 * A hub added late catches up from a federation log snapshot, with the compiled binaries: three hubs
 * compact their log every few entries (hub.json consensus.snapshotEntries), so by the time a fourth hub
 * joins, the entries that created the agreement and the tasks are gone from every log. The new hub
 * installs the leader's snapshot and then serves the tasks (GET /v1/tasks/:id, same rows as the leader)
 * and the agreement at its current version.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXAMPLE_YAML } from "../../hub/agreements/testdata.ts";
import { adminCreds, api, freePorts, initHub, requireBinaries, startHub, stopAll, tempDir, waitFor, type Creds, type Daemon, type HubRun } from "./harness.ts";
import { b64, echoModule } from "./task-modules.ts";

type Hub = { dir: string; peerId: string; port: number; daemon?: Daemon & { info: HubRun } };
type Consensus = { leader: { member: number; api?: string } | null; voters: number[]; hubs: { member: number; api: string }[] };
const hubs: Hub[] = [];
let creds: Creds;
let ports: number[] = [];
const addr = (h: Hub) => `/ip4/127.0.0.1/tcp/${h.port}/p2p/${h.peerId}`;
const snapshotEntries = 4;

/** hub.json: compact the federation log every few entries (peers come from --raft-peer). */
function compactOften(dir: string): void {
  const p = join(dir, "hub.json");
  const cfg = JSON.parse(readFileSync(p, "utf8")) as Record<string, unknown>;
  writeFileSync(p, JSON.stringify({ ...cfg, consensus: { peers: [], snapshotEntries } }, null, 2));
}

/** The hub's Raft storage: the index of its snapshot and its first log entry (read-only beside the running hub). */
function raftStorage(dir: string): { snapshot: number; firstEntry: number | undefined } {
  const db = new Database(join(dir, "raft.db"), { readonly: true });
  try {
    const snapshot = db.query<{ idx: number }, []>("SELECT idx FROM snapshot").get()?.idx ?? 0;
    const firstEntry = db.query<{ idx: number | null }, []>("SELECT min(idx) AS idx FROM entries").get()?.idx ?? undefined;
    return { snapshot, firstEntry };
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  requireBinaries();
  ports = await freePorts(4);
  for (let i = 0; i < 3; i++) {
    const dir = tempDir(`grey-snap-${i}-`);
    const r = await initHub(dir, i === 0 ? ["--org", "acme"] : ["--federation-from", hubs[0]!.dir, "--name", `hub-${i + 1}`]);
    compactOften(dir);
    hubs.push({ dir, peerId: /hub peer id\s+(\S+)/.exec(r.stdout)![1]!, port: ports[i]! });
  }
  creds = adminCreds(hubs[0]!.dir);
  await Promise.all(hubs.map(async (h) => {
    const peers = hubs.filter((o) => o !== h).flatMap((o) => ["--raft-peer", addr(o)]);
    h.daemon = await startHub(h.dir, ["--listen", `/ip4/127.0.0.1/tcp/${h.port}`, "--heartbeat-interval", "500ms", ...peers]);
  }));
}, 60_000);

afterAll(stopAll);

const consensus = async (h: Hub) => {
  const r = await api(h.daemon!.info.api, "/v1/consensus", creds);
  return r.status === 200 ? (r.body as Consensus) : undefined;
};

async function agreedLeader(live: Hub[]): Promise<Hub> {
  return waitFor("one leader known to every hub", async () => {
    const views = await Promise.all(live.map(consensus));
    const l = views[0]?.leader;
    if (!l?.api || !views.every((v) => v?.leader?.member === l.member && v.leader.api === l.api && v.hubs.length === live.length)) return undefined;
    return live.find((h) => h.daemon!.info.api === l.api);
  }, 30_000, 200);
}

async function applyAgreement(h: Hub, yaml: string): Promise<{ id: string; version: number }> {
  const res = await fetch(h.daemon!.info.api + "/v1/agreements", {
    method: "POST", body: yaml, headers: { "content-type": "application/yaml" }, tls: { ca: creds.ca, cert: creds.cert, key: creds.key },
  } as RequestInit);
  expect(res.status).toBeLessThan(300);
  return ((await res.json()) as { agreement: { id: string; version: number } }).agreement;
}

test("a hub added after the log was compacted installs a snapshot and serves the tasks and agreements created before it joined", async () => {
  const leader = await agreedLeader(hubs);
  // an agreement at version 2 and three tasks (no agents: their subtasks wait, held)
  await applyAgreement(leader, EXAMPLE_YAML);
  const agreement = await applyAgreement(leader, EXAMPLE_YAML.replace("1000 cores", "900 cores"));
  expect(agreement.version).toBe(2);
  const ids: string[] = [];
  for (const input of ["a", "b", "c"]) {
    const r = await api(leader.daemon!.info.api, "/v1/tasks", creds, { name: `snap-${input}`, module: b64(echoModule()), partitions: [{ input }, { input: input + input }] });
    expect(r.status).toBe(201);
    ids.push((r.body as { id: string }).id);
  }
  // every founder compacted its log past the entries that created them
  for (const h of hubs) await waitFor(`log compacted on ${h.dir}`, () => raftStorage(h.dir).snapshot > snapshotEntries || undefined, 15_000);

  const dir = tempDir("grey-snap-3-");
  const r = await initHub(dir, ["--federation-from", hubs[0]!.dir, "--name", "hub-4"]);
  compactOften(dir);
  const h4: Hub = { dir, peerId: /hub peer id\s+(\S+)/.exec(r.stdout)![1]!, port: ports[3]! };
  h4.daemon = await startHub(dir, ["--listen", `/ip4/127.0.0.1/tcp/${h4.port}`, "--heartbeat-interval", "500ms", "--raft-join", ...hubs.flatMap((o) => ["--raft-peer", addr(o)])]);
  const added = await api(leader.daemon!.info.api, "/v1/consensus/peers", creds, { multiaddr: addr(h4) });
  expect(added.status).toBe(201);

  // it caught up through a snapshot: its storage starts at a snapshot, not at entry 1
  const storage = await waitFor("the new hub installed a snapshot", () => {
    const s = raftStorage(dir);
    return s.snapshot > 0 ? s : undefined;
  }, 30_000);
  expect(storage.firstEntry === undefined || storage.firstEntry > 1).toBe(true);

  // and serves what was created before it joined, as the leader does
  for (const id of ids) {
    const mine = await waitFor(`task ${id} on the new hub`, async () => {
      const t = await api(h4.daemon!.info.api, `/v1/tasks/${id}`, creds);
      return t.status === 200 ? t.body : undefined;
    }, 30_000);
    const theirs = (await api(leader.daemon!.info.api, `/v1/tasks/${id}`, creds)).body;
    expect(mine).toEqual(theirs);
  }
  const listed = ((await api(h4.daemon!.info.api, "/v1/tasks", creds)).body as { items: { id: string }[] }).items.map((t) => t.id);
  for (const id of ids) expect(listed).toContain(id);
  const served = await api(h4.daemon!.info.api, `/v1/agreements/${agreement.id}`, creds);
  expect(served.status).toBe(200);
  expect(served.body).toMatchObject({ id: agreement.id, version: 2, provider: "org-a" });
  expect(served.body).toEqual((await api(leader.daemon!.info.api, `/v1/agreements/${agreement.id}`, creds)).body);
}, 120_000);
