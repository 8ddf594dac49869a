/**
 * The linux-arm64 build is a real, working agent: cross-compiled here from the
 * npm-registry arm64 runtime, run under qemu-user (Debian's qemu-user-static
 * with the arm64 libc from libc6-arm64-cross), and it joins an x64 hub.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { agentStatus, createToken, initHub, requireBinaries, root, run, startHub, stopAll, tempDir, waitFor } from "./harness.ts";

const qemu = "/usr/bin/qemu-aarch64-static";
const sysroot = "/usr/aarch64-linux-gnu";
const agentArm = join(root, "dist", "grey-agent-linux-arm64");
let hubDir: string;

beforeAll(async () => {
  requireBinaries();
  if (!existsSync(qemu) || !existsSync(join(sysroot, "lib", "ld-linux-aarch64.so.1"))) {
    throw new Error("qemu-user-static and libc6-arm64-cross are required (apt-get install qemu-user-static libc6-arm64-cross; .ci/run does it)");
  }
  const b = Bun.spawnSync([process.execPath, join(root, "build", "compile.ts"), "--if-needed", "--target", "linux-arm64"], { stdout: "pipe", stderr: "pipe" });
  if (b.exitCode !== 0) throw new Error(`arm64 build failed: ${b.stderr.toString()}`);
  hubDir = tempDir("grey-hub-");
  await initHub(hubDir);
});

afterAll(stopAll);

test("the arm64 agent prints its version and target", async () => {
  const r = await run(qemu, ["-L", sysroot, agentArm, "--version"]);
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toMatch(/^grey-agent \d+\.\d+\.\d+ \(commit [0-9a-f]+(-dirty)?, bun [\d.]+, linux-arm64\)/);
});

test("an arm64 agent joins an x64 hub and heartbeats", async () => {
  const hub = await startHub(hubDir, ["--heartbeat-interval", "1s"]);
  const dir = tempDir("grey-agent-arm64-");
  const token = await createToken(hubDir, "pi-4", "grey", "eu-west");
  const joined = await run(qemu, ["-L", sysroot, agentArm, "join", token, "--data-dir", dir], 120_000);
  expect(joined.stderr).toBe("");
  expect(joined.exitCode).toBe(0);
  const p = Bun.spawn([qemu, "-L", sysroot, agentArm, "run", "--data-dir", dir, "--heartbeat-interval", "1s"], { stdout: "ignore", stderr: "ignore" });
  try {
    await waitFor("arm64 agent heartbeat", () => (agentStatus(dir)?.heartbeatsSent ?? 0) > 0 || undefined, 90_000);
  } finally {
    p.kill("SIGKILL");
    await p.exited;
  }
  expect(hub.proc.exitCode).toBeNull();
});
