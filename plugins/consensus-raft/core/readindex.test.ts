import { describe, expect, test } from "bun:test";
import { NotLeaderError } from "./errors.ts";
import { TestCluster, text } from "./test-cluster.ts";

describe("read index", () => {
  test("the leader confirms leadership with a quorum before releasing a read", () => {
    const c = new TestCluster([1, 2, 3]);
    c.raft(1).campaign();
    c.drain();
    c.raft(1).propose(text("a"));
    c.drain();
    c.raft(1).readIndex("r1");
    c.drain();
    expect(c.node(1).readStates).toEqual([{ context: "r1", index: c.raft(1).status().commit }]);
  });

  test("a leader cut off from its quorum releases nothing", () => {
    const c = new TestCluster([1, 2, 3]);
    c.raft(1).campaign();
    c.drain();
    c.isolate(1);
    c.raft(1).readIndex("r1");
    c.tick([1], 5);
    expect(c.node(1).readStates).toEqual([]);
    c.heal();
    c.tick([1], 1);
    expect(c.node(1).readStates.map((r) => r.context)).toEqual(["r1"]);
  });

  test("a follower forwards the read and releases it once applied up to the read index", () => {
    const c = new TestCluster([1, 2, 3]);
    c.raft(1).campaign();
    c.drain();
    c.raft(1).propose(text("a"));
    c.drain();
    c.raft(2).readIndex("f1");
    c.drain();
    const rs = c.node(2).readStates;
    expect(rs.map((r) => r.context)).toEqual(["f1"]);
    expect(c.raft(2).status().applied).toBeGreaterThanOrEqual((rs[0] as { index: number }).index);
  });

  test("a node that knows no leader refuses the read", () => {
    const c = new TestCluster([1, 2, 3]);
    expect(() => c.raft(2).readIndex("x")).toThrow(NotLeaderError);
  });

  test("a new leader holds reads until it commits an entry of its own term", () => {
    const c = new TestCluster([1, 2, 3]);
    c.drop = (m) => m.type === "appResp" && m.to === 1;
    c.raft(1).campaign();
    c.drain();
    expect(c.raft(1).status().role).toBe("leader");
    c.raft(1).readIndex("r");
    c.tick([1], 2); // heartbeats are answered, but nothing of term 2 is committed yet
    expect(c.node(1).readStates).toEqual([]);
    c.drop = undefined;
    c.tickAll(2);
    expect(c.node(1).readStates.map((r) => r.context)).toEqual(["r"]);
    expect(c.node(1).readStates[0]?.index).toBe(c.raft(1).status().commit);
  });
});
