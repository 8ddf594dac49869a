import { describe, expect, test } from "bun:test";
import { Xoshiro128 } from "./prng.ts";
import { RaftNode } from "./raft.ts";
import { TestCluster, text } from "./test-cluster.ts";

describe("snapshots and compaction", () => {
  test("a follower behind the compacted log installs the leader's snapshot, then catches up", () => {
    const c = new TestCluster([1, 2, 3]);
    c.raft(1).campaign();
    c.drain();
    c.isolate(3);
    for (let i = 0; i < 10; i++) c.raft(1).propose(text(`e${i}`));
    c.drain();
    const snap = c.raft(1).compact(text("image-at-applied"));
    expect(snap?.meta.index).toBe(c.raft(1).status().applied);
    expect(c.raft(1).status().firstIndex).toBe((snap?.meta.index ?? 0) + 1);
    c.raft(1).propose(text("after"));
    c.drain();
    c.heal();
    c.tickAll(3);
    const n3 = c.node(3);
    expect(n3.snapshot?.meta.index).toBe(snap?.meta.index);
    expect(new TextDecoder().decode(n3.snapshot?.data)).toBe("image-at-applied");
    expect(n3.raft.status().conf.voters).toEqual([1, 2, 3]);
    expect(c.appliedText(3)).toEqual(["after"]);
    expect(n3.raft.status().commit).toBe(c.raft(1).status().commit);
  });

  test("a restarted node resumes from its snapshot and durable log", () => {
    const c = new TestCluster([1]);
    c.raft(1).campaign();
    c.drain();
    c.raft(1).propose(text("a"));
    c.drain();
    const snap = c.raft(1).compact(text("img"));
    if (!snap) throw new Error("nothing compacted");
    c.node(1).snapshot = snap;
    c.node(1).entries = c.node(1).entries.filter((e) => e.index > snap.meta.index);
    c.raft(1).propose(text("b"));
    c.drain();
    const n = c.node(1);
    const restarted = new RaftNode({ id: 1, storage: { hardState: n.hardState, snapshot: snap, entries: n.entries }, rng: new Xoshiro128(2) });
    expect(restarted.status().applied).toBe(snap.meta.index);
    const rd = restarted.ready();
    expect(rd.committedEntries.map((e) => new TextDecoder().decode(e.data))).toEqual(["b"]);
  });
});
