/**
 * Discovery over the DHT and certificate renewal, with the compiled binaries:
 * an agent bootstrapped only to hub A finds hub B (same federation) through
 * the DHT and joins there; with short certificates, agents renew in time.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import {
  adminCreds, agentBin, agentStatus, api, createToken, initHub, requireBinaries, run, startAgent, startHub, stopAll,
  tempDir, waitFor, type Daemon, type HubRun,
} from "./harness.ts";

let hubA: Daemon & { info: HubRun };
let hubB: Daemon & { info: HubRun };
let dirA: string;
let dirB: string;

beforeAll(async () => {
  requireBinaries();
  dirA = tempDir("grey-hub-a-");
  dirB = tempDir("grey-hub-b-");
  await initHub(dirA, ["--org", "acme", "--name", "hub-a"]);
  await initHub(dirB, ["--name", "hub-b", "--federation-from", dirA]);
  hubA = await startHub(dirA);
  hubB = await startHub(dirB, ["--bootstrap", hubA.info.multiaddrs[0]!, "--cert-ttl", "12s", "--heartbeat-interval", "500ms"]);
});

afterAll(stopAll);

test("an agent bootstrapped only to hub A finds hub B through the DHT and joins it", async () => {
  expect(hubB.info.peerId).not.toBe(hubA.info.peerId);
  const token = await createToken(dirB, "far", "acme", "eu-north", ["--bootstrap", hubA.info.multiaddrs[0]!]);
  const dir = tempDir("grey-agent-");
  // B may need a moment to publish its provider record: joining retries with backoff by itself.
  const r = await run(agentBin, ["join", token, "--data-dir", dir, "--log-level", "info"], 90_000);
  expect(r.exitCode).toBe(0);
  expect(r.stderr).toContain("found hub through the DHT");
  const listed = await api(hubB.info.api, "/v1/clusters/far", adminCreds(dirB));
  expect(listed.status).toBe(200);
  // hub A never saw this member: it joined B
  const onA = await api(hubA.info.api, "/v1/clusters/far", adminCreds(dirA));
  expect(onA.status).toBe(404);
});

test("short-lived certificates are renewed before they expire", async () => {
  const token = await createToken(dirB, "renewer", "acme", "eu-north", ["--bootstrap", hubB.info.multiaddrs[0]!]);
  const dir = tempDir("grey-agent-");
  expect((await run(agentBin, ["join", token, "--data-dir", dir])).exitCode).toBe(0);
  startAgent(dir);
  const first = await waitFor("first heartbeat", () => agentStatus(dir)?.hub.reachable ? agentStatus(dir) : undefined);
  const s = await waitFor("a renewal", () => ((agentStatus(dir)?.renewals ?? 0) >= 1 ? agentStatus(dir) : undefined), 30_000, 250);
  expect(Date.parse(s.certNotAfter)).toBeGreaterThan(Date.parse(first.certNotAfter));
  const m = await api(hubB.info.api, "/v1/clusters/renewer", adminCreds(dirB));
  expect(m.body).toMatchObject({ state: "healthy" });
});
