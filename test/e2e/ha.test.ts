/**
 * High availability with the compiled hub: three hubs of one federation (same
 * CA) form the federation log's Raft group. An agent joins through one of
 * them; every hub serves the member, with fresh heartbeats (gossip). The leader hub is SIGKILLed; another
 * hub takes over and still serves the member and an agreement applied through
 * the old leader; writes sent to a follower are redirected to the leader (307 + Location).
 * A fourth hub joins the running group (learner, then voter), catches up and serves the
 * members; the operator CLI removes it again.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXAMPLE_YAML } from "../../hub/agreements/testdata.ts";
import { adminCreds, agentBin, api, hubBin, createToken, initHub, requireBinaries, run, startAgent, startHub, stopAll, tempDir, waitFor, type Creds, type Daemon, type HubRun, freePorts } from "./harness.ts";

type Hub = { dir: string; peerId: string; port: number; daemon?: Daemon & { info: HubRun } };
type Consensus = { member: number; role: string; leader: { member: number; api?: string } | null; voters: number[]; hubs: { member: number; api: string }[] };
const hubs: Hub[] = [];
let creds: Creds;
let after: { live: Hub[]; leader: Hub; agreementId: string } | undefined;
let ports: number[] = [];
const addr = (h: Hub) => `/ip4/127.0.0.1/tcp/${h.port}/p2p/${h.peerId}`;

beforeAll(async () => {
  requireBinaries();
  ports = await freePorts(4);
  for (let i = 0; i < 3; i++) {
    const dir = tempDir(`grey-ha-${i}-`);
    const r = await initHub(dir, i === 0 ? ["--org", "acme"] : ["--federation-from", hubs[0]!.dir, "--name", `hub-${i + 1}`]);
    const peerId = /hub peer id\s+(\S+)/.exec(r.stdout)![1]!;
    hubs.push({ dir, peerId, port: ports[i]! });
  }
  creds = adminCreds(hubs[0]!.dir);
  await Promise.all(hubs.map(async (h) => {
    const peers = hubs.filter((o) => o !== h).flatMap((o) => ["--raft-peer", addr(o)]);
    h.daemon = await startHub(h.dir, ["--listen", `/ip4/127.0.0.1/tcp/${h.port}`, "--heartbeat-interval", "500ms", ...peers]);
  }));
});

afterAll(stopAll);

async function consensus(h: Hub): Promise<Consensus | undefined> {
  const r = await api(h.daemon!.info.api, "/v1/consensus", creds);
  return r.status === 200 ? (r.body as Consensus) : undefined;
}

/** Waits until every live hub agrees on one leader whose API address is in the log. */
async function agreedLeader(live: Hub[]): Promise<Hub> {
  return waitFor("one leader known to every hub", async () => {
    const views = await Promise.all(live.map(consensus));
    const l = views[0]?.leader;
    if (!l?.api || !views.every((v) => v?.leader?.member === l.member && v.leader.api === l.api && v.hubs.length === 3)) return undefined;
    return live.find((h) => h.daemon!.info.api === l.api);
  }, 30_000, 200);
}

const agreementOn = async (h: Hub, id: string) => {
  const r = await api(h.daemon!.info.api, `/v1/agreements/${id}`, creds);
  return r.status === 200 ? (r.body as { id: string; version: number; provider: string }) : undefined;
};

const clusterIds = async (h: Hub) => ((await api(h.daemon!.info.api, "/v1/clusters", creds)).body as { items?: { clusterId: string }[] }).items?.map((m) => m.clusterId) ?? [];

