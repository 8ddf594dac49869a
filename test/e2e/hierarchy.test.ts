/**
 * Hierarchical consensus with the compiled hub: three regions — eu (3 hubs),
 * us and ap (1 hub each) — each run a region group, and the global group's
 * voters are the three region leaders (the other eu hubs follow it as
 * learners). An agreement written in the global group is served by every hub.
 * The eu leader is SIGKILLed: eu elects another leader, which claims the
 * global seat; the global group adds it (learner, then voter) and removes the
 * killed hub. A second agreement is then served by every live hub.
 *
 * Three regions, not two: a global group of two voters cannot replace a dead
 * seat holder (the conf change itself needs both), and a region of two hubs
 * cannot elect after losing one.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXAMPLE_YAML } from "../../hub/agreements/testdata.ts";
import { adminCreds, api, hubBin, initHub, run, requireBinaries, startHub, stopAll, tempDir, waitFor, type Creds, type Daemon, type HubRun, freePorts } from "./harness.ts";

type Hub = { dir: string; region: string; peerId: string; port: number; daemon?: Daemon & { info: HubRun } };
type Group = { group: string; member: number; role: string; leader: { member: number; api?: string } | null; voters: number[]; learners: number[] };
type View = Group & { groups: Group[] };
const hubs: Hub[] = [];
let creds: Creds;
const addr = (h: Hub) => `/ip4/127.0.0.1/tcp/${h.port}/p2p/${h.peerId}`;
const regions = ["eu", "eu", "eu", "us", "ap"];

beforeAll(async () => {
  requireBinaries();
  const ports = await freePorts(8);
  for (const [i, region] of regions.entries()) {
    const dir = tempDir(`grey-hier-${region}-${i}-`);
    const r = await initHub(dir, i === 0 ? ["--org", "acme"] : ["--federation-from", hubs[0]!.dir, "--name", `hub-${i + 1}`]);
    hubs.push({ dir, region, peerId: /hub peer id\s+(\S+)/.exec(r.stdout)![1]!, port: ports[i]! });
  }
  creds = adminCreds(hubs[0]!.dir);
  const founders = [hubs[0]!, hubs[3]!, hubs[4]!].map((h) => h.peerId); // one hub per region
  for (const h of hubs) {
    const file = join(h.dir, "hub.json");
    const cfg = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    cfg.consensus = {
      level: "global", region: h.region, tickMs: 50, electionTicks: 10,
      peers: hubs.filter((o) => o !== h && o.region === h.region).map(addr),
      global: { founders, peers: hubs.filter((o) => o !== h).map(addr) },
    };
    writeFileSync(file, JSON.stringify(cfg, null, 2));
  }
  await Promise.all(hubs.map(async (h) => {
    h.daemon = await startHub(h.dir, ["--listen", `/ip4/127.0.0.1/tcp/${h.port}`, "--heartbeat-interval", "500ms"]);
  }));
});

afterAll(stopAll);

const view = async (h: Hub) => {
  const r = await api(h.daemon!.info.api, "/v1/consensus", creds).catch(() => undefined);
  return r?.status === 200 ? (r.body as View) : undefined;
};
const group = (v: View | undefined, name: string) => v?.groups.find((g) => g.group === name);
const memberOf = (live: Hub[], v: View, id: number) => live.find((h) => h.daemon && group(v, "global")?.member === id);

/** Waits until the global leader's view has exactly the live region leaders as voters and the other live hubs as learners. */
async function seatsFollowLeaders(live: Hub[]): Promise<{ euLeader: Hub; globalLeader: Hub; voters: number[] }> {
  let seen = "";
  return waitFor("global voters = region leaders", async () => {
    const views = new Map<Hub, View>();
    for (const h of live) {
      const v = await view(h);
      if (!v) return undefined;
      views.set(h, v);
    }
    seen = JSON.stringify([...views.values()].map((v) => v.groups.map((g) => [g.group, g.member, g.role, g.leader?.member, g.voters, g.learners])));
    const leaders = new Map<string, number>();
    for (const [h, v] of views) if (group(v, `region:${h.region}`)?.role === "leader") leaders.set(h.region, v.member);
    if (leaders.size !== 3) return undefined;
    const gl = [...views].find(([, v]) => group(v, "global")?.role === "leader");
    if (!gl) return undefined;
    const g = group(gl[1], "global")!;
    const want = [...leaders.values()].sort((a, b) => a - b);
    const observers = [...views.values()].map((v) => v.member).filter((m) => !want.includes(m));
    if (g.voters.join() !== want.join() || !observers.every((m) => g.learners.includes(m))) return undefined;
    const euLeader = [...views].find(([h, v]) => h.region === "eu" && v.member === leaders.get("eu"))![0];
    return { euLeader, globalLeader: gl[0], voters: g.voters };
  }, 30_000, 200).catch((err: Error) => {
    throw new Error(`${err.message}; last views: ${seen}; logs: ${live.map((h) => h.daemon!.log().slice(-1500)).join("\n---\n")}`);
  });
}

