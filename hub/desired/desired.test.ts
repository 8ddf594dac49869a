import { describe, expect, test } from "bun:test";
import { ed25519 } from "@noble/curves/ed25519.js";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeCbor } from "../../plugins/sdk/codec.ts";
import { AgentStore } from "../../agent/autonomy/store.ts";
import { applyOutbox } from "../tasks/outbox.ts";
import { TaskStore } from "../tasks/store.ts";
import {
  checkDesiredKey, checkDesiredValue, compareDesired, DesiredEntryInvalidError, desiredEntriesPerAckMax, desiredKeyBytesMax,
  desiredSigningPayload, desiredValueBytesMax, desiredWins, nextDesiredAt, type DesiredEntry,
} from "./rule.ts";
import { DesiredView } from "./store.ts";

const tmp = () => mkdtempSync(join(tmpdir(), "grey-desired-"));

/** Apply entries in order with the rule; the winner per key. */
function fold(entries: DesiredEntry[]): Map<string, DesiredEntry> {
  const m = new Map<string, DesiredEntry>();
  for (const e of entries) if (desiredWins(e, m.get(e.key))) m.set(e.key, e);
  return m;
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

describe("desired-state merge rule", () => {
  test("later timestamp wins; hub wins ties; then the greater value; equal entries change nothing", () => {
    const local = { value: "l", at: 10, source: "local" as const };
    const hub = { value: "h", at: 10, source: "hub" as const };
    expect(desiredWins({ ...local, at: 11 }, hub)).toBe(true);
    expect(desiredWins(hub, { ...local, at: 11 })).toBe(false);
    expect(desiredWins(hub, local)).toBe(true);
    expect(desiredWins(local, hub)).toBe(false);
    expect(desiredWins({ ...local, value: "m" }, local)).toBe(true);
    expect(desiredWins(local, { ...local, value: "m" })).toBe(false);
    expect(desiredWins(local, local)).toBe(false);
    expect(desiredWins(local, undefined)).toBe(true);
    expect(compareDesired(hub, hub)).toBe(0);
    expect(nextDesiredAt(5, { at: 100 })).toBe(101);
    expect(nextDesiredAt(500, { at: 100 })).toBe(500);
  });

  test("commutative: the two conflicting changes applied in either order give the same winner", () => {
    const a: DesiredEntry = { key: "A", value: "local", at: 1_000, source: "local" };
    const b: DesiredEntry = { key: "A", value: "hub", at: 2_000, source: "hub" };
    expect(fold([a, b]).get("A")).toEqual(b);
    expect(fold([b, a]).get("A")).toEqual(b);
    const tie: DesiredEntry = { ...b, at: a.at };
    expect(fold([a, tie]).get("A")).toEqual(tie);
    expect(fold([tie, a]).get("A")).toEqual(tie);
  });

  test("every order of a set of changes converges, on the agent store and on the hub view alike", () => {
    const changes: DesiredEntry[] = [
      { key: "A", value: "l1", at: 5, source: "local" },
      { key: "A", value: "h1", at: 5, source: "hub" },
      { key: "A", value: "l2", at: 4, source: "local" },
      { key: "B", value: "x", at: 7, source: "local" },
      { key: "B", value: "y", at: 7, source: "local" },
    ];
    const expected = [...fold(changes).values()].sort((x, y) => (x.key < y.key ? -1 : 1));
    expect(expected.map((e) => e.value)).toEqual(["h1", "y"]);
    for (const order of permutations(changes)) {
      const dir = tmp();
      const agent = AgentStore.open(dir);
      const hub = DesiredView.open(join(dir, "tasks.db"));
      try {
        for (const e of order) {
          agent.setDesired(e.key, e.value, e.source, e.at);
          hub.merge("c1", e, "test");
        }
        expect(agent.desiredAll()).toEqual(expected);
        expect(hub.list("c1").map(({ key, value, at, source }) => ({ key, value, at, source }))).toEqual(expected);
      } finally {
        agent.close();
        hub.close();
      }
    }
  });

  test("bounded keys and values (typed errors)", () => {
    expect(() => checkDesiredKey("")).toThrow(DesiredEntryInvalidError);
    expect(() => checkDesiredKey("a".repeat(desiredKeyBytesMax + 1))).toThrow(DesiredEntryInvalidError);
    expect(() => checkDesiredKey("has space")).toThrow(DesiredEntryInvalidError);
    expect(() => checkDesiredKey("app/replicas.v2_x-y")).not.toThrow();
    expect(() => checkDesiredValue("é".repeat(desiredValueBytesMax / 2 + 1))).toThrow(DesiredEntryInvalidError);
    expect(() => checkDesiredValue("x".repeat(desiredValueBytesMax))).not.toThrow();
  });
});

describe("hub desired view", () => {
  test("an agent's signed change arrives through the outbox exactly once; a bad signature is not applied", async () => {
    const key = await generateKeyPair("Ed25519");
    const peer = peerIdFromPrivateKey(key).toString();
    const dir = tmp();
    const store = TaskStore.open(join(dir, "tasks.db"), { now: () => 1 });
    try {
      const view = DesiredView.of(store.db);
      const sig = ed25519.sign(desiredSigningPayload("c1", "A", "local", 1_000), key.raw.subarray(0, 32));
      const entry = (seq: number, body: unknown) => ({ seq, kind: "desired-change" as const, at: 1, body: encodeCbor(body) });
      applyOutbox(store, peer, "c1", [entry(1, { key: "A", value: "local", at: 1_000, sig })]);
      applyOutbox(store, peer, "c1", [entry(1, { key: "A", value: "local", at: 1_000, sig })]); // resend: skipped
      applyOutbox(store, peer, "c1", [entry(2, { key: "B", value: "forged", at: 1_000, sig })]);
      expect(view.list("c1").map((r) => [r.key, r.value, r.source, r.origin])).toEqual([["A", "local", "local", peer]]);
      expect(view.changes("c1").filter((c) => c.key === "A")).toHaveLength(1);
      expect(store.recordCounts().find((r) => r.kind === "desired-change")!.count).toBe(2);
      // an admin write later wins, bumped past the entry it replaces even with a clock behind
      const row = view.put("c1", "A", "hub", 10, "api:admin");
      expect([row.value, row.at, row.source]).toEqual(["hub", 1_001, "hub"]);
    } finally {
      store.close();
    }
  });

  test("since(): entries after the agent's version, bounded per ack, then the current version", () => {
    const view = DesiredView.open(join(tmp(), "tasks.db"));
    try {
      for (let i = 0; i < desiredEntriesPerAckMax + 5; i++) view.put("c1", `k${i}`, "v", 1_000 + i, "t");
      view.put("c2", "other", "v", 1, "t");
      const first = view.since("c1", 0);
      expect(first.entries).toHaveLength(desiredEntriesPerAckMax);
      const second = view.since("c1", first.version);
      expect(second.entries).toHaveLength(5);
      const third = view.since("c1", second.version);
      expect(third.entries).toHaveLength(0);
      expect(third.version).toBeGreaterThanOrEqual(second.version);
      expect(view.since("c1", 10_000).entries).toHaveLength(desiredEntriesPerAckMax); // a version this hub never issued: from the start
    } finally {
      view.close();
    }
  });
});
