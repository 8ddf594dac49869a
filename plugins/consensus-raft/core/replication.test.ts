import { describe, expect, test } from "bun:test";
import { EntryTooLargeError, NotLeaderError } from "./errors.ts";
import { entryBytesMax } from "./constants.ts";
import { TestCluster, text } from "./test-cluster.ts";

describe("log replication", () => {
  test("committed entries are applied in the same order everywhere", () => {
    const c = new TestCluster([1, 2, 3]);
    c.raft(1).campaign();
    c.drain();
    for (const s of ["a", "b", "c"]) c.raft(1).propose(text(s));
    c.drain();
    for (const id of [1, 2, 3]) expect(c.appliedText(id)).toEqual(["a", "b", "c"]);
  });

  test("a follower's refusal names the leader; oversized entries are refused", () => {
    const c = new TestCluster([1, 2, 3]);
    c.raft(1).campaign();
    c.drain();
    expect(() => c.raft(2).propose(text("x"))).toThrow(NotLeaderError);
    try {
      c.raft(2).propose(text("x"));
    } catch (err) {
      expect((err as NotLeaderError).leader).toBe(1);
      expect((err as NotLeaderError).name).toBe("NotLeaderError");
    }
    expect(() => c.raft(1).propose(new Uint8Array(entryBytesMax + 1))).toThrow(EntryTooLargeError);
  });

  test("uncommitted entries of a deposed leader are replaced by the new leader's log", () => {
    const c = new TestCluster([1, 2, 3]);
    c.raft(1).campaign();
    c.drain();
    c.isolate(1);
    c.raft(1).propose(text("lost1"));
    c.raft(1).propose(text("lost2"));
    c.drain();
    c.tick([2, 3], 30); // 2 and 3 wait out 1's lease, then elect one of themselves
    const leader = [2, 3].find((id) => c.raft(id).status().role === "leader");
    expect(leader).toBeDefined();
    c.raft(leader as number).propose(text("kept"));
    c.drain();
    c.heal();
    c.tickAll(3);
    for (const id of [1, 2, 3]) expect(c.appliedText(id)).toEqual(["kept"]);
  });

  test("appends are batched and pipelined within the inflight window", () => {
    const c = new TestCluster([1, 2, 3], { appendEntriesMax: 4, inflightMessagesMax: 2 });
    c.raft(1).campaign();
    c.drain();
    c.cut.add("2->1"); // 2 receives but its acks are lost
    const before = c.delivered.length;
    for (let i = 0; i < 20; i++) c.raft(1).propose(text(`e${i}`));
    c.drain();
    const appsTo2 = c.delivered.slice(before).filter((m) => m.type === "app" && m.to === 2 && m.entries.length > 0);
    expect(appsTo2.length).toBe(2); // window full, leader waits
    c.heal();
    const mark = c.delivered.length;
    c.tickAll(5);
    const resumed = c.delivered.slice(mark).filter((m) => m.type === "app" && m.to === 2 && m.entries.length > 0);
    expect(resumed.length).toBeGreaterThan(0);
    for (const m of resumed) expect(m.entries.length).toBeLessThanOrEqual(4);
    expect(c.appliedText(2).length).toBe(20);
  });
});