async function applyAgreement(live: Hub[], yaml: string): Promise<{ id: string; version: number }> {
  // any hub: a follower of the global group redirects the write to the global leader (307)
  const res = await fetch(live[live.length - 1]!.daemon!.info.api + "/v1/agreements", {
    method: "POST", body: yaml, headers: { "content-type": "application/yaml" }, redirect: "manual",
    tls: { ca: creds.ca, cert: creds.cert, key: creds.key },
  } as RequestInit);
  const target = res.status === 307 ? res.headers.get("location")! : undefined;
  const final = target
    ? await fetch(target, { method: "POST", body: yaml, headers: { "content-type": "application/yaml" }, tls: { ca: creds.ca, cert: creds.cert, key: creds.key } } as RequestInit)
    : res;
  expect(final.status).toBe(201);
  const a = ((await final.json()) as { agreement: { id: string; version: number } }).agreement;
  for (const h of live) {
    await waitFor(`agreement ${a.id} on ${h.region} hub ${h.dir}`, async () => {
      const r = await api(h.daemon!.info.api, `/v1/agreements/${a.id}`, creds);
      return r.status === 200 && (r.body as { version: number }).version === a.version;
    }, 15_000);
  }
  return a;
}

test("the global group is formed by the region leaders; a killed region leader's seat moves to its successor; global writes reach every hub", async () => {
  const t0 = Date.now();
  const first = await seatsFollowLeaders(hubs);
  console.log(`hierarchy: seats settled after ${Date.now() - t0} ms (voters ${first.voters.join(", ")})`);
  await applyAgreement(hubs, EXAMPLE_YAML);
  // the operator sees every group of a hub
  const st = await run(hubBin, ["consensus", "status", "--data-dir", hubs[1]!.dir]);
  expect(st.exitCode).toBe(0);
  const status = JSON.parse(st.stdout) as View;
  expect(status.groups.map((g) => g.group)).toEqual(["region:eu", "global"]);
  expect(group(status, "global")!.voters).toEqual(first.voters);

  const killedAt = Date.now();
  await first.euLeader.daemon!.stop("SIGKILL");
  const live = hubs.filter((h) => h !== first.euLeader);
  const second = await seatsFollowLeaders(live);
  const killedId = (await Promise.resolve(first.voters)).find((v) => !second.voters.includes(v));
  console.log(`hierarchy: eu leader killed, global voters ${second.voters.join(", ")} after ${Date.now() - killedAt} ms`);
  expect(second.euLeader).not.toBe(first.euLeader);
  expect(killedId).toBeDefined(); // the killed hub's seat was removed
  const v = (await view(second.globalLeader))!;
  expect(group(v, "global")!.voters).toHaveLength(3);
  expect(memberOf(live, v, killedId!)).toBeUndefined();
  await applyAgreement(live, EXAMPLE_YAML.replace("consumer: org-b", "consumer: org-c"));
}, 90_000);
