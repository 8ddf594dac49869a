import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../sdk/errors.ts";
import { bootstrapStorage } from "./confchange.ts";
import { Xoshiro128 } from "./prng.ts";
import { RaftNode } from "./raft.ts";
import { TestCluster } from "./test-cluster.ts";

function elect(c: TestCluster, id: number): void {
  c.raft(id).campaign();
  c.drain();
  expect(c.leaders()).toEqual([id]);
}

describe("elections", () => {
  test("a node that times out wins the election and the others follow it", () => {
    const c = new TestCluster([1, 2, 3]);
    elect(c, 1);
    expect(c.raft(2).status().lead).toBe(1);
    expect(c.raft(3).status().term).toBe(c.raft(1).status().term);
  });

  test("ticking alone elects exactly one leader", () => {
    const c = new TestCluster([1, 2, 3, 4, 5]);
    c.tickAll(40);
    expect(c.leaders().length).toBe(1);
  });

  test("a candidate with a stale log is refused", () => {
    const c = new TestCluster([1, 2, 3]);
    elect(c, 1);
    c.isolate(3);
    c.raft(1).propose(new Uint8Array([1]));
    c.drain();
    c.heal();
    c.isolate(1);
    c.raft(3).campaign(); // pre-vote: 2 has a longer log and refuses
    c.drain();
    expect(c.raft(3).status().role).not.toBe("leader");
    c.raft(2).campaign();
    c.drain();
    expect(c.raft(2).status().role).toBe("leader");
  });

  test("invalid configuration lists every problem", () => {
    const init = { id: 0, storage: bootstrapStorage([1]), rng: new Xoshiro128(1), electionTicks: 0 };
    expect(() => new RaftNode(init)).toThrow(ConfigError);
    try {
      new RaftNode(init);
    } catch (err) {
      expect((err as ConfigError).problems.length).toBe(3);
    }
  });
});

describe("pre-vote", () => {
  test("an isolated node does not inflate its term and does not disrupt the leader on heal", () => {
    const c = new TestCluster([1, 2, 3]);
    elect(c, 1);
    const term = c.raft(1).status().term;
    c.isolate(3);
    c.tick([3], 100);
    expect(c.raft(3).status().term).toBe(term);
    expect(c.raft(3).status().role).toBe("preCandidate");
    c.heal();
    c.tickAll(3);
    expect(c.leaders()).toEqual([1]);
    expect(c.raft(1).status().term).toBe(term);
  });

  test("without pre-vote the same partition forces a new election on heal", () => {
    const c = new TestCluster([1, 2, 3], { preVote: false, checkQuorum: false });
    elect(c, 1);
    const term = c.raft(1).status().term;
    c.isolate(3);
    c.tick([3], 100);
    expect(c.raft(3).status().term).toBeGreaterThan(term + 2);
    c.heal();
    c.tickAll(30); // 3's next campaign carries its inflated term and deposes 1
    expect(c.raft(1).status().term).toBeGreaterThan(term + 2);
  });
});

describe("check-quorum", () => {
  test("a leader that hears no quorum for an election timeout steps down", () => {
    const c = new TestCluster([1, 2, 3]);
    elect(c, 1);
    c.isolate(1);
    c.tick([1], 2 * 10);
    expect(c.raft(1).status().role).toBe("follower");
  });

  test("a follower in a live leader's lease ignores a disruptive vote request", () => {
    const c = new TestCluster([1, 2, 3], { preVote: false });
    elect(c, 1);
    c.cut.add("1->3").add("3->1");
    c.tick([3], 30); // 3 campaigns with ever higher terms; 2 still hears from 1
    c.tick([1, 2], 1);
    expect(c.leaders()).toEqual([1]);
    expect(c.raft(2).status().lead).toBe(1);
  });
});
