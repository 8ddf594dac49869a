/**
 * Runs the deterministic Raft simulation over a range of seeds.
 *   bun test/sim/main.ts --seeds N --ops M [--seed-base S] [--trace] [--fault NAME]
 * --fault skip-vote-log-check | unconfirmed-reads | self-ack-before-persist | commit-previous-term runs a deliberately broken core (to see failures reported).
 * Exits non-zero on any failure, printing the seed and a command that reproduces it.
 */
import type { TestFaults } from "../../plugins/consensus-raft/core/raft.ts";
import { describeScenario, runSimulation, type SimResult } from "./simulator.ts";

interface Args {
  seeds: number;
  ops: number;
  seedBase: number;
  trace: boolean;
  fault: TestFaults | undefined;
}

const faults: Record<string, TestFaults> = {
  "skip-vote-log-check": { skipVoteLogCheck: true },
  "unconfirmed-reads": { unconfirmedReads: true },
  "self-ack-before-persist": { selfAckBeforePersist: true },
  "commit-previous-term": { commitPreviousTerm: true },
};

function parseArgs(argv: string[]): Args {
  const args: Args = { seeds: 20, ops: 300, seedBase: 1, trace: false, fault: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v < 0) {
        console.error(`${a}: expected a non-negative integer`);
        process.exit(2);
      }
      return v;
    };
    if (a === "--seeds") args.seeds = num();
    else if (a === "--ops") args.ops = num();
    else if (a === "--seed-base" || a === "--seed") args.seedBase = num();
    else if (a === "--trace") args.trace = true;
    else if (a === "--fault") {
      const name = argv[++i] ?? "";
      args.fault = faults[name];
      if (!args.fault) {
        console.error(`--fault: expected one of ${Object.keys(faults).join(", ")}`);
        process.exit(2);
      }
    }
    else if (a === "--help" || a === "-h") {
      console.log(`usage: bun test/sim/main.ts --seeds N --ops M [--seed-base S] [--trace] [--fault ${Object.keys(faults).join("|")}]`);
      process.exit(0);
    } else {
      console.error(`unknown argument ${a}`);
      process.exit(2);
    }
  }
  return args;
}

function report(r: SimResult, ops: number, fault: string): void {
  const f = r.failure;
  if (!f) return;
  console.error(`\nFAIL seed ${r.seed} (${f.kind}): ${f.message}`);
  console.error(`scenario: ${JSON.stringify(describeScenario(r.seed), (_k, v: unknown) => (v === Infinity ? "never" : v))}`);
  if (f.witness) {
    console.error("minimal non-linearizable history:");
    for (const line of f.witness) console.error(`  ${line}`);
  }
  if (f.trace) {
    console.error(`last ${f.trace.length} events:`);
    for (const line of f.trace) console.error(`  ${line}`);
  }
  console.error(`repro: bun test/sim/main.ts --seeds 1 --ops ${ops} --seed-base ${r.seed} --trace${fault}`);
}

const args = parseArgs(process.argv.slice(2));
const t0 = performance.now();
let failures = 0;
const totals = { opsOk: 0, opsUnknown: 0, elections: 0, crashes: 0, snapshotsSent: 0, confChanges: 0, transfers: 0, simMs: 0, unknownVerdicts: 0 };
for (let s = args.seedBase; s < args.seedBase + args.seeds; s++) {
  const base = { seed: s, ops: args.ops, ...(args.fault ? { raftFaults: args.fault } : {}) };
  let r = runSimulation({ ...base, trace: args.trace });
  if (!r.ok && !args.trace) r = runSimulation({ ...base, trace: true }); // replay with a trace
  for (const k of ["opsOk", "opsUnknown", "elections", "crashes", "snapshotsSent", "confChanges", "transfers", "simMs"] as const) {
    totals[k] += r.stats[k];
  }
  if (r.stats.linearizability === "unknown") totals.unknownVerdicts++;
  if (!r.ok) {
    failures++;
    const faultName = Object.entries(faults).find(([, f]) => f === args.fault)?.[0];
    report(r, args.ops, faultName ? ` --fault ${faultName}` : "");
  }
}
const secs = ((performance.now() - t0) / 1000).toFixed(1);
console.log(
  `${args.seeds - failures}/${args.seeds} seeds passed (${args.seedBase}..${args.seedBase + args.seeds - 1}, ${args.ops} ops each) in ${secs} s; ` +
    `ops ok ${totals.opsOk}, unknown ${totals.opsUnknown}, elections ${totals.elections}, crashes ${totals.crashes}, ` +
    `snapshots sent ${totals.snapshotsSent}, conf changes ${totals.confChanges}, transfers ${totals.transfers}, ` +
    `simulated ${(totals.simMs / 1000).toFixed(0)} s, checker gave up on ${totals.unknownVerdicts} runs`,
);
process.exit(failures > 0 ? 1 : 0);
