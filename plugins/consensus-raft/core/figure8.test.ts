/**
 * The Raft paper's Figure 8 (§5.4.2), step by step on five nodes: a leader must
 * not commit an entry of an earlier term by counting replicas, even when a
 * quorum holds it, because a later leader may still overwrite it. The same
 * script runs against the correct core and against `commitPreviousTerm` (the
 * bug), so the test proves it can tell them apart. See etcd-io/raft's
 * TestLeaderOnlyCommitsLogFromCurrentTerm and TestCommitWithoutNewTermEntry.
 *
 * Indices: 1..5 are the bootstrap conf entries (term 1); S1's first term is 2
 * and its empty entry sits at 6, committed everywhere. The paper's index 2 is
 * our 7, its index 3 our 8.
 */
import { describe, expect, test } from "bun:test";
import type { TestFaults } from "./raft.ts";
import { TestCluster, text } from "./test-cluster.ts";
import type { Entry, NodeId } from "./types.ts";

const ids = [1, 2, 3, 4, 5];
const x = 7; // S1's term-2 entry ("x"), the one Figure 8 is about
const decoder = new TextDecoder();

/**
 * One entry per append (so a follower can hold the term-2 entry without the
 * leader's term-4 one, like S3 in (c)); no check-quorum lease, so a scripted
 * campaign does not have to wait out an election timeout first.
 */
function cluster(faults: TestFaults): TestCluster {
  return new TestCluster(ids, { appendEntriesMax: 1, checkQuorum: false, testFaults: faults });
}

/** Campaigns until `id` leads (a pre-vote refused by a higher term teaches it that term first). */
function elect(c: TestCluster, id: NodeId, term: number): void {
  for (let i = 0; i < 3 && c.raft(id).status().role !== "leader"; i++) {
    c.raft(id).campaign();
    c.drain();
  }
  expect(c.leaders()).toEqual([id]);
  expect(c.raft(id).status().term).toBe(term);
}

const describeEntry = (e: Entry | undefined): string =>
  e === undefined ? "-" : `${e.term}${e.type === "normal" && e.data.byteLength > 0 ? `:${decoder.decode(e.data)}` : ""}`;

/** Each live node's log from index 6 on, as term[:data]. */
function logs(c: TestCluster): Record<number, string[]> {
  const out: Record<number, string[]> = {};
  for (const id of ids) {
    const r = c.raft(id);
    out[id] = [];
    for (let i = 6; i <= r.status().lastIndex; i++) out[id].push(describeEntry(r.entryAt(i)));
  }
  return out;
}

/**
 * Watches what every node has committed and applied. A violation is an index
 * committed (or applied) with one term and later with another: exactly what
 * Raft's state-machine safety forbids.
 */
class SafetyWatch {
  private readonly committed = new Map<number, { term: number; by: NodeId }>();
  readonly violations: string[] = [];

  observe(c: TestCluster): void {
    for (const id of ids) {
      if (c.down.has(id)) continue;
      const r = c.raft(id);
      const st = r.status();
      for (let i = st.firstIndex; i <= st.commit; i++) this.record(i, r.termAt(i) as number, id, "committed");
      for (const e of c.node(id).applied) this.record(e.index, e.term, id, "applied");
    }
  }

  private record(index: number, term: number, by: NodeId, what: string): void {
    const had = this.committed.get(index);
    if (!had) this.committed.set(index, { term, by });
    else if (had.term !== term) {
      const v = `index ${index}: S${had.by} committed term ${had.term}, S${by} ${what} term ${term}`;
      if (!this.violations.includes(v)) this.violations.push(v);
    }
  }
}

interface Figure8 {
  /** S1's commit index right after it replicated the term-2 entry to a quorum in term 4 (step c). */
  commitInC: number;
  /** Nodes holding index 7 with term 2 at that moment. */
  holdersOfXInC: NodeId[];
  violations: string[];
  c: TestCluster;
}

