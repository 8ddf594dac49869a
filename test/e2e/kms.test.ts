/**
 * Keys at rest under envelope encryption, with the compiled binaries and a loopback AWS KMS
 * (JSON 1.1 + SigV4, plugins/kms-aws/testing.ts): a hub initialised with --kms keeps no PEM
 * private key on disk, runs, and admits an agent whose node key is sealed too; with the KMS
 * down the hub refuses to start with one clear line; `kms migrate` seals a plaintext hub.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { kmsMock } from "../../plugins/kms-aws/testing.ts";
import { closedPort } from "../../plugins/sdk/compliance/connector.ts";
import {
  agentBin, agentStatus, createToken, hubBin, initHub, requireBinaries, run, startAgent, startHub, stopAll, tempDir, waitFor,
} from "./harness.ts";

const creds = { accessKeyId: "AKIAE2EKMSEXAMPLE001", secretAccessKey: "e2e/kms/secret" };
let mock: ReturnType<typeof kmsMock>;
let kms: Record<string, unknown>;

beforeAll(() => {
  requireBinaries();
  mock = kmsMock({ region: "eu-west-1", account: "111122223333", ...creds, alias: "alias/grey-e2e" });
  kms = { provider: "aws", region: "eu-west-1", keyId: "alias/grey-e2e", endpoint: mock.url, credentials: creds };
});

afterAll(async () => {
  await stopAll();
  mock.stop();
});

const isPem = (path: string) => readFileSync(path, "utf8").includes("PRIVATE KEY");

test("hub with --kms: no PEM CA key on disk, runs, an agent with a sealed node key joins", async () => {
  const hubDir = tempDir("grey-hub-kms-");
  const init = await initHub(hubDir, ["--org", "acme", "--kms", JSON.stringify(kms)]);
  expect(init.stdout).toContain("keys sealed   kms-aws");
  const caKey = readFileSync(join(hubDir, "ca", "ca.key"), "utf8");
  expect(isPem(join(hubDir, "ca", "ca.key"))).toBe(false);
  expect(JSON.parse(caKey)).toMatchObject({ format: "grey-key-envelope/1", purpose: "grey/ca-key", kms: "kms-aws" });
  expect(JSON.parse(readFileSync(join(hubDir, "node.key"), "utf8")).purpose).toBe("grey/node-key");

  const hub = await startHub(hubDir, ["--heartbeat-interval", "500ms"]);
  const agentDir = tempDir("grey-agent-kms-");
  writeFileSync(join(agentDir, "agent.json"), JSON.stringify({ kms }));
  const token = await createToken(hubDir, "edge-k", "acme", "eu-west");
  const joined = await run(agentBin, ["join", token, "--data-dir", agentDir]);
  expect(joined.stderr).toBe("");
  expect(joined.exitCode).toBe(0);
  expect(JSON.parse(readFileSync(join(agentDir, "node.key"), "utf8")).kms).toBe("kms-aws");
  startAgent(agentDir, ["--heartbeat-interval", "500ms"]);
  await waitFor("heartbeat from the agent with a sealed key", () => (agentStatus(agentDir)?.heartbeatsSent ?? 0) > 0 || undefined);
  expect(await hub.stop()).toBe(0);

  // the KMS unreachable at start: one clear line, non-zero exit
  const cfg = JSON.parse(readFileSync(join(hubDir, "hub.json"), "utf8"));
  writeFileSync(join(hubDir, "hub.json"), JSON.stringify({ ...cfg, kms: { ...kms, endpoint: `http://127.0.0.1:${closedPort()}` } }));
  const down = await run(hubBin, ["run", "--data-dir", hubDir, "--api", "127.0.0.1:0"]);
  expect(down.exitCode).not.toBe(0);
  const lines = down.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^grey-hub: kms-aws: key service unavailable: .*\[ERR_KMS_UNAVAILABLE\]$/);
}, 90_000);

test("kms migrate seals a plaintext hub's keys; the hub still starts", async () => {
  const hubDir = tempDir("grey-hub-migrate-");
  await initHub(hubDir);
  expect(isPem(join(hubDir, "ca", "ca.key"))).toBe(true);
  const m = await run(hubBin, ["kms", "migrate", "--data-dir", hubDir, "--kms", JSON.stringify(kms)]);
  expect(m.stderr).toBe("");
  expect(m.exitCode).toBe(0);
  expect(m.stdout).toMatch(/ca\.key: sealed by kms-aws/);
  expect(m.stdout).toMatch(/node\.key: sealed by kms-aws/);
  expect(isPem(join(hubDir, "ca", "ca.key"))).toBe(false);
  expect(JSON.parse(readFileSync(join(hubDir, "hub.json"), "utf8")).kms.provider).toBe("aws");
  const hub = await startHub(hubDir);
  expect(hub.info.peerId).toMatch(/^12D3/);
  expect(await hub.stop()).toBe(0);
}, 60_000);