test("a member joined through any hub is served by every hub; after the leader is killed another hub serves it and redirects writes", async () => {
  const leader = await agreedLeader(hubs);
  // join through a hub that is NOT the leader, so the write is forwarded
  const via = hubs.find((h) => h !== leader)!;
  const agentDir = tempDir("grey-ha-agent-");
  const token = await createToken(via.dir, "edge-ha", "acme", "eu-west");
  const j = await run(agentBin, ["join", token, "--data-dir", agentDir]);
  expect(j.stderr).toBe("");
  expect(j.exitCode).toBe(0);
  startAgent(agentDir, [], true);
  for (const h of hubs) await waitFor(`member on ${h.dir}`, async () => (await clusterIds(h)).includes("edge-ha"), 15_000);

  // the agent heartbeats to one hub; gossip (LastSeenMap CRDT) makes it fresh on every hub
  const beat = async (h: Hub) => (await api(h.daemon!.info.api, "/v1/clusters/edge-ha", creds)).body as { state: string; lastHeartbeat: string | null };
  for (const h of hubs) await waitFor(`fresh heartbeat of edge-ha on ${h.dir}`, async () => {
    const m = await beat(h);
    return m.state === "healthy" && m.lastHeartbeat !== null && Date.now() - Date.parse(m.lastHeartbeat) < 5_000;
  }, 15_000);

  // an agreement applied on the leader goes through the log: every hub serves it, same version
  const applied = await fetch(leader.daemon!.info.api + "/v1/agreements", {
    method: "POST", body: EXAMPLE_YAML, headers: { "content-type": "application/yaml" },
    tls: { ca: creds.ca, cert: creds.cert, key: creds.key },
  } as RequestInit);
  expect(applied.status).toBe(201);
  const agreement = ((await applied.json()) as { agreement: { id: string; version: number } }).agreement;
  for (const h of hubs) await waitFor(`agreement on ${h.dir}`, async () => (await agreementOn(h, agreement.id))?.version === agreement.version, 15_000);

  // kill -9 the leader: one election later another hub leads and serves the member
  const killedAt = Date.now();
  await leader.daemon!.stop("SIGKILL");
  const live = hubs.filter((h) => h !== leader);
  const next = await agreedLeader(live);
  const failoverMs = Date.now() - killedAt;
  console.log(`ha: leader killed, new leader agreed after ${failoverMs} ms`);
  expect(next).not.toBe(leader);
  for (const h of live) expect(await clusterIds(h)).toContain("edge-ha");
  for (const h of live) expect(await agreementOn(h, agreement.id)).toMatchObject({ id: agreement.id, version: agreement.version, provider: "org-a" });

  // a write sent to the follower is redirected to the leader's API
  const follower = live.find((h) => h !== next)!;
  const res = await fetch(follower.daemon!.info.api + "/v1/agreements", {
    method: "POST", redirect: "manual", body: "{}", headers: { "content-type": "application/json" },
    tls: { ca: creds.ca, cert: creds.cert, key: creds.key },
  } as RequestInit);
  expect(res.status).toBe(307);
  expect(res.headers.get("location")).toBe(next.daemon!.info.api + "/v1/agreements");
  // and the leader accepts writes through the log (a join forwarded from the follower)
  const token2 = await createToken(follower.dir, "edge-ha-2", "acme", "us-east");
  const j2 = await run(agentBin, ["join", token2, "--data-dir", tempDir("grey-ha-agent-")]);
  expect(j2.exitCode).toBe(0);
  for (const h of live) await waitFor(`second member on ${h.dir}`, async () => (await clusterIds(h)).includes("edge-ha-2"), 15_000);
  after = { live, leader: next, agreementId: agreement.id };
}, 90_000);

test("a fourth hub is added to the running group (learner, then voter), catches up and serves the members", async () => {
  if (!after) throw new Error("needs the previous test");
  const dir = tempDir("grey-ha-3-");
  const r = await initHub(dir, ["--federation-from", hubs[0]!.dir, "--name", "hub-4"]);
  const h4: Hub = { dir, peerId: /hub peer id\s+(\S+)/.exec(r.stdout)![1]!, port: ports[3]! };
  const peers = hubs.flatMap((o) => ["--raft-peer", addr(o)]);
  h4.daemon = await startHub(dir, ["--listen", `/ip4/127.0.0.1/tcp/${h4.port}`, "--heartbeat-interval", "500ms", "--raft-join", ...peers]);

  // not a member yet: it founded nothing and has no leader
  expect((await consensus(h4))?.voters).toEqual([]);
  const added = await api(after.leader.daemon!.info.api, "/v1/consensus/peers", creds, { multiaddr: addr(h4) });
  expect(added.status).toBe(201);
  const member = (added.body as { member: number; voters: number[] }).member;
  expect((added.body as { voters: number[] }).voters).toContain(member);

  await waitFor("the new hub serves both members and the agreement", async () => {
    const ids = await clusterIds(h4);
    return ids.includes("edge-ha") && ids.includes("edge-ha-2") && (await agreementOn(h4, after!.agreementId)) !== undefined;
  }, 30_000);
  const view = await waitFor("the new hub knows the leader", async () => {
    const v = await consensus(h4);
    return v?.leader?.api && v.voters.includes(member) ? v : undefined;
  }, 15_000);
  expect(view.leader?.api).toBe(after.leader.daemon!.info.api);

  // the others know its address through the log: a write from the new hub is forwarded to the leader
  const token = await createToken(dir, "edge-ha-4", "acme", "eu-west");
  const j = await run(agentBin, ["join", token, "--data-dir", tempDir("grey-ha-agent-")]);
  expect(j.exitCode).toBe(0);
  for (const h of [...after.live, h4]) await waitFor(`member edge-ha-4 on ${h.dir}`, async () => (await clusterIds(h)).includes("edge-ha-4"), 15_000);

  // the operator CLI, pointed at a follower (it redirects to the leader), removes the hub again
  const follower = after.live.find((h) => h !== after!.leader)!;
  const op = tempDir("grey-ha-operator-");
  cpSync(join(hubs[0]!.dir, "admin"), join(op, "admin"), { recursive: true });
  writeFileSync(join(op, "run.json"), JSON.stringify({ api: follower.daemon!.info.api }));
  const rm = await run(hubBin, ["consensus", "remove-peer", h4.peerId, "--data-dir", op]);
  expect(rm.stderr).toBe("");
  expect(rm.exitCode).toBe(0);
  expect((JSON.parse(rm.stdout) as { member: number; voters: number[] }).voters).not.toContain(member);
  const status = await run(hubBin, ["consensus", "status", "--data-dir", op]);
  expect((JSON.parse(status.stdout) as { voters: number[]; learners: number[] }).voters).not.toContain(member);
}, 90_000);
