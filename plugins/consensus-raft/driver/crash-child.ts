/**
 * Fixture for crash.test.ts: a 3-member group in one process (in-memory
 * network, durable bun:sqlite files in DIR). `propose PREFIX` proposes keys
 * forever and prints "ack KEY" once each is applied; `dump` waits for a
 * leader, reads, and prints every key of member 1.
 */
import { TestGroup } from "./testing.ts";
import { KvStateMachine } from "./kv-state-machine.ts";
import type { TestMember } from "./testing.ts";

const [dir, mode, prefix] = process.argv.slice(2) as [string, string, string];
const g = new TestGroup([1, 2, 3], {}, dir);
await g.start();
const l = await g.leader(10_000);
if (mode === "dump") {
  await l.driver.read();
  const m1 = g.members.get(1) as TestMember;
  await m1.driver.read();
  process.stdout.write(JSON.stringify(m1.sm.keys()) + "\n");
  process.exit(0);
}
process.stdout.write("ready\n");
let n = 0;
const worker = async () => {
  for (;;) {
    const key = `${prefix}-${n++}`;
    await l.driver.propose(KvStateMachine.put(key, "v"));
    process.stdout.write(`ack ${key}\n`);
  }
};
await Promise.all(Array.from({ length: 8 }, worker));
