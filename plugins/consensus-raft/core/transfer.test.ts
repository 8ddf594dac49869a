import { describe, expect, test } from "bun:test";
import { ProposalDroppedError, TransferError } from "./errors.ts";
import { TestCluster, text } from "./test-cluster.ts";

describe("leadership transfer", () => {
  test("an up-to-date follower takes over through TimeoutNow", () => {
    const c = new TestCluster([1, 2, 3]);
    c.raft(1).campaign();
    c.drain();
    const term = c.raft(1).status().term;
    c.raft(1).transferLeader(2);
    c.drain();
    expect(c.leaders()).toEqual([2]);
    expect(c.raft(2).status().term).toBe(term + 1);
    expect(c.delivered.some((m) => m.type === "timeoutNow" && m.to === 2)).toBe(true);
  });

  test("a lagging target is caught up first; proposals are refused meanwhile", () => {
    const c = new TestCluster([1, 2, 3]);
    c.raft(1).campaign();
    c.drain();
    c.isolate(3);
    for (let i = 0; i < 5; i++) c.raft(1).propose(text(`e${i}`));
    c.drain();
    c.raft(1).transferLeader(3);
    expect(() => c.raft(1).propose(text("x"))).toThrow(ProposalDroppedError);
    c.drain();
    expect(c.leaders()).toEqual([1]); // 3 is unreachable
    c.heal();
    c.tickAll(2);
    expect(c.leaders()).toEqual([3]);
    expect(c.appliedText(3)).toEqual(["e0", "e1", "e2", "e3", "e4"]);
  });

  test("a transfer that cannot finish is abandoned after an election timeout", () => {
    const c = new TestCluster([1, 2, 3]);
    c.raft(1).campaign();
    c.drain();
    c.isolate(3);
    c.raft(1).transferLeader(3);
    c.tick([1, 2], 10);
    expect(c.raft(1).status().leadTransferee).toBe(0);
    expect(() => c.raft(1).propose(text("ok"))).not.toThrow();
  });

  test("transfer to self or a non-voter is refused", () => {
    const c = new TestCluster([1, 2, 3]);
    c.raft(1).campaign();
    c.drain();
    expect(() => c.raft(1).transferLeader(1)).toThrow(TransferError);
    expect(() => c.raft(1).transferLeader(9)).toThrow(TransferError);
  });
});
