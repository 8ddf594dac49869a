/**
 * End to end, with the compiled binaries: one hub, three agents in three
 * regions, join, heartbeats, peer sessions, the mTLS API, restarts, and
 * every kind of bad input the foundation must refuse without falling over.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { statSync } from "node:fs";
import { decodeJoinToken, encodeJoinToken } from "../../plugins/sdk/token.ts";
import {
  adminCreds, agentBin, agentStatus, api, createToken, hubBin, initHub, requireBinaries, run, startAgent, startHub,
  stopAll, tempDir, waitFor, type Daemon, type HubRun,
} from "./harness.ts";

let hubDir: string;
let hub: Daemon & { info: HubRun };
const agents: { dir: string; cluster: string; region: string; daemon?: Daemon }[] = [];

beforeAll(async () => {
  requireBinaries();
  hubDir = tempDir("grey-hub-");
  await initHub(hubDir, ["--org", "acme"]);
  hub = await startHub(hubDir, ["--heartbeat-interval", "500ms"]);
  for (const [cluster, region] of [["edge-a", "eu-west"], ["edge-b", "us-east"], ["edge-c", "ap-south"]] as const) {
    const dir = tempDir("grey-agent-");
    const token = await createToken(hubDir, cluster, "acme", region);
    const r = await run(agentBin, ["join", token, "--data-dir", dir]);
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`grey://acme/${region}/${cluster}`);
    agents.push({ dir, cluster, region, daemon: startAgent(dir) });
  }
});

afterAll(stopAll);

describe("binaries", () => {
  test("--version prints version and commit; --help lists commands", async () => {
    for (const bin of [hubBin, agentBin]) {
      const v = await run(bin, ["--version"]);
      expect(v.exitCode).toBe(0);
      expect(v.stdout).toMatch(/^grey-(hub|agent) \d+\.\d+\.\d+ \(commit [0-9a-f]{7,}(-dirty)?,/);
      const h = await run(bin, ["--help"]);
      expect(h.exitCode).toBe(0);
      expect(h.stdout).toContain("run");
    }
  });

  test("bad flags and commands: one clear line, non-zero exit", async () => {
    const cases: [string, string[], RegExp][] = [
      [hubBin, ["run", "--no-such-flag"], /Unknown option '--no-such-flag'/],
      [hubBin, ["frobnicate"], /unknown command "frobnicate"/],
      [hubBin, ["token", "create", "--data-dir", "/nonexistent"], /--cluster is required; --org is required; --region is required/],
      [hubBin, ["token", "create", "--data-dir", "/x", "--cluster", "Bad_Id", "--org", "a", "--region", "b"], /--cluster: "Bad_Id"/],
      [agentBin, ["join", "--data-dir", tempDir()], /needs the TOKEN/],
      [agentBin, ["run", "--data-dir", tempDir()], /holds no membership/],
      [hubBin, ["run", "--data-dir", tempDir()], /run 'grey-hub init/],
    ];
    for (const [bin, args, re] of cases) {
      const r = await run(bin, args);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
  });

  test("keys are 0600", () => {
    for (const p of [join(hubDir, "node.key"), join(hubDir, "ca", "ca.key"), join(hubDir, "admin", "key.pem"), join(agents[0]!.dir, "node.key"), join(agents[0]!.dir, "tls", "key.pem")]) {
      expect((statSync(p).mode & 0o777).toString(8)).toBe("600");
    }
  });
});

describe("federation", () => {
  test("all three clusters are healthy in the API with their attestation", async () => {
    const creds = adminCreds(hubDir);
    const healthy = await waitFor("3 healthy clusters", async () => {
      const r = await api(hub.info.api, "/v1/clusters/healthy", creds);
      const items = (r.body as { items: { clusterId: string }[] }).items;
      return items?.length === 3 ? items : undefined;
    });
    expect(healthy.map((c) => c.clusterId).sort()).toEqual(["edge-a", "edge-b", "edge-c"]);
    const one = await api(hub.info.api, "/v1/clusters/edge-b", creds);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ clusterId: "edge-b", org: "acme", region: "us-east", state: "healthy", attestation: { format: "dev", ok: true } });
    const missing = await api(hub.info.api, "/v1/clusters/nope", creds);
    expect(missing.status).toBe(404);
  });

  test("the hub tells clusters about each other and they verify each other directly", async () => {
    for (const a of agents) {
      const s = await waitFor(`${a.cluster} sees 2 verified peers`, () => {
        const st = agentStatus(a.dir);
        return st && st.peers.length >= 2 ? st : undefined;
      });
      const others = agents.filter((o) => o !== a).map((o) => o.cluster).sort();
      expect(s.peers.map((p) => p.clusterId).sort()).toEqual(others);
    }
  });

  test("metrics count members, joins, heartbeats and API requests", async () => {
    const r = await api(hub.info.api, "/metrics", adminCreds(hubDir));
    expect(r.status).toBe(200);
    expect(r.text).toMatch(/grey_members\{state="healthy"\} 3/);
    expect(r.text).toMatch(/grey_joins_total 3/);
    expect(r.text).toMatch(/grey_heartbeats_total \d+/);
    expect(r.text).toMatch(/grey_api_requests_total\{/);
    expect(r.text).toMatch(/grey_member_proof\{state="ok"\} 3/);
  });

  test("API refuses callers without a certificate or with one from another CA; health stays open", async () => {
    const { ca } = adminCreds(hubDir);
    expect((await api(hub.info.api, "/v1/health", { ca })).status).toBe(200);
    const anon = await api(hub.info.api, "/v1/clusters", { ca });
    expect(anon.status).toBe(401);
    expect(anon.body).toMatchObject({ error: { code: expect.any(String) } });
    const otherDir = tempDir("grey-other-");
    await initHub(otherDir, ["--org", "mallory"]);
    const foreign = adminCreds(otherDir);
    const r = await api(hub.info.api, "/v1/clusters", { ca, cert: foreign.cert!, key: foreign.key! });
    expect(r.status).toBe(401);
  });
});

describe("bad tokens are refused and the hub keeps serving", () => {
  test("reused token", async () => {
    const token = await createToken(hubDir, "reuse", "acme", "eu-west");
    expect((await run(agentBin, ["join", token, "--data-dir", tempDir()])).exitCode).toBe(0);
    const again = await run(agentBin, ["join", token, "--data-dir", tempDir()]);
    expect(again.exitCode).not.toBe(0);
    expect(again.stderr).toMatch(/ERR_TOKEN_USED/);
  });

  test("expired token", async () => {
    const token = await createToken(hubDir, "late", "acme", "eu-west", ["--ttl", "1s"]);
    await Bun.sleep(1500);
    const r = await run(agentBin, ["join", token, "--data-dir", tempDir()]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/ERR_TOKEN_EXPIRED/);
  });

  test("forged secret and unknown token id", async () => {
    const t = decodeJoinToken(await createToken(hubDir, "forged", "acme", "eu-west"));
    const forged = encodeJoinToken({ ...t, secret: new Uint8Array(32).fill(1) });
    const r = await run(agentBin, ["join", forged, "--data-dir", tempDir()]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/ERR_TOKEN_FORGED/);
    const unknown = encodeJoinToken({ ...t, tokenId: "no-such-token" });
    const u = await run(agentBin, ["join", unknown, "--data-dir", tempDir()]);
    expect(u.stderr).toMatch(/ERR_TOKEN_UNKNOWN/);
  });

  test("wrong CA fingerprint: the agent refuses the hub before sending the secret", async () => {
    const t = decodeJoinToken(await createToken(hubDir, "pinned", "acme", "eu-west"));
    const wrong = encodeJoinToken({ ...t, caFingerprint: "0".repeat(64) });
    const r = await run(agentBin, ["join", wrong, "--data-dir", tempDir()]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/CA .* pins/);
    // the secret was never sent: the real token still works
    const ok = await run(agentBin, ["join", encodeJoinToken(t), "--data-dir", tempDir()]);
    expect(ok.exitCode).toBe(0);
  });

  test("malformed and truncated tokens", async () => {
    const good = await createToken(hubDir, "trunc", "acme", "eu-west");
    for (const bad of ["garbage", good.slice(0, 40)]) {
      const r = await run(agentBin, ["join", bad, "--data-dir", tempDir()]);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(/ERR_TOKEN_MALFORMED/);
    }
  });

  test("the federation is still healthy after all of that", async () => {
    const r = await api(hub.info.api, "/v1/clusters/edge-a", adminCreds(hubDir));
    expect(r.body).toMatchObject({ state: "healthy" });
  });
});

describe("restarts", () => {
  test("a hub restart keeps every member; agents reconnect without re-joining", async () => {
    const before = agentStatus(agents[0]!.dir)!.heartbeatsSent;
    await hub.stop();
    hub = await startHub(hubDir, ["--heartbeat-interval", "500ms", "--listen", hub.info.multiaddrs[0]!.replace(/\/p2p\/.*/, "")]);
    const creds = adminCreds(hubDir);
    const r = await api(hub.info.api, "/v1/clusters", creds);
    expect((r.body as { items: unknown[] }).items.length).toBeGreaterThanOrEqual(3);
    await waitFor("heartbeats resume after hub restart", () => (agentStatus(agents[0]!.dir)!.heartbeatsSent > before + 2 ? true : undefined), 30_000);
  });

  test("an agent restart keeps its identity and membership", async () => {
    const a = agents[1]!;
    const peerId = agentStatus(a.dir)!.peerId;
    await a.daemon!.stop();
    a.daemon = startAgent(a.dir);
    const s = await waitFor("restarted agent heartbeats", () => {
      const st = agentStatus(a.dir);
      return st && st.pid === a.daemon!.proc.pid && st.heartbeatsSent > 0 && st.hub.reachable ? st : undefined;
    });
    expect(s.peerId).toBe(peerId);
  });
});
