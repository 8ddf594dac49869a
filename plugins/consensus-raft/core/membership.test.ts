import { describe, expect, test } from "bun:test";
import { ConfChangeError } from "./errors.ts";
import { TestCluster, text } from "./test-cluster.ts";

function leaderOf(c: TestCluster, id: number): void {
  c.raft(id).campaign();
  c.drain();
  expect(c.leaders()).toEqual([id]);
}

describe("membership changes", () => {
  test("a learner catches up, cannot campaign, then is promoted to voter", () => {
    const c = new TestCluster([1, 2, 3]);
    leaderOf(c, 1);
    c.raft(1).propose(text("before"));
    c.drain();
    c.addEmpty(4);
    c.raft(1).proposeConfChange({ kind: "addLearner", node: 4 });
    c.drain();
    expect(c.raft(1).status().conf).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(c.appliedText(4)).toEqual(["before"]);
    c.tick([4], 50);
    expect(c.raft(4).status().role).toBe("follower"); // learners never campaign
    const pr = c.raft(1).status().progress?.get(4);
    expect(pr?.match).toBe(c.raft(1).status().lastIndex);
    c.raft(1).proposeConfChange({ kind: "addVoter", node: 4 });
    c.drain();
    for (const id of [1, 2, 3, 4]) expect(c.raft(id).status().conf).toEqual({ voters: [1, 2, 3, 4], learners: [] });
  });

  test("only one change may be pending", () => {
    const c = new TestCluster([1, 2, 3]);
    leaderOf(c, 1);
    c.isolate(2);
    c.isolate(3);
    c.raft(1).proposeConfChange({ kind: "addLearner", node: 4 });
    expect(() => c.raft(1).proposeConfChange({ kind: "addLearner", node: 5 })).toThrow(ConfChangeError);
    expect(() => c.raft(1).proposeConfChange({ kind: "remove", node: 7 })).toThrow(ConfChangeError);
  });

  test("a new leader accepts no change until it commits an entry of its own term", () => {
    const c = new TestCluster([1, 2, 3]);
    c.drop = (m) => m.type === "appResp" && m.to === 1; // elected, but its first entry never commits
    leaderOf(c, 1);
    expect(() => c.raft(1).proposeConfChange({ kind: "addLearner", node: 4 })).toThrow(ConfChangeError);
    c.drop = undefined;
    c.tickAll(2);
    expect(() => c.raft(1).proposeConfChange({ kind: "addLearner", node: 4 })).not.toThrow();
  });

  test("removing the leader makes it step down; the rest elect a new leader", () => {
    const c = new TestCluster([1, 2, 3]);
    leaderOf(c, 1);
    c.raft(1).proposeConfChange({ kind: "remove", node: 1 });
    c.drain();
    expect(c.raft(1).status().role).toBe("follower");
    expect(c.raft(2).status().conf.voters).toEqual([2, 3]);
    c.tick([2, 3], 40);
    expect(c.leaders().length).toBe(1);
    expect(c.leaders()[0]).not.toBe(1);
    c.tick([1], 40);
    expect(c.raft(1).status().role).toBe("follower");
    const leader = c.leaders()[0] as number;
    c.raft(leader).propose(text("after"));
    c.drain();
    expect(c.appliedText(2)).toEqual(["after"]);
  });

  test("the last voter cannot be removed", () => {
    const c = new TestCluster([1]);
    c.raft(1).campaign();
    c.drain();
    expect(() => c.raft(1).proposeConfChange({ kind: "remove", node: 1 })).toThrow(ConfChangeError);
  });
});
