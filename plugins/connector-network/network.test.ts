import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { applyPlan, type CloudNetworkClient } from "./apply.ts";
import { formatAddress, overlaps, parseCidr } from "./cidr.ts";
import { planPeering, type NetworkSpec, type PlannedRoute } from "./plan.ts";

const seed: NetworkSpec[] = [
  { id: "aws:vpc-a", platform: "aws", cidrs: ["10.0.0.0/16"], routeTables: ["rtb-a1", "rtb-a2"] },
  { id: "gcp:net-b", platform: "gcp", cidrs: ["10.1.0.0/16"], routeTables: ["net-b"] },
  { id: "azure:vnet-c", platform: "azure", cidrs: ["10.2.0.0/16"], routeTables: ["rt-c"] },
];

/** In-memory cloud; `failAt` makes the n-th mutating call throw. */
function fakeCloud(failAt = Infinity) {
  const links = new Set<string>();
  const routes = new Map<string, Set<string>>();
  let calls = 0;
  const mutate = () => {
    if (++calls === failAt) throw new Error("cloud API: throttled");
  };
  const client: CloudNetworkClient = {
    async listLinks() { return [...links]; },
    async createLink(l) { mutate(); links.add(l.id); },
    async deleteLink(id) { links.delete(id); },
    async listRoutes(n, t) { return [...(routes.get(`${n}|${t}`) ?? [])].map((s) => ({ destination: s.split("|")[0]!, via: s.split("|")[1]! })); },
    async createRoute(r: PlannedRoute) { mutate(); const k = `${r.network}|${r.routeTable}`; routes.set(k, (routes.get(k) ?? new Set()).add(`${r.destination}|${r.via}`)); },
    async deleteRoute(r: PlannedRoute) { routes.get(`${r.network}|${r.routeTable}`)?.delete(`${r.destination}|${r.via}`); },
  };
  const snapshot = () => JSON.stringify({ links: [...links].sort(), routes: [...routes].map(([k, v]) => [k, [...v].sort()] as const).filter(([, v]) => v.length > 0).sort() });
  return { client, snapshot };
}

describe("CIDR", () => {
  test("canonical form, IPv6, garbage refused", () => {
    expect(parseCidr("10.1.2.3/16").text).toBe("10.1.0.0/16");
    expect(parseCidr("2001:db8::1/32").text).toBe("2001:db8:0:0:0:0:0:0/32");
    expect(overlaps(parseCidr("2001:db8::/32"), parseCidr("2001:db8:1::/48"))).toBe(true);
    expect(overlaps(parseCidr("2001:db8::/32"), parseCidr("10.0.0.0/8"))).toBe(false);
    for (const bad of ["10.0.0.0", "10.0.0.256/8", "10.0.0.0/33", "::1::2/64", "fe80::/129", "x/1"]) expect(() => parseCidr(bad)).toThrow();
  });

  test("property: overlap matches address-set intersection (small IPv4 prefixes)", () => {
    const block = fc.record({ a: fc.integer({ min: 0, max: 255 }), p: fc.integer({ min: 24, max: 32 }) }).map(({ a, p }) => `10.0.0.${a}/${p}`);
    fc.assert(fc.property(block, block, (x, y) => {
      const [cx, cy] = [parseCidr(x), parseCidr(y)];
      const set = (c: typeof cx) => new Set(Array.from({ length: Number(c.last - c.first) + 1 }, (_, i) => c.first + BigInt(i)));
      const sx = set(cx);
      const naive = [...set(cy)].some((v) => sx.has(v));
      expect(overlaps(cx, cy)).toBe(naive);
      expect(overlaps(cy, cx)).toBe(naive);
    }), { numRuns: 300 });
  });

  test("property: parse(format(x)) is the identity on canonical blocks", () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.integer({ min: 0, max: 128 }), (v, p) => {
      const c = parseCidr(`${formatAddress(6, v)}/${p}`);
      expect(parseCidr(c.text)).toEqual(c);
      expect(c.first <= v && v <= c.last).toBe(true);
    }));
  });
});

