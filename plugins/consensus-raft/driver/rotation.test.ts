/** Rotating federation leader and hierarchical topologies, scripted over the in-memory transport. */
import { afterEach, expect, test } from "bun:test";
import { KvStateMachine } from "./kv-state-machine.ts";
import { nextLeader, rotateLeadership } from "./rotation.ts";
import { topology, type Site } from "./hierarchy.ts";
import { TestGroup } from "./testing.ts";

let g: TestGroup | undefined;
afterEach(async () => {
  await g?.stop();
  g = undefined;
});

test("rotation visits every voter in order; proposals keep succeeding with at most one election of unavailability each", async () => {
  g = await new TestGroup([1, 2, 3], { durable: false }).start();
  await g.leader();
  const rotations: [number, number][] = [];
  const stops = [...g.members.values()].map((m) => rotateLeadership(m.driver, { everyMs: 150, onRotated: (a, b) => rotations.push([a, b]) }));
  // a client that keeps writing to whoever leads, measuring the longest gap between successes
  let acked = 0;
  let worstGapMs = 0;
  let last = Date.now();
  const deadline = Date.now() + 1200;
  while (Date.now() < deadline) {
    const l = [...g.members.values()].find((m) => m.driver.leader()?.self);
    const ok = l ? await l.driver.propose(KvStateMachine.put(`r${acked}`, "v")).then(() => true, () => false) : false;
    if (ok) {
      acked++;
      worstGapMs = Math.max(worstGapMs, Date.now() - last);
      last = Date.now();
    } else await Bun.sleep(2);
  }
  for (const s of stops) s();
  expect(rotations.length).toBeGreaterThanOrEqual(3);
  for (const [from, to] of rotations) expect(to).toBe(nextLeader([1, 2, 3], from)!);
  // election timeout is 10 ticks × 10 ms: a hand-over never costs more than one election
  expect(worstGapMs).toBeLessThan(10 * 10 * 2);
  expect(acked).toBeGreaterThan(50);
  const keys = [...g.members.values()].map((m) => m.sm.keys().length);
  await g.until("all applied", () => [...g!.members.values()].every((m) => m.sm.keys().length === acked));
  console.log(`rotation: ${rotations.length} hand-overs, ${acked} writes, worst gap ${worstGapMs} ms (keys ${keys})`);
});

test("topologies are configurations of the same groups", () => {
  const sites: Site[] = [];
  let id = 1;
  for (const region of ["eu", "us"]) for (const cluster of ["a", "b", "c"]) for (let i = 0; i < 3; i++) sites.push({ id: id++, region, cluster });
  const h = topology("hierarchical", sites);
  expect(h.filter((g) => g.scope === "cluster")).toHaveLength(6);
  expect(h.filter((g) => g.scope === "region").map((g) => g.members.length)).toEqual([3, 3]);
  expect(h.find((g) => g.scope === "global")?.children).toEqual(["region:eu", "region:us"]);
  expect(topology("full-mesh", sites)[0]?.members).toHaveLength(18);
  expect(topology("hub-and-spoke", sites, [1, 10])[0]?.members).toEqual([1, 10]);
});

test("hierarchy: cluster groups commit locally, their leaders' seats form the region group, region seats the global group", async () => {
  // 3 clusters of 3; each cluster leader hosts its seat in the region group (3 seats); the region leader reports to global.
  const clusters = await Promise.all([0, 1, 2].map((c) => new TestGroup([c * 10 + 1, c * 10 + 2, c * 10 + 3], { durable: false }).start()));
  const region = await new TestGroup([101, 102, 103], { durable: false }).start();
  try {
    const leaders = await Promise.all(clusters.map((c) => c.leader()));
    for (const [i, l] of leaders.entries()) await l.driver.propose(KvStateMachine.put(`cluster-${i}`, `leader ${l.id}`));
    // each cluster leader writes its cluster's summary through its region seat
    const rl = await region.leader();
    for (const [i, l] of leaders.entries()) await rl.driver.propose(KvStateMachine.put(`summary-${i}`, `${l.id}`));
    await region.until("region replicated", () => [...region.members.values()].every((m) => m.sm.keys().length === 3));
    // losing a cluster leader moves its seat to the new cluster leader; the region group is unaffected
    const c0 = clusters[0]!;
    await c0.stopMember(leaders[0]!.id);
    const l0 = await c0.leader();
    await rl.driver.propose(KvStateMachine.put("summary-0", `${l0.id}`));
    expect(rl.sm.get("summary-0")).toBe(String(l0.id));
  } finally {
    for (const c of clusters) await c.stop();
    await region.stop();
  }
});
