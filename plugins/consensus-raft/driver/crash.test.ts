/**
 * Durability across kill -9: a child process running a 3-member group is
 * SIGKILLed at random moments while proposing, several times over the same
 * files; afterwards every proposal it acknowledged is present.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "grey-raft-crash-"));
const child = join(import.meta.dir, "crash-child.ts");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function runUntilKilled(prefix: string, killAfterMs: number): Promise<string[]> {
  const p = Bun.spawn([process.execPath, child, dir, "propose", prefix], { stdout: "pipe", stderr: "inherit" });
  const acked: string[] = [];
  let buf = "";
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const dec = new TextDecoder();
  for await (const chunk of p.stdout as ReadableStream<Uint8Array>) {
    buf += dec.decode(chunk);
    const lines = buf.split("\n");
    buf = lines.pop()!;
    for (const line of lines) {
      if (line === "ready" && !killTimer) killTimer = setTimeout(() => p.kill("SIGKILL"), killAfterMs);
      if (line.startsWith("ack ")) acked.push(line.slice(4));
    }
  }
  await p.exited;
  expect(p.signalCode).toBe("SIGKILL");
  return acked;
}

test("kill -9 in a loop while proposing: every acknowledged proposal survives", async () => {
  const acked: string[] = [];
  for (let round = 0; round < 5; round++) acked.push(...(await runUntilKilled(`r${round}`, 150 + round * 70)));
  expect(acked.length).toBeGreaterThan(50);
  console.log(`crash test: ${acked.length} acknowledged proposals over 5 kill -9 rounds`);
  const dump = Bun.spawnSync([process.execPath, child, dir, "dump"], { stdout: "pipe", stderr: "inherit", timeout: 30_000 });
  const present = new Set(JSON.parse(dump.stdout.toString()) as string[]);
  const lost = acked.filter((k) => !present.has(k));
  expect(lost).toEqual([]);
}, 60_000);
