/**
 * Cloud identity as join evidence, with the compiled binaries and loopback AWS endpoints
 * (plugins/connector-aws/testing.ts: IMDSv2 serving the real EC2 identity vector and an instance
 * role, STS GetCallerIdentity checking SigV4): an agent joins with `--format aws-iid`, presenting
 * a GetCallerIdentity request it signed for the join's nonce, peer id and CSR key; the hub's AWS
 * connector (hub.json `connectors.aws`) replays it to STS and applies its account/role allow-lists,
 * then the attestation policy of the node's trust boundary. An instance of another account is
 * refused with the reason. Connector health runs on both sides: the hub's /metrics and the
 * agents' status.json carry connector and peer figures.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { vectorBytes, vectorText } from "../../attest/testing/vectors.ts";
import { imdsMock, stsMock } from "../../plugins/connector-aws/testing.ts";
import {
  adminCreds, agentBin, agentStatus, api, createToken, initHub, requireBinaries, run, startAgent, startHub, stopAll, tempDir, waitFor,
} from "./harness.ts";

const ACCOUNT = "189292791360";
const roleA = { name: "grey-agent", accessKeyId: "ASIAE2EINSTANCEROLE1", secretAccessKey: "e2e/instance/secret", token: "e2e-session-token" };
const roleB = { name: "grey-agent", accessKeyId: "ASIAE2EFOREIGNROLE01", secretAccessKey: "e2e/foreign/secret", token: "e2e-foreign-token" };
const iid = () => ({
  document: vectorBytes("aws-ec2-iid/metaphor-2026-ap-southeast-2.document.json"),
  signature: vectorText("aws-ec2-iid/metaphor-2026-ap-southeast-2.signature.b64").trim(),
  rsa2048: vectorText("aws-ec2-iid/metaphor-2026-ap-southeast-2.rsa2048.pkcs7.b64").trim(),
});
let imds: ReturnType<typeof imdsMock>;
let foreignImds: ReturnType<typeof imdsMock>;
let sts: ReturnType<typeof stsMock>;

beforeAll(() => {
  requireBinaries();
  imds = imdsMock({ ...iid(), role: roleA });
  foreignImds = imdsMock({ ...iid(), role: roleB });
  sts = stsMock({
    principals: {
      [roleA.accessKeyId]: { secretAccessKey: roleA.secretAccessKey, sessionToken: roleA.token, arn: `arn:aws:sts::${ACCOUNT}:assumed-role/grey-agent/i-0a`, account: ACCOUNT, userId: "AROAE2E:i-0a" },
      [roleB.accessKeyId]: { secretAccessKey: roleB.secretAccessKey, sessionToken: roleB.token, arn: "arn:aws:sts::999999999999:assumed-role/grey-agent/i-0b", account: "999999999999", userId: "AROAE2E:i-0b" },
    },
  });
});

afterAll(async () => {
  await stopAll();
  imds.stop();
  foreignImds.stop();
  sts.stop();
});

const health = { intervalMs: 300, timeoutMs: 250 };

function agentDir(endpoint: string): string {
  const dir = tempDir("grey-agent-aws-");
  writeFileSync(join(dir, "agent.json"), JSON.stringify({ connectors: { aws: { imdsEndpoint: endpoint, stsEndpoint: sts.url } }, health }));
  return dir;
}

test("join with an AWS identity bound to the nonce; allow-list and boundary policy enforced; health on /metrics and status.json", async () => {
  const hubDir = tempDir("grey-hub-aws-");
  await initHub(hubDir, ["--org", "acme", "--allow-formats", "aws-iid"]);
  // The AWS connector configured in hub.json checks aws-iid evidence (no verifier roots needed here), and
  // the STS proof is bound to the join nonce: no allowNonFresh, so a bare (replayable) IID document is refused.
  writeFileSync(join(hubDir, "attest-policy.yaml"), [
    "version: 1",
    "boundaries:",
    "  same-org:",
    "    formats: [aws-iid]",
    "    aws-iid: { claims: { account.id: [\"" + ACCOUNT + "\"] } }",
  ].join("\n"));
  const cfg = JSON.parse(readFileSync(join(hubDir, "hub.json"), "utf8"));
  writeFileSync(join(hubDir, "hub.json"), JSON.stringify({
    ...cfg, attestation: { ...cfg.attestation, policyFile: "attest-policy.yaml" },
    connectors: { aws: { accounts: [ACCOUNT], roles: ["grey-agent"], stsEndpoint: sts.url } }, health,
  }));
  const hub = await startHub(hubDir, ["--heartbeat-interval", "500ms"]);

  const dirs = [agentDir(imds.url), agentDir(imds.url)];
  for (const [i, dir] of dirs.entries()) {
    const joined = await run(agentBin, ["join", await createToken(hubDir, `edge-${i}`, "acme", "ap-southeast-2"), "--data-dir", dir, "--format", "aws-iid"]);
    expect(joined.stderr).toBe("");
    expect(joined.exitCode).toBe(0);
    startAgent(dir, ["--format", "aws-iid"]);
  }
  expect(sts.calls.filter((c) => c === "GetCallerIdentity").length).toBeGreaterThanOrEqual(2);

  const creds = adminCreds(hubDir);
  const peers = await waitFor("both agents verified each other", () => {
    const s = dirs.map((d) => agentStatus(d));
    return s.every((x) => (x?.peers.length ?? 0) > 0) ? s.map((x) => x!.peerId) : undefined;
  });
  const cluster = (await api(hub.info.api, "/v1/clusters/edge-0", creds)).body as { attestation?: { format: string; claims: Record<string, unknown> } };
  expect(cluster.attestation?.format).toBe("aws-iid");
  expect(cluster.attestation?.claims).toMatchObject({ fresh: true, "account.id": ACCOUNT, credential: "aws-sts-get-caller-identity" });

  // hub: the configured connector (STS reachable) and both members answer libp2p ping
  const metrics = await waitFor("peer health on /metrics", async () => {
    const text = (await api(hub.info.api, "/metrics", creds)).text;
    return peers.every((p) => text.includes(`grey_peer_up{peer="${p}"} 1`)) ? text : undefined;
  });
  expect(metrics).toContain('grey_connector_up{platform="aws"} 1');
  expect(metrics).not.toContain('grey_connector_up{platform="gcp"}');
  expect(metrics).toMatch(new RegExp(`grey_peer_rtt_ms\\{peer="${peers[0]}",quantile="0.5"\\} \\d+`));
  // per-peer bytes of our protocol frames (heartbeats at least), counted in plugins/mesh-libp2p/rpc.ts
  await waitFor("per-peer bytes on /metrics", async () => {
    const text = (await api(hub.info.api, "/metrics", creds)).text;
    return peers.every((p) => ["received", "sent"].every((d) => new RegExp(`grey_peer_bytes_total\\{peer="${p}",direction="${d}"\\} [1-9]\\d*`).test(text))) ? text : undefined;
  });

  // agents: the other agent's figures and their IMDS in status.json
  const h = await waitFor("peer health in status.json", () => {
    const s = agentStatus(dirs[0]!) as unknown as { health?: { peers: Record<string, { up: boolean; rttMs: Record<string, number> }>; connectors: Record<string, { up: boolean }> } };
    return s?.health?.peers[peers[1]!]?.up ? s.health : undefined;
  });
  expect(h.connectors.aws?.up).toBe(true);
  expect(Number.isFinite(h.peers[peers[1]!]!.rttMs["0.5"])).toBe(true);
}, 60_000);

test("an instance of an account not on the allow-list is refused with the reason", async () => {
  const hubDir = tempDir("grey-hub-aws-");
  await initHub(hubDir, ["--org", "acme", "--allow-formats", "aws-iid"]);
  const cfg = JSON.parse(readFileSync(join(hubDir, "hub.json"), "utf8"));
  writeFileSync(join(hubDir, "hub.json"), JSON.stringify({ ...cfg, connectors: { aws: { accounts: [ACCOUNT], stsEndpoint: sts.url } } }));
  await startHub(hubDir);
  const dir = agentDir(foreignImds.url);
  const refused = await run(agentBin, ["join", await createToken(hubDir, "edge-x", "acme", "ap-southeast-2"), "--data-dir", dir, "--format", "aws-iid"]);
  expect(refused.exitCode).not.toBe(0);
  expect(refused.stderr.trim().split("\n")).toHaveLength(1);
  expect(refused.stderr).toContain("account 999999999999 is not on the allow-list");
}, 30_000);
