/** A private network (pnet): nodes without the pre-shared key cannot even complete a connection. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import {
  agentBin, agentStatus, createToken, hubBin, initHub, requireBinaries, run, startAgent, startHub, stopAll, tempDir, waitFor,
  type Daemon, type HubRun,
} from "./harness.ts";

let hubDir: string;
let psk: string;
let hub: Daemon & { info: HubRun };

beforeAll(async () => {
  requireBinaries();
  hubDir = tempDir("grey-hub-");
  psk = join(tempDir("grey-psk-"), "swarm.key");
  const made = await run(hubBin, ["psk", "create", "--out", psk]);
  expect(made.exitCode).toBe(0);
  expect(statSync(psk).mode & 0o777).toBe(0o600);
  await initHub(hubDir);
  hub = await startHub(hubDir, ["--psk", psk, "--heartbeat-interval", "500ms"]);
});

afterAll(stopAll);

test("psk create refuses to overwrite a key", async () => {
  const again = await run(hubBin, ["psk", "create", "--out", psk]);
  expect(again.exitCode).not.toBe(0);
  expect(again.stderr).toMatch(/refusing to overwrite/);
});

test("an agent without the key cannot join; with it, it joins and heartbeats", async () => {
  const token = await createToken(hubDir, "private", "grey", "eu-west");
  const outsider = await run(agentBin, ["join", token, "--data-dir", tempDir()], 90_000);
  expect(outsider.exitCode).not.toBe(0);
  expect(outsider.stderr).toMatch(/ERR_RETRIES_EXHAUSTED/);
  // the token was not consumed by the failed attempt: the secret never reached the hub
  const dir = tempDir("grey-agent-");
  const insider = await run(agentBin, ["join", token, "--data-dir", dir, "--psk", psk]);
  expect(insider.exitCode).toBe(0);
  startAgent(dir, ["--psk", psk]);
  await waitFor("heartbeat over the private network", () => (agentStatus(dir)?.heartbeatsSent ?? 0) > 0 || undefined);
  expect(hub.proc.exitCode).toBeNull();
});