/** Plays Figure 8 (a) to (e) against a core with `faults`. */
function figure8(faults: TestFaults): Figure8 {
  const c = cluster(faults);
  const watch = new SafetyWatch();

  // (a) S1 leads term 2 and replicates "x" at index 7 to S2 only.
  elect(c, 1, 2);
  c.cut.add("1->3").add("1->4").add("1->5");
  expect(c.raft(1).propose(text("x"))).toBe(x);
  c.drain();
  expect(c.raft(2).termAt(x)).toBe(2);
  expect(c.raft(1).status().commit).toBe(6);
  watch.observe(c);

  // (b) S1 crashes. S5 is elected for term 3 by S3, S4 and itself (S2's log is
  // longer), appends its own entries at 7 and 8, and crashes before sending them.
  c.crash(1);
  c.heal();
  c.drop = (m) => m.from === 5 && m.type === "app";
  elect(c, 5, 3);
  c.raft(5).propose(text("y"));
  c.drain();
  expect(c.raft(5).termAt(x)).toBe(3);
  c.crash(5);
  c.drop = undefined;
  watch.observe(c);

  // (c) S1 restarts and is elected for term 4 (its empty entry lands at 8). It
  // catches S3 up on the term-2 entry: S1, S2 and S3, a quorum, now hold "x".
  // The term-4 entry reaches S2 only (it is lost on its way to S3 and S4), and
  // S1 crashes before any commit index it announces gets out.
  c.restart(1);
  c.drop = (m) =>
    m.from === 1 &&
    (((m.type === "app" || m.type === "heartbeat") && m.commit > 6) ||
      (m.type === "app" && m.to === 4) ||
      (m.type === "app" && m.to === 3 && c.raft(3).termAt(x) === 2 && m.entries.some((e) => e.term === 4)));
  elect(c, 1, 4);
  c.drain();
  const holdersOfXInC = ids.filter((id) => !c.down.has(id) && c.raft(id).termAt(x) === 2);
  const commitInC = c.raft(1).status().commit;
  watch.observe(c);
  c.crash(1);
  c.drop = undefined;

  // (d) S5 restarts and is elected for term 5 by S3, S4 and itself (its last
  // term, 3, beats S3's 2 and S4's 1). (e) It overwrites index 7 everywhere.
  c.restart(5);
  elect(c, 5, 5);
  c.drain();
  watch.observe(c);
  return { commitInC, holdersOfXInC, violations: watch.violations, c };
}

describe("Figure 8: a leader commits only entries of its own term by counting replicas", () => {
  test("the correct core does not commit the term-2 entry held by a quorum; the later overwrite is safe", () => {
    const r = figure8({});
    expect(r.holdersOfXInC).toEqual([1, 2, 3]);
    expect(r.commitInC).toBe(6); // index 7 is on a quorum but its term (2) is not the leader's (4)
    expect(r.violations).toEqual([]);
    // S5's term-3 entries won: every live node holds and applied them, "x" was never applied anywhere.
    for (const id of [2, 3, 4, 5]) expect(logs(r.c)[id]).toEqual(["2", "3", "3:y", "5"]);
    for (const id of ids) expect(r.c.appliedText(id)).not.toContain("x");
    for (const id of [2, 3, 4, 5]) expect(r.c.appliedText(id)).toEqual(["y"]);
  });

  test("with commitPreviousTerm the same history commits the term-2 entry, which S5 then overwrites", () => {
    const r = figure8({ commitPreviousTerm: true });
    expect(r.holdersOfXInC).toEqual([1, 2, 3]);
    expect(r.commitInC).toBe(x); // committed by counting: the bug
    expect(r.c.appliedText(1)).toContain("x"); // S1 applied it (and would have answered its client)
    expect(r.violations.length).toBeGreaterThan(0);
    expect(r.violations[0]).toBe("index 7: S1 committed term 2, S2 committed term 3");
  });

  test("the term-2 entry commits with the first entry of the leader's term (etcd TestCommitWithoutNewTermEntry)", () => {
    const c = cluster({});
    elect(c, 1, 2);
    c.cut.add("1->3").add("1->4").add("1->5");
    c.raft(1).propose(text("x"));
    c.drain();
    expect(c.raft(1).status().commit).toBe(6);
    c.heal();
    c.crash(1);
    c.restart(1);
    const commits: number[] = [];
    c.drop = (m) => {
      if (m.from === 1 && m.type === "app") commits.push(m.commit);
      return false;
    };
    elect(c, 1, 3);
    c.drain();
    // commit goes from 6 straight to 8: "x" (term 2) is committed only together with the term-3 entry after it
    expect([...new Set(commits)]).toEqual([6, 8]);
    for (const id of ids) expect(c.appliedText(id)).toEqual(["x"]);
  });
});