describe("peering plan", () => {
  test("the seed's three networks: full mesh, VPN across platforms, every route table programmed", () => {
    const plan = planPeering({ networks: seed, links: "full-mesh" });
    expect(plan.problems).toEqual([]);
    expect(plan.links.map((l) => `${l.id}:${l.kind}`)).toEqual([
      "aws:vpc-a<->azure:vnet-c:vpn", "aws:vpc-a<->gcp:net-b:vpn", "azure:vnet-c<->gcp:net-b:vpn",
    ]);
    // vpc-a: 2 tables x 2 peers; net-b and vnet-c: 1 table x 2 peers
    expect(plan.routes).toHaveLength(8);
    expect(plan.routes.filter((r) => r.routeTable === "rtb-a2").map((r) => r.destination)).toEqual(["10.1.0.0/16", "10.2.0.0/16"]);
    const same = planPeering({ networks: [seed[0]!, { ...seed[1]!, platform: "aws" }], links: [["aws:vpc-a", "gcp:net-b"]] });
    expect(same.links[0]!.kind).toBe("peering");
  });

  test("overlaps are reported, all at once, with their paths", () => {
    const plan = planPeering({
      networks: [...seed, { id: "onprem:dc1", platform: "onprem", cidrs: ["10.1.128.0/17", "10.9.0.0/16", "10.9.1.0/24"], routeTables: ["core"] }],
      links: "full-mesh",
    });
    const msgs = plan.problems.map((p) => `${p.path}: ${p.message}`).join("\n");
    expect(msgs).toMatch(/networks\.3\.cidrs: 10\.9\.0\.0\/16 overlaps 10\.9\.1\.0\/24/);
    expect(msgs).toMatch(/gcp:net-b 10\.1\.0\.0\/16 overlaps onprem:dc1 10\.1\.128\.0\/17/);
    expect(msgs).toMatch(/aws:vpc-a would route 10\.1\.0\.0\/16 to gcp:net-b and 10\.1\.128\.0\/17 to onprem:dc1: ambiguous/);
    expect(planPeering({ networks: seed, links: [["aws:vpc-a", "nowhere"]] }).problems[0]!.message).toMatch(/unknown network nowhere/);
  });

  test("IPv6 blocks are routed beside IPv4 ones", () => {
    const v6 = [
      { ...seed[0]!, cidrs: ["10.0.0.0/16", "2600:1f18:abcd::/56"] },
      { ...seed[1]!, cidrs: ["10.1.0.0/16", "2600:1900:4000::/48"] },
    ];
    const plan = planPeering({ networks: v6, links: "full-mesh" });
    expect(plan.problems).toEqual([]);
    expect(plan.routes.filter((r) => r.network === "gcp:net-b").map((r) => r.destination)).toEqual(["10.0.0.0/16", "2600:1f18:abcd:0:0:0:0:0/56"]);
  });

  test("property: a plan without problems never routes one destination of a network to two peers", () => {
    const net = fc.record({ second: fc.integer({ min: 0, max: 7 }), prefix: fc.integer({ min: 12, max: 20 }) });
    fc.assert(fc.property(fc.array(net, { minLength: 2, maxLength: 6 }), (ns) => {
      const networks = ns.map((n, i): NetworkSpec => ({ id: `n${i}`, platform: "aws", cidrs: [`10.${n.second * 16}.0.0/${n.prefix}`], routeTables: ["rt"] }));
      const plan = planPeering({ networks, links: "full-mesh" });
      if (plan.problems.length) return;
      for (const id of networks.map((n) => n.id)) {
        const dests = plan.routes.filter((r) => r.network === id).map((r) => parseCidr(r.destination));
        for (let i = 0; i < dests.length; i++) for (let j = i + 1; j < dests.length; j++) expect(overlaps(dests[i]!, dests[j]!)).toBe(false);
      }
    }));
  });
});

describe("apply", () => {
  const plan = planPeering({ networks: seed, links: "full-mesh" });

  test("creates links then routes; applying again changes nothing", async () => {
    const cloud = fakeCloud();
    const first = await applyPlan(plan, cloud.client);
    expect(first.createdLinks).toHaveLength(3);
    expect(first.createdRoutes).toHaveLength(8);
    const after = cloud.snapshot();
    expect(await applyPlan(plan, cloud.client)).toEqual({ createdLinks: [], createdRoutes: [] });
    expect(cloud.snapshot()).toBe(after);
  });

  test("a plan with problems is refused before any call", async () => {
    const bad = planPeering({ networks: [seed[0]!, { ...seed[1]!, cidrs: ["10.0.1.0/24"] }], links: "full-mesh" });
    await expect(applyPlan(bad, fakeCloud(1).client)).rejects.toMatchObject({ name: "PeeringPlanError" });
  });

  test("property: a failure at any step rolls back to exactly the state before (pre-existing parts kept)", async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 9 }), fc.boolean(), async (failAt, partlyThere) => {
      const cloud = fakeCloud(failAt + (partlyThere ? 2 : 0));
      if (partlyThere) {
        await cloud.client.createLink(plan.links[0]!);
        await cloud.client.createRoute(plan.routes[0]!);
      }
      const before = cloud.snapshot();
      const err = await applyPlan(plan, cloud.client).then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ name: "PeeringApplyError" });
      expect(cloud.snapshot()).toBe(before);
    }), { numRuns: 60 });
  });
});
