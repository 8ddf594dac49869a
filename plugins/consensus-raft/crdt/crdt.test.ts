/** Property tests (fast-check): merge is commutative, associative and idempotent; HLC is monotonic. */
import { expect, test } from "bun:test";
import fc from "fast-check";
import { HybridClock, LastSeenMap, LwwMap, OrSet, PnCounter, compareHlc, type Hlc } from "./index.ts";
import { ClockSkewError } from "./hlc.ts";

const node = fc.constantFrom("a", "b", "c");
const key = fc.constantFrom("k1", "k2", "k3", "k4");

// HLC timestamps are unique per (node, wall, logical): each replica writes as its own node.
const lww = (name: string) =>
  fc.array(fc.tuple(key, fc.option(fc.integer(), { nil: undefined }), fc.integer({ min: 0, max: 50 })), { maxLength: 12 }).map((ops) => {
    const m = new LwwMap<number>();
    ops.forEach(([k, v, wall], i) => {
      const ts = { wall, logical: i, node: name };
      v === undefined ? m.delete(k, ts) : m.set(k, v, ts);
    });
    return m;
  });
// OR-set replicas: tags must be unique per add, so each replica gets its own node name.
const orset = (name: string) =>
  fc.array(fc.tuple(fc.boolean(), key), { maxLength: 12 }).map((ops) => {
    const s = new OrSet();
    ops.forEach(([add, k], i) => (add ? s.add(k, { wall: i, logical: 0, node: name }) : s.remove(k)));
    return s;
  });
const counter = fc.array(fc.tuple(node, fc.integer({ min: -5, max: 5 })), { maxLength: 12 }).map((ops) => {
  const c = new PnCounter();
  for (const [n, d] of ops) c.add(n, d);
  return c;
});

type Crdt<T> = { merge(o: T): T; clone(): T; toJSON(): unknown };
const same = (a: { toJSON(): unknown }, b: { toJSON(): unknown }) => expect(JSON.stringify(a)).toBe(JSON.stringify(b));

function laws<T extends Crdt<T>>(arbA: fc.Arbitrary<T>, arbB: fc.Arbitrary<T>, arbC: fc.Arbitrary<T>) {
  fc.assert(fc.property(arbA, arbB, (a, b) => same(a.clone().merge(b), b.clone().merge(a))), { numRuns: 300 });
  fc.assert(fc.property(arbA, arbB, arbC, (a, b, c) => same(a.clone().merge(b).merge(c), a.clone().merge(b.clone().merge(c)))), { numRuns: 300 });
  fc.assert(fc.property(arbA, arbB, (a, b) => same(a.clone().merge(b).merge(b), a.clone().merge(b))), { numRuns: 300 });
  fc.assert(fc.property(arbA, (a) => same(a.clone().merge(a), a)), { numRuns: 100 });
}

test("LWW map: commutative, associative, idempotent", () => laws(lww("a"), lww("b"), lww("c")));
test("OR-set: commutative, associative, idempotent", () => laws(orset("a"), orset("b"), orset("c")));
test("PN-counter: commutative, associative, idempotent", () => laws(counter, counter, counter));

test("OR-set: an add concurrent with a remove survives the merge (add wins)", () => {
  const a = new OrSet();
  a.add("x", { wall: 1, logical: 0, node: "a" });
  const b = a.clone();
  b.remove("x");
  a.add("x", { wall: 2, logical: 0, node: "a" });
  expect(a.clone().merge(b).has("x")).toBe(true);
  expect(b.clone().merge(a).has("x")).toBe(true);
  const c = a.clone().merge(b);
  c.remove("x");
  expect(c.merge(a).has("x")).toBe(false);
});

test("HLC: monotonic under a clock that goes backwards, causal across nodes, refuses wild skew", () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 50 }), (times) => {
    let i = 0;
    const c = new HybridClock("a", { now: () => times[Math.min(i++, times.length - 1)]! });
    let prev = c.now();
    for (let k = 1; k < times.length; k++) {
      const t = c.now();
      expect(compareHlc(t, prev)).toBe(1);
      prev = t;
    }
  }));
  const slow = new HybridClock("b", { now: () => 100 });
  const remote: Hlc = { wall: 5000, logical: 7, node: "a" };
  const r = slow.receive(remote);
  expect(compareHlc(r, remote)).toBe(1);
  expect(compareHlc(slow.now(), r)).toBe(1);
  expect(() => slow.receive({ wall: 10_000_000, logical: 0, node: "z" })).toThrow(ClockSkewError);
});

test("last-seen under partition: both sides keep writing; heal merges to the same newest sighting everywhere", () => {
  let t = 1000;
  const east = new LastSeenMap(new HybridClock("hub-east", { now: () => t }));
  const west = new LastSeenMap(new HybridClock("hub-west", { now: () => t - 30 })); // skewed clock
  east.heartbeat("edge-a", { at: t, hub: "east", multiaddrs: [] });
  t += 100;
  west.heartbeat("edge-a", { at: t, hub: "west", multiaddrs: [] });
  west.heartbeat("edge-b", { at: t, hub: "west", multiaddrs: [] });
  t += 100;
  east.heartbeat("edge-b", { at: t, hub: "east", multiaddrs: [] });
  const eastState = east.map.toJSON();
  east.mergeFrom(west.map.toJSON());
  west.mergeFrom(eastState);
  same(east.map, west.map);
  expect(east.get("edge-a")?.hub).toBe("west");
  expect(east.get("edge-b")?.hub).toBe("east");
});
