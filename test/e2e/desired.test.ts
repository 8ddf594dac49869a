/**
 * Desired state at the edge, end to end with the compiled binaries: with the
 * hub (and the agent daemon) down, the agent changes keys locally
 * (`grey-agent desired set`, signed, queued in its outbox); the admin then
 * changes some of the same keys at the restarted hub before the agent
 * reconnects. After reconnect the hub and the agent hold the same value for
 * every key, the one the merge rule picks (later timestamp wins, hub wins
 * ties), and each local change reached the hub exactly once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  adminCreds, agentBin, agentStatus, createToken, initHub, requireBinaries, run, startAgent, startHub,
  stopAll, tempDir, waitFor, type Creds, type Daemon, type HubRun,
} from "./harness.ts";

let hubDir: string;
let hub: Daemon & { info: HubRun };
let creds: Creds;
let agentDir: string;
let agent: Daemon;
const cluster = "edge-d";

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(hub.info.api + path, {
    method, tls: { ca: creds.ca, cert: creds.cert, key: creds.key },
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {}),
  } as RequestInit);
  return { status: res.status, body: await res.json() };
}

async function desired(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string; json: any }> {
  const r = await run(agentBin, ["desired", ...args, "--data-dir", agentDir]);
  let json: any;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = undefined;
  }
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, json };
}

const values = (items: { key: string; value: string; source: string; at: number }[]) =>
  Object.fromEntries(items.map((e) => [e.key, { value: e.value, source: e.source, at: e.at }]));

beforeAll(async () => {
  requireBinaries();
  hubDir = tempDir("grey-hub-");
  await initHub(hubDir, ["--org", "acme"]);
  hub = await startHub(hubDir, ["--heartbeat-interval", "500ms"]);
  creds = adminCreds(hubDir);
  agentDir = tempDir("grey-agent-");
  const token = await createToken(hubDir, cluster, "acme", "eu-west");
  const r = await run(agentBin, ["join", token, "--data-dir", agentDir]);
  if (r.exitCode !== 0) throw new Error(r.stderr);
  agent = startAgent(agentDir);
  await waitFor("agent reachable", () => agentStatus(agentDir)?.hub.reachable || undefined, 30_000);
});

afterAll(stopAll);

describe("desired state", () => {
  test("help documents the merge rule; bad input is a typed error", async () => {
    const help = await run(agentBin, ["desired", "--help"]);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain("Merge rule");
    expect(help.stdout).toContain("hub write");
    const bad = await desired("set", "has space", "x");
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toContain("ERR_MALFORMED_INPUT");
    const missing = await desired("get", "nope");
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain("ERR_NOT_FOUND");
    expect((await call("PUT", "/v1/clusters/no-such-cluster/desired/x", { value: "1" })).status).toBe(404);
    expect((await call("PUT", `/v1/clusters/${cluster}/desired/x`, { value: 1 })).status).toBe(400);
  }, 30_000);

  test("hub down: local changes and later hub changes converge on reconnect per the rule; each local change arrives once", async () => {
    // C: set at the hub first and seen by the agent; the agent's later local change must win.
    const c0 = await call("PUT", `/v1/clusters/${cluster}/desired/C`, { value: "hub-c" });
    expect(c0.status).toBe(200);
    await waitFor("agent received C", async () => (await desired("get", "C")).json?.value === "hub-c" || undefined, 20_000, 200);

    // Hub and agent daemon down: the edge works alone.
    const listen = hub.info.multiaddrs[0]!.replace(/\/p2p\/.*/, "");
    await hub.stop("SIGKILL");
    await agent.stop();
    const a = await desired("set", "A", "local-a");
    expect(a.exitCode).toBe(0);
    expect(a.json).toMatchObject({ key: "A", value: "local-a", source: "local" });
    const c = await desired("set", "C", "local-c");
    expect(c.json.at).toBeGreaterThan(c0.body.at); // bumped past the hub entry it replaces
    const status = JSON.parse((await run(agentBin, ["status", "--data-dir", agentDir])).stdout);
    expect(status.store.outboxByKind["desired-change"]).toBe(2);

    // The hub comes back; the admin writes A (later than the local change) and B before the agent reconnects.
    hub = await startHub(hubDir, ["--heartbeat-interval", "500ms", "--listen", listen]);
    await Bun.sleep(5); // a timestamp strictly after the local change
    const ha = await call("PUT", `/v1/clusters/${cluster}/desired/A`, { value: "hub-a" });
    expect(ha.status).toBe(200);
    expect(ha.body.at).toBeGreaterThan(a.json.at);
    expect((await call("PUT", `/v1/clusters/${cluster}/desired/B`, { value: "hub-b" })).status).toBe(200);

    // Reconnect (the agent finds the hub again through its membership's bootstrap / the DHT).
    agent = startAgent(agentDir);
    const expected = { A: "hub-a", B: "hub-b", C: "local-c" };
    const hubView = await waitFor("the hub holds the merged state", async () => {
      const r = await call("GET", `/v1/clusters/${cluster}/desired?changes=1`);
      const v = values(r.body.items);
      return v.C?.value === "local-c" ? r.body : undefined;
    }, 40_000, 250);
    const agentView = await waitFor("the agent holds the merged state", async () => {
      const v = values((await desired("get")).json.items);
      return Object.entries(expected).every(([k, want]) => v[k]?.value === want) ? v : undefined;
    }, 40_000, 250);
    const hubValues = values(hubView.items);
    for (const [k, want] of Object.entries(expected)) {
      expect(hubValues[k]!.value).toBe(want);
      // the same entry (value, timestamp, source) on both sides
      expect(agentView[k]).toEqual(hubValues[k]!);
    }
    expect(hubValues.A!.source).toBe("hub");
    expect(hubValues.C!.source).toBe("local");

    // Exactly once: the hub received each local change once (change log and outbox records).
    const localChanges = (hubView.changes as { key: string; source: string; won: boolean }[]).filter((x) => x.source === "local");
    expect(localChanges.map((x) => [x.key, x.won]).sort()).toEqual([["A", false], ["C", true]]);
    await waitFor("agent outbox drained", async () => {
      const s = JSON.parse((await run(agentBin, ["status", "--data-dir", agentDir])).stdout);
      return s.store.outbox === 0 || undefined;
    }, 20_000, 200);
    const recs = (await call("GET", "/v1/tasks/records")).body.items as { peerId: string; kind: string; count: number }[];
    const me = agentStatus(agentDir)!.peerId;
    expect(recs.find((r) => r.peerId === me && r.kind === "desired-change")!.count).toBe(2);
  }, 120_000);
});
