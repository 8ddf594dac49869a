/**
 * TPM attestation end to end, on the compiled binaries and a real swtpm:
 * the hub's policy pins the agent's AK and requires PCR 16 to hold its current value; the agent
 * joins with a tpm2-quote, renews (re-attests) once, then PCR 16 is extended in the TPM and the next
 * renewal fails: the API shows the member revoked with the failed check, heartbeats are refused and
 * grey_attestations_total counts the refusal.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Tpm } from "../../plugins/attestor-tpm/tpm.ts";
import { tcpTransport } from "../../plugins/attestor-tpm/transport.ts";
import { startSwtpm, type Swtpm } from "../../plugins/attestor-tpm/testing/swtpm.ts";
import {
  adminCreds, agentBin, agentStatus, api, createToken, initHub, requireBinaries, run, startAgent, startHub, stopAll, tempDir, waitFor,
} from "./harness.ts";

type ClusterView = { state: string; attestation: { format: string; ok: boolean; claims: Record<string, unknown>; boundary?: string; expiresAt?: string }; revocation?: { at: string; reason: string } };

async function withTpm<T>(sw: Swtpm, use: (tpm: Tpm) => Promise<T>): Promise<T> {
  const tpm = new Tpm({ transport: tcpTransport({ host: sw.host, port: sw.port }) });
  try {
    await tpm.ensureStarted();
    return await use(tpm);
  } finally {
    await tpm.close();
  }
}

describe("tpm2-quote attestation (compiled binaries, swtpm)", () => {
  let sw: Swtpm;
  beforeAll(async () => {
    requireBinaries();
    sw = await startSwtpm();
  });
  afterAll(async () => {
    await stopAll();
    await sw?.stop();
  });

  test("join with a pinned AK and PCR policy; a PCR change fails re-attestation and revokes the member", async () => {
    const tpmSpec = `swtpm:${sw.host}:${sw.port}`;
    const ak = await run(agentBin, ["tpm", "ak", "--tpm", tpmSpec, "--json"]);
    expect(ak.exitCode).toBe(0);
    const akName = (JSON.parse(ak.stdout) as { name: string }).name;
    await withTpm(sw, (t) => t.pcrExtend(16, [{ hash: "sha256", digest: new Uint8Array(32).fill(7) }]));
    const pcr16 = await withTpm(sw, async (t) => Buffer.from((await t.pcrRead({ hash: "sha256", pcrs: [16] })).values.get(16)!).toString("hex"));

    const hubDir = tempDir();
    await initHub(hubDir, ["--org", "acme"]);
    const policy = join(hubDir, "attest-policy.yaml");
    writeFileSync(policy, [
      "version: 1",
      "boundaries:",
      "  same-org:",
      "    formats: [tpm2-quote]",
      "    resultTtl: 1h",
      "    tpm2-quote:",
      `      akNames: ["${akName}"]`,
      "      pcrs:",
      "        sha256:",
      `          16: ["${pcr16}"]`,
      "",
    ].join("\n"));
    const hub = await startHub(hubDir, ["--attest-policy", policy, "--cert-ttl", "10s", "--heartbeat-interval", "500ms"]);
    const creds = adminCreds(hubDir);

    const agentDir = tempDir();
    const token = await createToken(hubDir, "edge-tpm", "acme", "eu-west");
    const joined = await run(agentBin, ["join", token, "--data-dir", agentDir, "--format", "tpm2-quote", "--tpm", tpmSpec]);
    expect(joined.stderr).toBe("");
    expect(joined.exitCode).toBe(0);

    const view = async () => (await api(hub.info.api, "/v1/clusters/edge-tpm", creds)).body as ClusterView;
    const first = await view();
    expect(first.state).toBe("healthy");
    expect(first.attestation.format).toBe("tpm2-quote");
    expect(first.attestation.boundary).toBe("same-org");
    expect(first.attestation.claims["ak.name"]).toBe(akName);
    expect(first.attestation.claims["pcr.sha256.16"]).toBe(pcr16);
    expect(first.attestation.expiresAt).toBeDefined();

    // a node presenting another format is refused at join (policy.format)
    const devToken = await createToken(hubDir, "edge-dev", "acme", "eu-west");
    const dev = await run(agentBin, ["join", devToken, "--data-dir", tempDir()]);
    expect(dev.exitCode).not.toBe(0);
    expect(dev.stderr).toContain("policy.format");

    const agent = startAgent(agentDir, ["--format", "tpm2-quote", "--tpm", tpmSpec]);
    // first renewal (at ~2/3 of the 10 s certificate) re-attests with the unchanged PCR
    await waitFor("a successful re-attestation", () => (agentStatus(agentDir)?.renewals ?? 0) >= 1, 20_000);
    expect((await view()).state).toBe("healthy");

    await withTpm(sw, (t) => t.pcrExtend(16, [{ hash: "sha256", digest: new Uint8Array(32).fill(9) }]));
    const revoked = await waitFor("the member revoked", async () => {
      const v = await view();
      return v.state === "revoked" ? v : undefined;
    }, 20_000, 250);
    expect(revoked.revocation?.reason).toContain("policy.pcr.16");

    const beatsAt = agentStatus(agentDir)!.heartbeatsSent;
    await Bun.sleep(1500);
    expect(agentStatus(agentDir)!.heartbeatsSent).toBe(beatsAt);
    const healthy = (await api(hub.info.api, "/v1/clusters/healthy", creds)).body as { items: { clusterId: string }[] };
    expect(healthy.items.map((m) => m.clusterId)).not.toContain("edge-tpm");
    const metrics = (await api(hub.info.api, "/metrics", creds)).text;
    expect(metrics).toContain('grey_attestations_total{format="tpm2-quote",result="ok",reason="ok"}');
    expect(metrics).toContain('grey_attestations_total{format="tpm2-quote",result="refused",reason="policy.pcr.16"}');
    await agent.stop();
  }, 90_000);
});
